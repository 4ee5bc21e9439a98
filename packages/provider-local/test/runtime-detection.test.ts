import type Docker from 'dockerode';
import { describe, expect, it } from 'vitest';
import {
  defaultDetectionStrategies,
  detectRuntime,
  parseHostUrl,
  type RuntimeEndpoint,
} from '../src/runtime-detection.js';

const podmanVersion = {
  Version: '4.3.1',
  Components: [{ Name: 'Podman Engine', Version: '4.3.1' }],
} as unknown as Docker.DockerVersion;
const dockerVersion = {
  Version: '27.3.1',
  Components: [{ Name: 'Engine', Version: '27.3.1' }],
} as unknown as Docker.DockerVersion;

/** A fake client per endpoint: answers `version` for the listed sockets, fails for others. */
function fakeClients(answers: Record<string, Docker.DockerVersion>) {
  const asked: string[] = [];
  const createClient = (endpoint: RuntimeEndpoint) => {
    const key = 'socketPath' in endpoint ? endpoint.socketPath : `${endpoint.host}:${endpoint.port}`;
    asked.push(key);
    return {
      version: async () => {
        const answer = answers[key];
        if (!answer) throw new Error(`connect ECONNREFUSED ${key}`);
        return answer;
      },
    } as unknown as Docker;
  };
  return { asked, createClient };
}

describe('runtime detection', () => {
  it('prefers DOCKER_HOST and reports the strategy and runtime it found', async () => {
    const clients = fakeClients({
      '/run/keyward-podman.sock': podmanVersion,
      '/var/run/docker.sock': dockerVersion,
    });
    const detected = await detectRuntime({
      context: { env: { DOCKER_HOST: 'unix:///run/keyward-podman.sock' }, uid: 0, fileExists: () => true },
      createClient: clients.createClient,
    });
    expect(detected.result).toEqual({
      available: true,
      strategy: 'DOCKER_HOST/CONTAINER_HOST',
      runtime: { name: 'podman', version: '4.3.1', endpoint: 'unix:///run/keyward-podman.sock' },
    });
    expect(clients.asked).toEqual(['/run/keyward-podman.sock']);
  });

  it('looks for the keyward podman socket, the rootless podman socket under XDG_RUNTIME_DIR, then rootful podman, then docker', async () => {
    const clients = fakeClients({ '/var/run/docker.sock': dockerVersion });
    const detected = await detectRuntime({
      context: { env: { XDG_RUNTIME_DIR: '/run/user/1000' }, uid: 1000, fileExists: () => true },
      createClient: clients.createClient,
    });
    expect(clients.asked).toEqual([
      '/run/keyward-podman.sock',
      '/run/user/1000/podman/podman.sock',
      '/run/podman/podman.sock',
      '/var/run/docker.sock',
    ]);
    expect(detected.result.strategy).toBe('docker socket');
    expect(detected.kind).toBe('docker');
  });

  it('says exactly what it tried and how to start a runtime when none works', async () => {
    const clients = fakeClients({});
    const detected = await detectRuntime({
      context: {
        env: {},
        uid: 0,
        fileExists: (path) => path === '/var/run/docker.sock',
      },
      createClient: clients.createClient,
    });
    expect(detected.result.available).toBe(false);
    expect(detected.result.reason).toBe(
      'No container runtime found. Tried: DOCKER_HOST/CONTAINER_HOST: neither DOCKER_HOST nor CONTAINER_HOST is set; ' +
        'keyward podman socket: no socket at /run/keyward-podman.sock; ' +
        'rootless podman socket: not applicable; rootful podman socket: no socket at /run/podman/podman.sock; ' +
        'docker socket: unix:///var/run/docker.sock did not answer (connect ECONNREFUSED /var/run/docker.sock).',
    );
    expect(detected.result.hint).toContain('podman system service --time=0');
    expect(detected.docker).toBeUndefined();
  });

  it('takes an injected strategy list', async () => {
    const clients = fakeClients({ 'podman.example:2375': podmanVersion });
    const detected = await detectRuntime({
      strategies: [
        { name: 'fixed tcp', endpoint: () => ({ protocol: 'http', host: 'podman.example', port: 2375 }) },
      ],
      createClient: clients.createClient,
    });
    expect(detected.result.strategy).toBe('fixed tcp');
    expect(defaultDetectionStrategies.map((strategy) => strategy.name)).toEqual([
      'DOCKER_HOST/CONTAINER_HOST',
      'keyward podman socket',
      'rootless podman socket',
      'rootful podman socket',
      'docker socket',
    ]);
  });

  it('parses unix, tcp and https host URLs', () => {
    expect(parseHostUrl('unix:///run/podman/podman.sock')).toEqual({ socketPath: '/run/podman/podman.sock' });
    expect(parseHostUrl('tcp://10.0.0.2:2375')).toEqual({ protocol: 'http', host: '10.0.0.2', port: 2375 });
    expect(parseHostUrl('https://docker.example')).toEqual({
      protocol: 'https',
      host: 'docker.example',
      port: 2376,
    });
  });
});
