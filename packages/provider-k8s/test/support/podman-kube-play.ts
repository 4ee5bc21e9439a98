// Runs adapted manifests with `podman kube play` and removes everything it made: the pods
// (`podman kube down`), the podman secrets and the named volumes podman keeps after `down`.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import type { PodmanKubePlayManifests } from './podman-kube-play-adaptation.js';

export interface PodmanResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/**
 * The podman CLI, with the repository's CONTAINERS_CONF (the root vitest config sets it): the
 * machine's podman 4.3 needs its ulimits. Arguments never carry a secret (argv is readable by
 * every process on the host).
 */
export function podman(args: string[], timeoutMs = 120_000): Promise<PodmanResult> {
  return new Promise((resolve, reject) => {
    execFile('podman', args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number') {
        reject(
          new Error(
            `podman ${args.join(' ')} did not run (${error.message}); install podman with scripts/setup.sh`,
          ),
        );
        return;
      }
      resolve({ exitCode: typeof error?.code === 'number' ? error.code : 0, stdout, stderr });
    });
  });
}

export interface PlayedManifests {
  /** The file `podman kube play` read (and `podman kube down` reads). */
  file: string;
  /** Removes the pods, secrets and volumes; returns what could not be removed. Safe to call twice. */
  down(): Promise<string[]>;
}

/**
 * Creates the podman secrets through the shared API socket (podman 4.3's `secret create -`
 * reads only a FIFO, and a file would put the values on disk), then plays the manifests on
 * `network`. On failure everything made so far is removed before the error is thrown.
 */
export async function playOnPodman(
  docker: Docker,
  manifests: PodmanKubePlayManifests,
  options: {
    network: string;
    /** Static addresses on `network`, one per pod in the YAML's order (`podman kube play --ip`). */
    addresses?: string[];
  },
): Promise<PlayedManifests> {
  const directory = await mkdtemp(join(tmpdir(), 'keyward-kube-play-'));
  const file = join(directory, 'manifests.yaml');
  const down = async (): Promise<string[]> => {
    const problems: string[] = [];
    const result = await podman(['kube', 'down', file]).catch((error: Error) => ({
      exitCode: -1,
      stdout: '',
      stderr: error.message,
    }));
    // Pods that never came up (or a missing file) are what `down` finds nothing of.
    if (result.exitCode !== 0 && !/no such|no pod|does not exist|ENOENT|no such file/i.test(result.stderr)) {
      problems.push(`podman kube down: ${result.stderr.trim()}`);
    }
    for (const pod of manifests.pods) {
      const removed = await podman(['pod', 'rm', '--force', '--ignore', pod.pod]);
      if (removed.exitCode !== 0) problems.push(`pod ${pod.pod}: ${removed.stderr.trim()}`);
    }
    for (const secret of manifests.secrets) {
      const removed = await podman(['secret', 'rm', secret.name]);
      if (removed.exitCode !== 0 && !/no such secret/i.test(removed.stderr)) {
        problems.push(`secret ${secret.name}: ${removed.stderr.trim()}`);
      }
    }
    for (const volume of manifests.volumes) {
      await docker
        .getVolume(volume)
        .remove({ force: true })
        .catch((error: { statusCode?: number; message: string }) => {
          if (error.statusCode !== 404) problems.push(`volume ${volume}: ${error.message}`);
        });
    }
    await rm(directory, { recursive: true, force: true });
    return problems;
  };
  try {
    await writeFile(file, manifests.yaml, { mode: 0o600 });
    for (const secret of manifests.secrets) {
      await docker.createSecret({ Name: secret.name, Data: Buffer.from(secret.content).toString('base64') });
    }
    const addresses = (options.addresses ?? []).flatMap((address) => ['--ip', address]);
    const played = await podman(['kube', 'play', '--network', options.network, ...addresses, file], 300_000);
    if (played.exitCode !== 0) {
      throw new Error(`podman kube play failed (exit ${played.exitCode}): ${played.stderr.trim()}`);
    }
  } catch (error) {
    await down();
    throw error;
  }
  return { file, down };
}

/** Polls `check` until it returns a value, or fails after `timeoutMs` with the last problem. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 120_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      last = (error as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`${what} within ${timeoutMs / 1000} s: ${last}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}
