import { isKeywardError } from '@keyward/core';
import { describe, expect, it } from 'vitest';
import { demoDetectionStrategies, detectDemoRuntime, KEYWARD_PODMAN_SOCKET } from './demo-runtime.js';

async function failure(options: Parameters<typeof detectDemoRuntime>[0]) {
  try {
    await detectDemoRuntime(options);
  } catch (error) {
    return error;
  }
  throw new Error('detection found a runtime');
}

describe('detectDemoRuntime', () => {
  it('with no runtime anywhere, says what it tried and exactly how to get one', async () => {
    const error = await failure({ environment: {}, fileExists: () => false });
    expect(isKeywardError(error, 'RUNTIME_UNAVAILABLE')).toBe(true);
    const message = (error as Error).message;
    expect(message).toContain('neither DOCKER_HOST nor CONTAINER_HOST is set');
    expect(message).toContain(`no socket at ${KEYWARD_PODMAN_SOCKET}`);
    expect(message).toContain('no socket at /var/run/docker.sock');
    // From a checkout, the repository's own script; and the general ways.
    expect(message).toMatch(/eval "\$\(sh \/.+\/scripts\/ci\/start-podman\.sh\)"/);
    expect(message).toContain('podman system service --time=0 unix:///run/keyward-podman.sock');
    expect(message).toContain('export DOCKER_HOST=unix:///run/keyward-podman.sock');
    expect(message).toContain('systemctl start docker');
  });

  it('reports an endpoint that exists but does not answer, and goes on to the next', async () => {
    const error = await failure({
      environment: { DOCKER_HOST: 'unix:///nonexistent/keyward-test.sock' },
      fileExists: () => false,
      timeoutMs: 2000,
    });
    expect((error as Error).message).toMatch(
      /DOCKER_HOST\/CONTAINER_HOST: unix:\/\/\/nonexistent\/keyward-test\.sock .*did not answer/,
    );
    expect((error as Error).message).toContain(`no socket at ${KEYWARD_PODMAN_SOCKET}`);
  });

  it('looks at DOCKER_HOST first, then the socket scripts/setup.sh starts, then the usual places', () => {
    expect(demoDetectionStrategies.map((strategy) => strategy.name)).toEqual([
      'DOCKER_HOST/CONTAINER_HOST',
      'keyward podman socket',
      'rootless podman socket',
      'rootful podman socket',
      'docker socket',
    ]);
    const keywardSocket = demoDetectionStrategies[1];
    const context = { env: { KEYWARD_PODMAN_SOCKET: '/tmp/other.sock' }, uid: 0, fileExists: () => true };
    expect(keywardSocket?.endpoint(context)).toEqual({ socketPath: '/tmp/other.sock' });
  });
});
