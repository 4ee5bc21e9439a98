// Integration-test support: the real container runtime the tests run against and
// what an instance left behind on it. For tests only.
import { labelKeys } from '@keyward/core';
import type Docker from 'dockerode';
import { localLabelKeys } from '../instance-record.js';
import { dockerForEndpoint, parseHostUrl } from '../runtime-detection.js';
import { type RuntimeKind, runtimeKindFromVersion } from '../runtime-differences.js';

/**
 * The runtime the integration tests run on: `KEYWARD_TEST_RUNTIME` (`podman`, the default, or
 * `docker` for `pnpm test:docker`). For test names; `connectToTestRuntime` checks it is true.
 */
export function testRuntimeKind(environment: NodeJS.ProcessEnv = process.env): RuntimeKind {
  const wanted = environment['KEYWARD_TEST_RUNTIME'] ?? 'podman';
  if (wanted !== 'podman' && wanted !== 'docker') {
    throw new Error(`KEYWARD_TEST_RUNTIME=${wanted} is not a runtime; use podman or docker.`);
  }
  return wanted;
}

function startHint(kind: RuntimeKind): string {
  return kind === 'docker'
    ? 'Run `sh scripts/docker/start-docker.sh` from the repository root first (pnpm test:docker does).'
    : 'Run `eval "$(scripts/ci/start-podman.sh)"` from the repository root first.';
}

/**
 * The runtime at DOCKER_HOST, after it answered a ping and turned out to be the runtime
 * `KEYWARD_TEST_RUNTIME` names. Fails (never skips) when none answers: CI always has both.
 */
export async function connectToTestRuntime(environment: NodeJS.ProcessEnv = process.env): Promise<Docker> {
  const wanted = testRuntimeKind(environment);
  const host = environment['DOCKER_HOST'];
  if (!host) {
    throw new Error(
      `Integration tests need a container runtime: DOCKER_HOST is not set. ${startHint(wanted)}`,
    );
  }
  const docker = dockerForEndpoint(parseHostUrl(host));
  let found: RuntimeKind;
  try {
    found = runtimeKindFromVersion(await docker.version());
  } catch (error) {
    throw new Error(
      `Integration tests need a container runtime, but DOCKER_HOST=${host} does not answer (${(error as Error).message}). ${startHint(wanted)}`,
    );
  }
  if (found !== wanted) {
    throw new Error(
      `The integration tests are to run on ${wanted} (KEYWARD_TEST_RUNTIME), but DOCKER_HOST=${host} is ${found}. ${startHint(wanted)}`,
    );
  }
  return docker;
}

/** Every labelled object (container, network, volume) of an instance that still exists. */
export async function remainingObjects(docker: Docker, instance: string): Promise<string[]> {
  const filters = { label: [`${labelKeys.instance}=${instance}`] };
  const containers = await docker.listContainers({ all: true, filters });
  const networks = await docker.listNetworks({ filters });
  const { Volumes: volumes } = await docker.listVolumes({ filters });
  return [
    ...containers.map((container) => `container ${container.Names[0]}`),
    ...networks.map((network) => `network ${network.Name}`),
    ...(volumes ?? []).map((volume) => `volume ${volume.Name}`),
  ];
}

/** The instance's containers by label: name (no leading slash), component and state. */
export async function containersOfInstance(
  docker: Docker,
  instance: string,
): Promise<{ name: string; component: string; state: string }[]> {
  const filters = { label: [`${labelKeys.instance}=${instance}`] };
  return (await docker.listContainers({ all: true, filters })).map((summary) => ({
    name: (summary.Names[0] ?? '').replace(/^\//, ''),
    component: summary.Labels[labelKeys.component] ?? '',
    state: summary.State,
  }));
}

/**
 * File volumes of the instance (secrets and config of one generation) that no container of it
 * mounts: what an interrupted or failed operation could leave behind.
 */
export async function unusedFileVolumes(docker: Docker, instance: string): Promise<string[]> {
  const filters = { label: [`${labelKeys.instance}=${instance}`] };
  const mounted = new Set<string>();
  for (const summary of await docker.listContainers({ all: true, filters })) {
    for (const mount of (await docker.getContainer(summary.Id).inspect()).Mounts ?? []) {
      if (mount.Name) mounted.add(mount.Name);
    }
  }
  const { Volumes: volumes } = await docker.listVolumes({ filters });
  return (volumes ?? [])
    .filter((volume) => volume.Labels?.[localLabelKeys.volumeKind] === 'files' && !mounted.has(volume.Name))
    .map((volume) => volume.Name);
}

/** An instance name no other run uses, so runs on one runtime do not collide. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36).slice(-5)}${Math.floor(Math.random() * 1e4).toString(36)}`;
}
