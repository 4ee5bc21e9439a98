import { existsSync } from 'node:fs';
import { type DetectionResultV1, withTimeout } from '@keyward/core';
import Docker from 'dockerode';
import { type RuntimeKind, runtimeKindFromVersion } from './runtime-differences.js';

/** Where a runtime's API can be reached. */
export type RuntimeEndpoint =
  | { socketPath: string }
  | { protocol: 'http' | 'https'; host: string; port: number };

export interface DetectionContext {
  env: NodeJS.ProcessEnv;
  /** Effective uid of this process, for the rootless podman socket path. */
  uid: number;
  fileExists(path: string): boolean;
}

/** One way of finding a runtime; `endpoint` returns nothing when it does not apply. */
export interface RuntimeDetectionStrategy {
  readonly name: string;
  endpoint(context: DetectionContext): RuntimeEndpoint | undefined | { skip: string };
}

export function parseHostUrl(value: string): RuntimeEndpoint {
  if (value.startsWith('unix://')) return { socketPath: value.slice('unix://'.length) };
  const url = new URL(value.replace(/^tcp:\/\//, 'http://'));
  const protocol = url.protocol === 'https:' ? 'https' : 'http';
  return { protocol, host: url.hostname, port: Number(url.port || (protocol === 'https' ? 2376 : 2375)) };
}

function socketStrategy(name: string, path: (context: DetectionContext) => string | undefined) {
  return {
    name,
    endpoint(context: DetectionContext) {
      const socketPath = path(context);
      if (!socketPath) return { skip: 'not applicable' };
      return context.fileExists(socketPath) ? { socketPath } : { skip: `no socket at ${socketPath}` };
    },
  } satisfies RuntimeDetectionStrategy;
}

export const environmentHostStrategy: RuntimeDetectionStrategy = {
  name: 'DOCKER_HOST/CONTAINER_HOST',
  endpoint({ env }) {
    const value = env['DOCKER_HOST'] || env['CONTAINER_HOST'];
    return value ? parseHostUrl(value) : { skip: 'neither DOCKER_HOST nor CONTAINER_HOST is set' };
  },
};

/** The socket `scripts/setup.sh` (through `scripts/ci/start-podman.sh`) starts; a shell script cannot export DOCKER_HOST to its caller. */
export const keywardPodmanSocketStrategy = socketStrategy(
  'keyward podman socket',
  ({ env }) => env['KEYWARD_PODMAN_SOCKET'] || '/run/keyward-podman.sock',
);

export const rootlessPodmanSocketStrategy = socketStrategy('rootless podman socket', ({ env, uid }) => {
  if (uid === 0) return undefined;
  const runtimeDirectory = env['XDG_RUNTIME_DIR'] || `/run/user/${uid}`;
  return `${runtimeDirectory}/podman/podman.sock`;
});

export const rootfulPodmanSocketStrategy = socketStrategy(
  'rootful podman socket',
  () => '/run/podman/podman.sock',
);

export const dockerSocketStrategy = socketStrategy('docker socket', () => '/var/run/docker.sock');

/** The default order: explicit configuration first, then podman, then docker. */
export const defaultDetectionStrategies: readonly RuntimeDetectionStrategy[] = [
  environmentHostStrategy,
  keywardPodmanSocketStrategy,
  rootlessPodmanSocketStrategy,
  rootfulPodmanSocketStrategy,
  dockerSocketStrategy,
];

export const runtimeStartHint =
  'Start a container runtime API and point DOCKER_HOST at it, for example: ' +
  '`podman system service --time=0 unix:///run/keyward-podman.sock &` then ' +
  '`export DOCKER_HOST=unix:///run/keyward-podman.sock` (rootless: `systemctl --user start podman.socket`; ' +
  'docker: `systemctl start docker`). On keyward CI machines run `scripts/ci/start-podman.sh`.';

export interface DetectedRuntime {
  result: DetectionResultV1;
  /** Each strategy that did not find a runtime, and why (also in `result.reason`). */
  tried: string[];
  docker?: Docker;
  kind?: RuntimeKind;
}

export interface DetectRuntimeOptions {
  strategies?: readonly RuntimeDetectionStrategy[];
  context?: Partial<DetectionContext>;
  createClient?: (endpoint: RuntimeEndpoint) => Docker;
  timeoutMs?: number;
}

/** The endpoint as a URL, for messages and `DetectionResultV1.runtime.endpoint`. */
export function describeEndpoint(endpoint: RuntimeEndpoint): string {
  return 'socketPath' in endpoint
    ? `unix://${endpoint.socketPath}`
    : `${endpoint.protocol}://${endpoint.host}:${endpoint.port}`;
}

/** A dockerode client for an endpoint. */
export function dockerForEndpoint(endpoint: RuntimeEndpoint): Docker {
  return 'socketPath' in endpoint ? new Docker({ socketPath: endpoint.socketPath }) : new Docker(endpoint);
}

/** Tries each strategy in order; the first whose API answers `version` wins. */
export async function detectRuntime(options: DetectRuntimeOptions = {}): Promise<DetectedRuntime> {
  const strategies = options.strategies ?? defaultDetectionStrategies;
  const context: DetectionContext = {
    env: options.context?.env ?? process.env,
    uid: options.context?.uid ?? process.getuid?.() ?? 0,
    fileExists: options.context?.fileExists ?? existsSync,
  };
  const createClient = options.createClient ?? dockerForEndpoint;
  const tried: string[] = [];
  for (const strategy of strategies) {
    const endpoint = strategy.endpoint(context);
    if (!endpoint || 'skip' in endpoint) {
      tried.push(`${strategy.name}: ${endpoint?.skip ?? 'not applicable'}`);
      continue;
    }
    const docker = createClient(endpoint);
    try {
      const version = await withTimeout(docker.version(), options.timeoutMs ?? 15_000);
      const kind = runtimeKindFromVersion(version);
      return {
        docker,
        kind,
        tried,
        result: {
          available: true,
          strategy: strategy.name,
          runtime: { name: kind, version: version.Version, endpoint: describeEndpoint(endpoint) },
        },
      };
    } catch (error) {
      tried.push(
        `${strategy.name}: ${describeEndpoint(endpoint)} did not answer (${(error as Error).message})`,
      );
    }
  }
  return {
    tried,
    result: {
      available: false,
      reason: `No container runtime found. Tried: ${tried.join('; ')}.`,
      hint: runtimeStartHint,
    },
  };
}
