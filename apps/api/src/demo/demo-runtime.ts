// Finding a container runtime for the demo, and saying exactly how to get one.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KeywardError } from '@keyward/core';
import {
  createLocalProvider,
  defaultDetectionStrategies,
  detectRuntime,
  type LocalProvider,
  type RuntimeDetectionStrategy,
} from '@keyward/provider-local';
import type Docker from 'dockerode';

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

export interface DetectDemoRuntimeOptions {
  environment?: NodeJS.ProcessEnv;
  /** How long one endpoint may take to answer; a busy podman can take seconds for `version`. */
  timeoutMs?: number;
  /** Defaults to `demoDetectionStrategies`; injectable for tests. */
  strategies?: readonly RuntimeDetectionStrategy[];
  fileExists?: (path: string) => boolean;
}

/**
 * Finds the runtime with provider-local's detection, giving a busy runtime more time
 * than detection's default. Throws RUNTIME_UNAVAILABLE with instructions when there is none.
 */
export async function detectDemoRuntime(options: DetectDemoRuntimeOptions = {}): Promise<DemoRuntime> {
  const { docker, kind, result, tried } = await detectRuntime({
    strategies: options.strategies ?? demoDetectionStrategies,
    context: {
      env: options.environment ?? process.env,
      ...(options.fileExists ? { fileExists: options.fileExists } : {}),
    },
    timeoutMs: options.timeoutMs ?? 20_000,
  });
  if (!docker || !kind) {
    throw new KeywardError({
      code: 'RUNTIME_UNAVAILABLE',
      message: `${result.reason}\n${runtimeInstructions()}`,
      details: { tried },
    });
  }
  return {
    // Knowing the kind spares a second `version` call, which takes seconds on a busy podman.
    provider: createLocalProvider({ docker, runtimeKind: kind }),
    docker,
    name: kind,
    ...(result.runtime?.version ? { version: result.runtime.version } : {}),
    endpoint: result.runtime?.endpoint ?? '',
    strategy: result.strategy ?? '',
    // No DOCKER_HOST hint: every keyward command detects the runtime with the same strategies.
  };
}
