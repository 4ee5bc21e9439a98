// Every name this target gives a runtime object. The plan is target-neutral: runtime names,
// networks and published ports are chosen here, from the instance name and logical names.
import { createHash } from 'node:crypto';
import { runtimeName } from '@keyward/core';

/** Container names become hostnames; keep every name a DNS label's length. */
export const MAX_RUNTIME_NAME_LENGTH = 63;

export const helperComponent = 'network-helper';

/** `keyward-<instance>-<component>`, shortened with a digest when it would pass the limit. */
export function boundedRuntimeName(
  instance: string,
  component: string,
  limit = MAX_RUNTIME_NAME_LENGTH,
): string {
  const full = runtimeName(instance, component);
  if (full.length <= limit) return full;
  const digest = createHash('sha256').update(full).digest('hex').slice(0, 8);
  return `${full.slice(0, limit - digest.length - 1).replace(/-+$/, '')}-${digest}`;
}

/** The runtime name of a planned container (logical name `agent`, a sidecar's container name). */
export function containerRuntimeName(instance: string, container: string): string {
  return boundedRuntimeName(instance, container);
}

/** Where a rotation keeps an old container (stopped) until its replacement of `generation` is ready. */
export function parkedRuntimeName(runtimeName: string, generation: string): string {
  return `${runtimeName}-previous-${generation}`;
}

/** The generation whose rotation parked this container under `name`, if `name` is a parked name of `runtimeName`. */
export function parkingGeneration(name: string, runtimeName: string): string | undefined {
  const prefix = parkedRuntimeName(runtimeName, '');
  return name.startsWith(prefix) && name.length > prefix.length ? name.slice(prefix.length) : undefined;
}

export function helperRuntimeName(instance: string): string {
  return boundedRuntimeName(instance, helperComponent);
}

/** In proxy-only, the helper that holds the agent's network namespace (loopback only). */
export const agentNetworkComponent = 'agent-network';

export function agentNetworkRuntimeName(instance: string): string {
  return boundedRuntimeName(instance, agentNetworkComponent);
}

/** The volume the two helpers share their unix sockets in (proxy-only). */
export function socketVolumeName(instance: string): string {
  return boundedRuntimeName(instance, 'sockets');
}

/** The `--internal` network of a proxy-only instance: no route out. */
export function internalNetworkName(instance: string): string {
  return boundedRuntimeName(instance, 'internal');
}

/** The routable network: the helper's, and sidecars' with `egress: internet`. */
export function egressNetworkName(instance: string): string {
  return boundedRuntimeName(instance, 'egress');
}

/** A persistent volume of a container (the agent's state directories). */
export function stateVolumeName(instance: string, volume: string): string {
  return boundedRuntimeName(instance, volume);
}

/** A read-only volume with one container's files for one generation. */
export function filesVolumeName(
  instance: string,
  container: string,
  generation: string,
  index: number,
): string {
  return boundedRuntimeName(instance, `${container}-files-${generation}-${index}`, 128);
}
