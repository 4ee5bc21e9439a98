// Finding a container runtime for the demo, and saying exactly how to get one.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KeywardError } from '@keyward/core';
import {
  createLocalProvider,
  type DetectionContext,
  defaultDetectionStrategies,
  type LocalProvider,
  type RuntimeDetectionStrategy,
  type RuntimeEndpoint,
} from '@keyward/provider-local';
import Docker from 'dockerode';

/** Where `scripts/ci/start-podman.sh` (run by `scripts/setup.sh`) puts podman's API socket. */
export const KEYWARD_PODMAN_SOCKET = '/run/keyward-podman.sock';

// provider-local looks at DOCKER_HOST, then the socket scripts/setup.sh starts, then the usual places.
export const demoDetectionStrategies: readonly RuntimeDetectionStrategy[] = defaultDetectionStrategies;

/** The repository's podman starter, when the CLI runs from a checkout of keyward. */
export function findStartPodmanScript(): string | undefined {
  let directory = dirname(fileURLToPath(import.meta.url));
  for (let depth = 0; depth < 8; depth += 1) {
    const candidate = join(directory, 'scripts', 'ci', 'start-podman.sh');
    if (existsSync(candidate)) return candidate;
    const parent = dirname(directory);
    if (parent === directory) break;
    directory = parent;
  }
  return undefined;
}

export function runtimeInstructions(): string {
  const script = findStartPodmanScript();
  const steps = [
    ...(script
      ? [
          `on this kind of Linux machine run:  eval "$(sh ${script})"  (installs podman if needed and starts its API socket)`,
        ]
      : []),
    'or install podman (https://podman.io/docs/installation) and start its API: `podman system service --time=0 unix:///run/keyward-podman.sock &` then `export DOCKER_HOST=unix:///run/keyward-podman.sock` (rootless: `systemctl --user start podman.socket`)',
    'or install docker and start it (`systemctl start docker`); keyward finds /var/run/docker.sock',
  ];
  return `keyward demo needs a container runtime with a Docker-compatible API. To get one:\n${steps.map((step) => `  - ${step}`).join('\n')}\nthen run the demo again.`;
}

export interface DemoRuntime {
  provider: LocalProvider;
  docker: Docker;
  name: string;
  version?: string;
  endpoint: string;
  strategy: string;
  /** Set when the runtime was found without DOCKER_HOST: other keyward commands need it. */
  dockerHostHint?: string;
}

function describeEndpoint(endpoint: RuntimeEndpoint): string {
  return 'socketPath' in endpoint
    ? `unix://${endpoint.socketPath}`
    : `${endpoint.protocol}://${endpoint.host}:${endpoint.port}`;
}

function dockerFor(endpoint: RuntimeEndpoint): Docker {
  return 'socketPath' in endpoint ? new Docker({ socketPath: endpoint.socketPath }) : new Docker(endpoint);
}

function withTimeout<T>(promise: Promise<T>, milliseconds: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${milliseconds / 1000} s`)), milliseconds);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export interface DetectDemoRuntimeOptions {
  environment?: NodeJS.ProcessEnv;
  /** How long one endpoint may take to answer; a busy podman can take seconds for `version`. */
  timeoutMs?: number;
  /** Defaults to `demoDetectionStrategies`; injectable for tests. */
  strategies?: readonly RuntimeDetectionStrategy[];
  fileExists?: (path: string) => boolean;
}

/**
 * Finds the runtime with provider-local's strategies (plus the keyward socket) and
 * asks it with provider-local's `detect()`, giving a busy runtime more time than
 * detection's default. Throws RUNTIME_UNAVAILABLE with instructions when there is none.
 */
export async function detectDemoRuntime(options: DetectDemoRuntimeOptions = {}): Promise<DemoRuntime> {
  const environment = options.environment ?? process.env;
  const context: DetectionContext = {
    env: environment,
    uid: process.getuid?.() ?? 0,
    fileExists: options.fileExists ?? existsSync,
  };
  const tried: string[] = [];
  for (const strategy of options.strategies ?? demoDetectionStrategies) {
    const endpoint = strategy.endpoint(context);
    if (!endpoint || 'skip' in endpoint) {
      tried.push(`${strategy.name}: ${endpoint?.skip ?? 'not applicable'}`);
      continue;
    }
    const docker = dockerFor(endpoint);
    const provider = createLocalProvider({ docker });
    const address = describeEndpoint(endpoint);
    try {
      const detection = await withTimeout(provider.detect(), options.timeoutMs ?? 20_000);
      if (!detection.available) {
        tried.push(`${strategy.name}: ${address} ${detection.reason ?? 'is not available'}`);
        continue;
      }
      const kind = detection.runtime?.name === 'docker' ? 'docker' : 'podman';
      return {
        // Knowing the kind spares a second `version` call, which takes seconds on a busy podman.
        provider: createLocalProvider({ docker, runtimeKind: kind }),
        docker,
        name: detection.runtime?.name ?? 'unknown',
        ...(detection.runtime?.version ? { version: detection.runtime.version } : {}),
        endpoint: address,
        strategy: strategy.name,
        // No DOCKER_HOST hint: every keyward command detects the runtime with the same strategies.
      };
    } catch (error) {
      tried.push(`${strategy.name}: ${address} did not answer (${(error as Error).message})`);
    }
  }
  throw new KeywardError({
    code: 'RUNTIME_UNAVAILABLE',
    message: `No container runtime found. Tried: ${tried.join('; ')}.\n${runtimeInstructions()}`,
    details: { tried },
  });
}
