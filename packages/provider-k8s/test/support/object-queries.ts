import { parseAllDocuments } from 'yaml';

// biome-ignore lint/suspicious/noExplicitAny: tests walk arbitrary Kubernetes JSON.
export type AnyObject = any;

export function parseYaml(text: string): AnyObject[] {
  return parseAllDocuments(text).map((document) => document.toJS());
}

export function byKind(objects: AnyObject[], kind: string): AnyObject[] {
  return objects.filter((object) => object.kind === kind);
}

export function named(objects: AnyObject[], kind: string, name: string): AnyObject {
  const found = objects.find((object) => object.kind === kind && object.metadata?.name === name);
  if (!found)
    throw new Error(
      `no ${kind} ${name} in ${objects.map((object) => `${object.kind}/${object.metadata?.name}`).join(', ')}`,
    );
  return found;
}

/** Every container of a pod spec, init containers included. */
export function podContainers(podSpec: AnyObject): AnyObject[] {
  return [...(podSpec.initContainers ?? []), ...(podSpec.containers ?? [])];
}

/** Names of the Secrets a container can read: env references and mounted secret volumes. */
export function secretsReadBy(podSpec: AnyObject, container: AnyObject): string[] {
  const names = new Set<string>();
  for (const variable of container.env ?? []) {
    const reference = variable.valueFrom?.secretKeyRef?.name;
    if (reference) names.add(reference);
  }
  for (const source of container.envFrom ?? []) if (source.secretRef?.name) names.add(source.secretRef.name);
  const mounted = new Set((container.volumeMounts ?? []).map((mount: AnyObject) => mount.name));
  for (const volume of podSpec.volumes ?? []) {
    if (!mounted.has(volume.name)) continue;
    if (volume.secret?.secretName) names.add(volume.secret.secretName);
    for (const source of volume.projected?.sources ?? [])
      if (source.secret?.name) names.add(source.secret.name);
  }
  return [...names].sort();
}

/** Names of the ConfigMaps a container can read. */
export function configMapsReadBy(podSpec: AnyObject, container: AnyObject): string[] {
  const names = new Set<string>();
  for (const variable of container.env ?? []) {
    const reference = variable.valueFrom?.configMapKeyRef?.name;
    if (reference) names.add(reference);
  }
  const mounted = new Set((container.volumeMounts ?? []).map((mount: AnyObject) => mount.name));
  for (const volume of podSpec.volumes ?? []) {
    if (mounted.has(volume.name) && volume.configMap?.name) names.add(volume.configMap.name);
  }
  return [...names].sort();
}

export function decodedSecretValues(secret: AnyObject): string[] {
  return [
    ...Object.values(secret.data ?? {}).map((value) => Buffer.from(String(value), 'base64').toString('utf8')),
    ...Object.values(secret.stringData ?? {}).map(String),
  ];
}
