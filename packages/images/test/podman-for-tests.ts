// Shared by the image tests that build and run containers on the real podman.
import type Docker from 'dockerode';
import { dockerFromEnvironment } from '../src/index.js';

/** A client for the podman DOCKER_HOST names, checked with a ping; without DOCKER_HOST, says how to set it. */
export async function podmanForTests(): Promise<Docker> {
  if (!process.env['DOCKER_HOST']) {
    throw new Error('DOCKER_HOST is not set: run `eval "$(scripts/ci/start-podman.sh)"` first.');
  }
  const docker = dockerFromEnvironment();
  await docker.ping();
  return docker;
}

/**
 * Calls `attempt` every `intervalMs` until it returns something (a throw counts as not yet),
 * for at most `seconds`.
 */
export async function waitFor<T>(
  what: string,
  attempt: () => Promise<T | undefined>,
  { seconds = 30, intervalMs = 200 }: { seconds?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const result = await attempt().catch(() => undefined);
    if (result !== undefined) return result;
    if (Date.now() > deadline) throw new Error(`Timed out after ${seconds} s waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
