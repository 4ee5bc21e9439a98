import { type PlannedContainerV1, runtimeName } from '@keyward/core';
import type Docker from 'dockerode';
import { helperRuntimeName, localLabelKeys, type StoredPlan } from './instance-record.js';
import type { RuntimeKind } from './runtime-differences.js';
import type { PlannedVolume } from './volume-files.js';

export interface ContainerOptionsInput {
  plan: StoredPlan;
  container: PlannedContainerV1;
  volumes: readonly PlannedVolume[];
  /** The agent's persistent data volume (read-write), kept across rotations and, unless asked, deletes. */
  dataVolume?: { volumeName: string; directory: string };
  /** Values of env-delivered secrets this container sees (agent-safe sealed tokens). */
  secretEnv: Record<string, string>;
  kind: RuntimeKind;
  extraLabels: Record<string, string>;
}

/**
 * The routable network of an instance. In `open` mode the helper holds the shared
 * namespace on it: the instance's own network, not the runtime's default (which has
 * no DNS on podman and is shared by everyone).
 */
export function egressNetworkName(plan: Pick<StoredPlan, 'network' | 'instance'>): string {
  return plan.network.egressNetwork ?? runtimeName(plan.instance.name, 'egress');
}

/** Which networks a container joins, by network mode and egress. */
export function networkPlacement(
  plan: Pick<StoredPlan, 'network' | 'instance'>,
  container: Pick<PlannedContainerV1, 'name' | 'egress'>,
): Pick<Docker.ContainerCreateOptions, 'NetworkingConfig'> & { NetworkMode: string } {
  if (plan.network.mode === 'open') {
    // One network namespace, held by the helper like a pod's infra container.
    return { NetworkMode: `container:${helperRuntimeName(plan.instance.name)}` };
  }
  const internal = plan.network.internalNetwork as string;
  const egress = plan.network.egressNetwork as string;
  const endpoints: Record<string, Docker.EndpointSettings> = {
    [internal]: { Aliases: [container.name] },
  };
  if (container.egress === 'internet') endpoints[egress] = {};
  return { NetworkMode: internal, NetworkingConfig: { EndpointsConfig: endpoints } };
}

/** dockerode create options for one planned container. Pure: snapshot-tested. */
export function containerCreateOptions(input: ContainerOptionsInput): Docker.ContainerCreateOptions {
  const { container, plan } = input;
  const security = container.security ?? {};
  const env = { ...container.env, ...input.secretEnv };
  const placement = networkPlacement(plan, container);
  const options: Docker.ContainerCreateOptions = {
    name: container.runtimeName,
    Image: container.image,
    Env: Object.entries(env).map(([key, value]) => `${key}=${value}`),
    Labels: { ...container.labels, ...input.extraLabels },
    ExposedPorts: Object.fromEntries(
      (container.ports ?? []).map((port) => [`${port.containerPort}/${port.protocol ?? 'tcp'}`, {}]),
    ),
    HostConfig: {
      NetworkMode: placement.NetworkMode,
      Binds: [
        ...(input.dataVolume ? [`${input.dataVolume.volumeName}:${input.dataVolume.directory}`] : []),
        ...input.volumes.map((volume) => `${volume.volumeName}:${volume.directory}:ro`),
      ],
      RestartPolicy: { Name: 'unless-stopped' },
      ...(security.readOnlyRootFilesystem ? { ReadonlyRootfs: true } : {}),
      ...(security.dropAllCapabilities ? { CapDrop: ['ALL'] } : {}),
      ...(security.noNewPrivileges ? { SecurityOpt: ['no-new-privileges'] } : {}),
      ...(container.tmpfs?.length
        ? { Tmpfs: Object.fromEntries(container.tmpfs.map((path) => [path, 'rw,nosuid,nodev,size=64m'])) }
        : {}),
    },
    ...(placement.NetworkingConfig ? { NetworkingConfig: placement.NetworkingConfig } : {}),
  };
  if (security.runAsUser !== undefined) {
    options.User = `${security.runAsUser}${security.runAsGroup !== undefined ? `:${security.runAsGroup}` : ''}`;
  }
  // `command` is the full argv: the first element replaces the image's entrypoint.
  if (container.command?.length) {
    options.Entrypoint = [container.command[0] as string];
    options.Cmd = container.command.slice(1);
  }
  return options;
}

export interface HelperOptionsInput {
  plan: StoredPlan;
  image: string;
  kind: RuntimeKind;
  extraLabels: Record<string, string>;
  labels: Record<string, string>;
}

/**
 * The network helper publishes every published port of the instance. In
 * `proxy-only` it joins the egress and internal networks and forwards each port to
 * its container by name (the agent keeps no route out); in `open` it holds the
 * shared namespace on the runtime's default network.
 */
export function helperCreateOptions(input: HelperOptionsInput): Docker.ContainerCreateOptions {
  const { plan } = input;
  const publishes = [
    ...plan.publish.map((entry) => ({ ...entry, container: entry.container })),
    ...plan.containers.flatMap((container) =>
      container.role === 'agent'
        ? []
        : (container.ports ?? [])
            .filter((port) => port.publish)
            .map((port) => ({
              container: container.name,
              containerPort: port.containerPort,
              hostPort: null,
              hostAddress: '127.0.0.1',
            })),
    ),
  ];
  const portBindings = Object.fromEntries(
    publishes.map((entry) => [
      `${entry.containerPort}/tcp`,
      [{ HostIp: entry.hostAddress, HostPort: entry.hostPort == null ? '' : String(entry.hostPort) }],
    ]),
  );
  const exposed = Object.fromEntries(publishes.map((entry) => [`${entry.containerPort}/tcp`, {}]));
  const base: Docker.ContainerCreateOptions = {
    name: helperRuntimeName(plan.instance.name),
    Image: input.image,
    Labels: { ...input.labels, ...input.extraLabels, [localLabelKeys.role]: 'network-helper' },
    ExposedPorts: exposed,
  };
  if (plan.network.mode === 'open') {
    return {
      ...base,
      Env: [],
      HostConfig: {
        NetworkMode: egressNetworkName(plan),
        PortBindings: portBindings,
        RestartPolicy: { Name: 'unless-stopped' },
        CapDrop: ['ALL'],
        SecurityOpt: ['no-new-privileges'],
        ReadonlyRootfs: true,
      },
    };
  }
  const internal = plan.network.internalNetwork as string;
  const egress = plan.network.egressNetwork as string;
  return {
    ...base,
    Env: [
      `FORWARDS=${publishes.map((entry) => `${entry.containerPort}=${entry.container}:${entry.containerPort}`).join(',')}`,
    ],
    HostConfig: {
      NetworkMode: egress,
      PortBindings: portBindings,
      RestartPolicy: { Name: 'unless-stopped' },
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      ReadonlyRootfs: true,
    },
    NetworkingConfig: { EndpointsConfig: { [egress]: {}, [internal]: {} } },
  };
}
