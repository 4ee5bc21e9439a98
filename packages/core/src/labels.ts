export const labelPrefix = 'keyward.dev';

export const labelKeys = {
  managedBy: `${labelPrefix}/managed-by`,
  instance: `${labelPrefix}/instance`,
  provider: `${labelPrefix}/provider`,
  specVersion: `${labelPrefix}/spec-version`,
  component: `${labelPrefix}/component`,
  target: `${labelPrefix}/target`,
} as const;

export const managedByValue = 'keyward';

/** The labels every object of an instance carries; list, cleanup and GC go by them. */
export function instanceLabels(instanceName: string, target: string): Record<string, string> {
  return {
    [labelKeys.managedBy]: managedByValue,
    [labelKeys.instance]: instanceName,
    [labelKeys.target]: target,
    [labelKeys.specVersion]: 'v2',
  };
}

export function objectLabels(
  instanceName: string,
  target: string,
  providerId: string,
  component: string,
): Record<string, string> {
  return {
    ...instanceLabels(instanceName, target),
    [labelKeys.provider]: providerId,
    [labelKeys.component]: component,
  };
}

/** Runtime name of an object: unique per instance and readable in `podman ps`. */
export function runtimeName(instanceName: string, component: string): string {
  return `keyward-${instanceName}-${component}`;
}
