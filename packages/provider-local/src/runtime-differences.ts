// Every difference between podman's Docker-compatible API and docker's lives here,
// so the rest of the provider speaks one dialect.
import type Docker from 'dockerode';

export type RuntimeKind = 'podman' | 'docker';

/** podman's compat API names itself "Podman Engine" in `version().Components`. */
export function runtimeKindFromVersion(version: Docker.DockerVersion): RuntimeKind {
  const components = (version as { Components?: { Name?: string }[] }).Components ?? [];
  return components.some((component) => /podman/i.test(component.Name ?? '')) ? 'podman' : 'docker';
}

/**
 * How secret and config files reach a read-only volume mount before the container
 * starts. podman's archive endpoint writes through read-only mounts of a created
 * container; docker refuses ("mounted volume is marked read-only"), so on docker a
 * throwaway, never-started writer container mounts the volume read-write instead.
 */
export function volumeWriteStrategy(kind: RuntimeKind): 'archive-into-consumer' | 'writer-container' {
  return kind === 'podman' ? 'archive-into-consumer' : 'writer-container';
}

/**
 * Who makes a new, empty named volume writable for the non-root container that mounts it.
 * podman chowns it to the user of the first container that mounts it; docker leaves it owned
 * by root (0755) unless the image holds the mount path, so the helpers could not create their
 * sockets (`listen EACCES`) and the agent could not write its state. On docker a short-lived,
 * never-networked container chowns the volume first.
 */
export function volumeOwnershipStrategy(kind: RuntimeKind): 'runtime' | 'owner-container' {
  return kind === 'podman' ? 'runtime' : 'owner-container';
}

/** Health status: docker reports `State.Health`, podman (before 4.x compat fixes) `State.Healthcheck`. */
export function healthStatus(state: Record<string, unknown> | undefined): string | undefined {
  const health = (state?.['Health'] ?? state?.['Healthcheck']) as { Status?: string } | undefined;
  return health?.Status || undefined;
}

/**
 * The host port a container port was published on. podman may report an empty
 * `HostIp` (containers/podman#17780) and docker lists IPv4 and IPv6 bindings.
 */
export function publishedHostPort(
  ports: Record<string, { HostIp?: string; HostPort?: string }[] | null> | undefined,
  containerPort: number,
): { hostAddress: string; hostPort: number } | undefined {
  const bindings = ports?.[`${containerPort}/tcp`] ?? [];
  const binding = bindings.find((candidate) => !candidate.HostIp?.includes(':')) ?? bindings[0];
  if (!binding?.HostPort) return undefined;
  const hostAddress = !binding.HostIp || binding.HostIp === '0.0.0.0' ? '127.0.0.1' : binding.HostIp;
  return { hostAddress, hostPort: Number(binding.HostPort) };
}

/** Same as `publishedHostPort`, from a `listContainers` summary's `Ports`. */
export function publishedHostPortFromSummary(
  ports: Docker.Port[] | undefined,
  containerPort: number,
): { hostAddress: string; hostPort: number } | undefined {
  const binding = (ports ?? []).find(
    (port) => port.PrivatePort === containerPort && port.PublicPort && !port.IP?.includes(':'),
  );
  if (!binding) return undefined;
  const hostAddress = !binding.IP || binding.IP === '0.0.0.0' ? '127.0.0.1' : binding.IP;
  return { hostAddress, hostPort: binding.PublicPort };
}

/** podman's compat API answers a container name in `listContainers` with or without the leading slash. */
export function containerSummaryName(summary: Docker.ContainerInfo): string {
  return (summary.Names?.[0] ?? '').replace(/^\//, '');
}

export function isNotFound(error: unknown): boolean {
  return (error as { statusCode?: number }).statusCode === 404;
}

/**
 * A container that is gone. podman 4.3's archive endpoint answers 500 "no such container" for a
 * container removed while it was being read (seen in the 20-instance load run), where docker and
 * podman's other endpoints answer 404.
 */
export function isMissingContainer(error: unknown): boolean {
  if (isNotFound(error)) return true;
  const candidate = error as { statusCode?: number; message?: unknown; json?: { message?: unknown } };
  if (candidate?.statusCode !== 500) return false;
  const text = `${String(candidate.json?.message ?? '')} ${String(candidate.message ?? '')}`;
  return /no such container/i.test(text);
}

export function isConflict(error: unknown): boolean {
  return (error as { statusCode?: number }).statusCode === 409;
}

/** "Already in the desired state" answers (304) count as success for start/stop. */
export function isNotModified(error: unknown): boolean {
  return (error as { statusCode?: number }).statusCode === 304;
}

/**
 * podman 4.3's compat API combines several `label` filters of a volume list with OR,
 * docker with AND. Every list is therefore filtered again here, so an operation on
 * one instance can never touch another's objects.
 */
export function matchesAllLabels(
  labels: Record<string, string> | null | undefined,
  filter: { label: string[] },
): boolean {
  return filter.label.every((entry) => {
    const separator = entry.indexOf('=');
    const key = separator === -1 ? entry : entry.slice(0, separator);
    const value = separator === -1 ? undefined : entry.slice(separator + 1);
    const actual = labels?.[key];
    return actual !== undefined && (value === undefined || actual === value);
  });
}

/**
 * How a container joins several networks. podman takes every network in the create
 * call; docker before API 1.44 silently keeps only one, so there the extra networks
 * are connected between create and start.
 */
export function networkAttachStrategy(kind: RuntimeKind): 'at-create' | 'connect-after-create' {
  return kind === 'podman' ? 'at-create' : 'connect-after-create';
}

/** Splits create options into the primary network (in the create call) and the ones to connect after. */
export function splitNetworks(options: Docker.ContainerCreateOptions): {
  create: Docker.ContainerCreateOptions;
  connect: { network: string; endpoint: Docker.EndpointSettings }[];
} {
  const endpoints = options.NetworkingConfig?.EndpointsConfig;
  const primary = options.HostConfig?.NetworkMode;
  if (!endpoints || !primary || !(primary in endpoints)) return { create: options, connect: [] };
  const connect = Object.entries(endpoints)
    .filter(([network]) => network !== primary)
    .map(([network, endpoint]) => ({ network, endpoint }));
  return {
    create: {
      ...options,
      NetworkingConfig: { EndpointsConfig: { [primary]: endpoints[primary] as Docker.EndpointSettings } },
    },
    connect,
  };
}
