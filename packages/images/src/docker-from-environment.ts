import { existsSync } from 'node:fs';
import Docker from 'dockerode';

/**
 * A dockerode client for `DOCKER_HOST` (unix:// or tcp://), else the first socket that exists:
 * the podman service `scripts/setup.sh` starts (`KEYWARD_PODMAN_SOCKET`, default
 * /run/keyward-podman.sock), podman's rootful socket, docker's. Only for scripts and tests;
 * providers take their client injected. Not provider-local's `detectRuntime`: provider-local's
 * tests build their images with this package, so importing it back would be a package cycle.
 */
export function dockerFromEnvironment(
  environment: NodeJS.ProcessEnv = process.env,
  socketExists: (path: string) => boolean = existsSync,
): Docker {
  const host = environment['DOCKER_HOST'] ?? environment['CONTAINER_HOST'];
  if (!host) {
    const candidates = [
      environment['KEYWARD_PODMAN_SOCKET'] || '/run/keyward-podman.sock',
      '/run/podman/podman.sock',
      '/var/run/docker.sock',
    ];
    const socketPath = candidates.find((candidate) => socketExists(candidate)) ?? '/run/podman/podman.sock';
    return new Docker({ socketPath });
  }
  if (host.startsWith('unix://')) return new Docker({ socketPath: host.slice('unix://'.length) });
  const url = new URL(host.replace(/^tcp:/, 'http:'));
  return new Docker({ host: url.hostname, port: Number(url.port || 2375) });
}
