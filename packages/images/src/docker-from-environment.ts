import Docker from 'dockerode';

/**
 * A dockerode client for `DOCKER_HOST` (unix:// or tcp://), or podman's rootful
 * socket, or docker's. Only for scripts and tests; providers take their client injected.
 */
export function dockerFromEnvironment(environment: NodeJS.ProcessEnv = process.env): Docker {
  const host = environment['DOCKER_HOST'] ?? environment['CONTAINER_HOST'];
  if (!host) return new Docker({ socketPath: '/run/podman/podman.sock' });
  if (host.startsWith('unix://')) return new Docker({ socketPath: host.slice('unix://'.length) });
  const url = new URL(host.replace(/^tcp:/, 'http:'));
  return new Docker({ host: url.hostname, port: Number(url.port || 2375) });
}
