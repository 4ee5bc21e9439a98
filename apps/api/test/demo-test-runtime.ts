// Integration tests need a real runtime. With DOCKER_HOST unset they start the
// repository's podman API socket (scripts/ci/start-podman.sh) instead of skipping.
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dockerFromEnvironment } from '@keyward/images';
import type Docker from 'dockerode';

export const repositoryRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** Sets DOCKER_HOST (starting podman's socket if needed) and returns a client for it. */
export async function dockerForTests(): Promise<Docker> {
  if (!process.env['DOCKER_HOST']) {
    const exports = execFileSync('sh', [join(repositoryRoot, 'scripts/ci/start-podman.sh')], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    for (const match of exports.matchAll(/^export (\w+)=(.*)$/gm)) {
      process.env[match[1] as string] = match[2] as string;
    }
  }
  const docker = dockerFromEnvironment(process.env);
  await docker.ping();
  return docker;
}
