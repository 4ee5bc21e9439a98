import type { PlannedContainerV2 } from '@keyward/core';
import type Docker from 'dockerode';
import { relayPlan, SOCKET_DIRECTORY } from './agent-network.js';
import { localLabelKeys, type StoredPlan } from './instance-record.js';
import type { RuntimeKind } from './runtime-differences.js';
import {
  agentNetworkRuntimeName,
  containerRuntimeName,
  egressNetworkName,
  helperRuntimeName,
  internalNetworkName,
  socketVolumeName,
} from './runtime-names.js';
import { publishedPorts } from './target-options.js';
import type { PlannedVolume } from './volume-files.js';

export interface ContainerOptionsInput {
  plan: StoredPlan;
  container: PlannedContainerV2;
  /** Read-only volumes with the container's files (secret files only where it mounts them). */
  volumes: readonly PlannedVolume[];
  /** Persistent read-write volumes: the container's `volumes` (the agent's state directories). */
  stateVolumes: readonly { volumeName: string; directory: string }[];
  /** Values of env-delivered secrets this container sees (agent-safe sealed tokens). */
  secretEnv: Record<string, string>;
  kind: RuntimeKind;
  extraLabels: Record<string, string>;
}

/** Which networks a container joins, by network mode, role and egress. */
export function networkPlacement(
  plan: Pick<StoredPlan, 'networkMode' | 'instance'>,
  container: Pick<PlannedContainerV2, 'name' | 'egress' | 'role'>,
): Pick<Docker.ContainerCreateOptions, 'NetworkingConfig'> & { NetworkMode: string } {
  const instance = plan.instance.name;
  if (plan.networkMode === 'open') {
    // One network namespace, held by the helper like a pod's infra container.
    return { NetworkMode: `container:${helperRuntimeName(instance)}` };
  }
  if (container.role === 'agent') {
    // No interface but loopback: the agent-network helper holds it and relays the allowed connections.
    return { NetworkMode: `container:${agentNetworkRuntimeName(instance)}` };
  }
  const internal = internalNetworkName(instance);
  const endpoints: Record<string, Docker.EndpointSettings> = {
    [internal]: { Aliases: [container.name] },
  };
  if (container.egress.type === 'internet') endpoints[egressNetworkName(instance)] = {};
  return { NetworkMode: internal, NetworkingConfig: { EndpointsConfig: endpoints } };
}

/** dockerode create options for one planned container. Pure: snapshot-tested. */
export function containerCreateOptions(input: ContainerOptionsInput): Docker.ContainerCreateOptions {
  const { container, plan } = input;
  const security = container.security ?? {};
  const env = { ...container.env, ...input.secretEnv };
  const placement = networkPlacement(plan, container);
  const options: Docker.ContainerCreateOptions = {
    name: containerRuntimeName(plan.instance.name, container.name),
    Image: container.image,
    Env: Object.entries(env).map(([key, value]) => `${key}=${value}`),
    Labels: { ...container.labels, ...input.extraLabels },
    // A container in another's namespace exposes nothing of its own (the holder publishes);
    // docker refuses the pair ("conflicting options: port exposing and the container type network mode").
    ...(placement.NetworkMode.startsWith('container:')
      ? {}
      : {
          ExposedPorts: Object.fromEntries(
            container.ports.map((port) => [`${port.containerPort}/${port.protocol ?? 'tcp'}`, {}]),
          ),
        }),
    HostConfig: {
      NetworkMode: placement.NetworkMode,
      Binds: [
        ...input.stateVolumes.map((volume) => `${volume.volumeName}:${volume.directory}`),
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
 * The network helper publishes the plan's ingress (the agent's port) with the target options'
 * host port and address. In `proxy-only` it joins the egress and internal networks and forwards
 * each port to its container by name (the agent keeps no route out); in `open` it holds the
 * shared namespace on the instance's own egress network.
 */
export function helperCreateOptions(input: HelperOptionsInput): Docker.ContainerCreateOptions {
  const { plan } = input;
  const instance = plan.instance.name;
  const publishes = publishedPorts(plan);
  const portBindings = Object.fromEntries(
    publishes.map((entry) => [
      `${entry.containerPort}/tcp`,
      [{ HostIp: entry.hostAddress, HostPort: entry.hostPort == null ? '' : String(entry.hostPort) }],
    ]),
  );
  const exposed = Object.fromEntries(publishes.map((entry) => [`${entry.containerPort}/tcp`, {}]));
  const base: Docker.ContainerCreateOptions = {
    name: helperRuntimeName(instance),
    Image: input.image,
    Labels: { ...input.labels, ...input.extraLabels, [localLabelKeys.role]: 'network-helper' },
    ExposedPorts: exposed,
  };
  const egress = egressNetworkName(instance);
  if (plan.networkMode === 'open') {
    return {
      ...base,
      Env: [],
      HostConfig: { NetworkMode: egress, PortBindings: portBindings, ...hardenedHelper },
    };
  }
  const internal = internalNetworkName(instance);
  return {
    ...base,
    Env: [`RELAYS=${JSON.stringify(relayPlan(plan).outside)}`],
    HostConfig: {
      NetworkMode: egress,
      PortBindings: portBindings,
      Binds: [`${socketVolumeName(instance)}:${SOCKET_DIRECTORY}`],
      ...hardenedHelper,
    },
    NetworkingConfig: { EndpointsConfig: { [egress]: {}, [internal]: {} } },
  };
}

const hardenedHelper = {
  RestartPolicy: { Name: 'unless-stopped' },
  CapDrop: ['ALL'],
  SecurityOpt: ['no-new-privileges'],
  ReadonlyRootfs: true,
};

/**
 * proxy-only: the helper that holds the agent's network namespace (`none`: loopback only) and
 * relays the plan's allowed connections and the ingress through the shared socket volume.
 */
export function agentNetworkCreateOptions(input: HelperOptionsInput): Docker.ContainerCreateOptions {
  const { plan } = input;
  const instance = plan.instance.name;
  return {
    name: agentNetworkRuntimeName(instance),
    Image: input.image,
    Labels: { ...input.labels, ...input.extraLabels, [localLabelKeys.role]: 'agent-network' },
    Env: [`RELAYS=${JSON.stringify(relayPlan(plan).inside)}`],
    HostConfig: {
      NetworkMode: 'none',
      Binds: [`${socketVolumeName(instance)}:${SOCKET_DIRECTORY}`],
      ...hardenedHelper,
    },
  };
}
