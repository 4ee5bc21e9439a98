import { describe, expect, it } from 'vitest';
import {
  dockerFromEnvironment,
  imageDefinitions,
  imageReference,
  parseLddOutput,
  renderDockerfile,
} from '../src/index.js';

describe('parseLddOutput', () => {
  it('keeps linked libraries and the dynamic loader, drops the vDSO', () => {
    const output = [
      '\tlinux-vdso.so.1 (0x00007ffd)',
      '\tlibdl.so.2 => /lib/x86_64-linux-gnu/libdl.so.2 (0x00007f)',
      '\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)',
      '\t/lib64/ld-linux-x86-64.so.2 (0x00007f)',
    ].join('\n');
    expect(parseLddOutput(output)).toEqual([
      '/lib/x86_64-linux-gnu/libc.so.6',
      '/lib/x86_64-linux-gnu/libdl.so.2',
      '/lib64/ld-linux-x86-64.so.2',
    ]);
  });
});

describe('image definitions', () => {
  it('name every image under localhost/ with a pinned tag and a non-root user', () => {
    for (const definition of Object.values(imageDefinitions)) {
      expect(imageReference(definition)).toMatch(/^localhost\/keyward-[a-z-]+:\d+\.\d+\.\d+$/);
      expect(definition.user).toBe('65532:65532');
    }
    expect(imageReference(imageDefinitions.tokenizer)).toBe('localhost/keyward-tokenizer:0.1.0');
  });

  it('render the same Dockerfile for the scratch and the registry base, except FROM', () => {
    const scratch = renderDockerfile(
      imageDefinitions.agentStandIn,
      'localhost/keyward-node-runtime:20',
      'abc',
    );
    const registry = renderDockerfile(imageDefinitions.agentStandIn, 'node:20-slim', 'abc');
    expect(scratch.split('\n').slice(1)).toEqual(registry.split('\n').slice(1));
    expect(registry).toMatchInlineSnapshot(`
      "FROM node:20-slim
      COPY main.mjs /app/main.mjs
      ENV PORT="18789"
      EXPOSE 18789
      LABEL keyward.dev/image-content="abc" org.opencontainers.image.description="Stand-in agent: HTTP on 18789 with /health, node available for exec."
      USER 65532:65532
      CMD ["node","/app/main.mjs"]
      "
    `);
  });
});

describe('dockerFromEnvironment', () => {
  const socketOf = (docker: ReturnType<typeof dockerFromEnvironment>) =>
    (docker.modem as unknown as { socketPath?: string }).socketPath;

  it('uses DOCKER_HOST when set', () => {
    expect(socketOf(dockerFromEnvironment({ DOCKER_HOST: 'unix:///tmp/x.sock' }, () => true))).toBe(
      '/tmp/x.sock',
    );
  });

  it('without DOCKER_HOST, prefers the podman service setup.sh starts, then podman, then docker', () => {
    const only = (path: string) => (candidate: string) => candidate === path;
    expect(socketOf(dockerFromEnvironment({}, only('/run/keyward-podman.sock')))).toBe(
      '/run/keyward-podman.sock',
    );
    expect(socketOf(dockerFromEnvironment({}, only('/run/podman/podman.sock')))).toBe(
      '/run/podman/podman.sock',
    );
    expect(socketOf(dockerFromEnvironment({}, only('/var/run/docker.sock')))).toBe('/var/run/docker.sock');
    expect(
      socketOf(dockerFromEnvironment({ KEYWARD_PODMAN_SOCKET: '/tmp/k.sock' }, only('/tmp/k.sock'))),
    ).toBe('/tmp/k.sock');
  });
});
