import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  containerfileBaseImages,
  dockerFromEnvironment,
  imageDefinitions,
  imageReference,
  parseLddOutput,
  prebuiltImageDefinitions,
  renderDockerfile,
  repositoryRoot,
  runBuildScript,
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
      expect(imageReference(definition)).toMatch(
        /^localhost\/keyward-[a-z-]+:\d+\.\d+\.\d+(-[a-z]+\d+\.\d+\.\d+)?$/,
      );
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

describe('prebuilt image definitions', () => {
  it('name each image under localhost/ with the program version, a non-root user and an existing build script', () => {
    for (const definition of Object.values(prebuiltImageDefinitions)) {
      expect(imageReference(definition)).toMatch(
        /^localhost\/keyward-[a-z-]+:\d+\.\d+\.\d+(-[a-z]+\d+\.\d+\.\d+)?$/,
      );
      expect(definition.user).toBe('65532:65532');
      expect(readFileSync(join(repositoryRoot, definition.buildScript), 'utf8')).toMatch(
        /^#!\/usr\/bin\/env bash/,
      );
    }
  });

  it('tag the collector with the builder manifest version and LiteLLM with its hash-pinned version', () => {
    const manifest = readFileSync(
      join(repositoryRoot, 'packages/images/otel-collector/builder-config.yaml'),
      'utf8',
    );
    expect(manifest).toContain(`version: ${prebuiltImageDefinitions.otelCollector.tag}\n`);
    for (const module of manifest.matchAll(/gomod: (\S+) v(\d+\.\d+\.\d+)/g)) {
      // Components share the collector's release; confmap providers are on the 1.x line.
      if (!module[1]?.includes('/confmap/'))
        expect(module[2]).toBe(prebuiltImageDefinitions.otelCollector.tag);
    }
    const requirements = readFileSync(
      join(repositoryRoot, 'packages/images/litellm/requirements.txt'),
      'utf8',
    );
    // `<litellm>-otel<opentelemetry-sdk>`, the name build-litellm.sh gives its cache too.
    const [litellmVersion, opentelemetryVersion] = prebuiltImageDefinitions.litellm.tag.split('-otel');
    expect(requirements).toContain(`\nlitellm==${litellmVersion} \\\n    --hash=sha256:`);
    expect(requirements).toContain(`\nopentelemetry-sdk==${opentelemetryVersion} \\\n    --hash=sha256:`);
    expect(requirements).toContain(
      `\nopentelemetry-exporter-otlp-proto-http==${opentelemetryVersion} \\\n    --hash=sha256:`,
    );
    const script = readFileSync(join(repositoryRoot, 'scripts/images/build-litellm.sh'), 'utf8');
    expect(script).toContain('version=$litellm_version-otel$opentelemetry_version\n');
    expect(script).toContain('cache_directory=$cache_root/litellm-$version\n');
  });

  it('pin every LiteLLM requirement by exact version and sha256, and never the malicious 1.82.7 or 1.82.8', () => {
    const requirements = readFileSync(
      join(repositoryRoot, 'packages/images/litellm/requirements.txt'),
      'utf8',
    );
    const entries = requirements
      .split('\n')
      .filter((line) => /^[a-z0-9]/i.test(line))
      .map((line) => line.replace(/\s*\\$/, ''));
    expect(entries.length).toBeGreaterThan(50);
    for (const entry of entries) expect(entry).toMatch(/^[a-z0-9._-]+(\[[a-z0-9,._-]+\])?==[^\s;]+$/i);
    // bookworm's pip 23.0 resolves a dependency's extra (litellm's `httpx[http2]`) apart from the
    // plain pin and takes the newest release unless the extra is pinned too, to the same version.
    const httpxPin = entries.find((entry) => entry.startsWith('httpx=='));
    expect(httpxPin).toBeDefined();
    expect(entries).toContain(httpxPin!.replace('httpx==', 'httpx[http2]=='));
    const blocks = requirements.split(/\n(?=[a-z0-9])/i).filter((block) => /^[a-z0-9]/i.test(block));
    for (const block of blocks) expect(block).toMatch(/--hash=sha256:[0-9a-f]{64}/);
    expect(requirements).not.toMatch(/^litellm==1\.82\.[78]\b/m);
  });
});

describe('containerfileBaseImages', () => {
  it('lists local base images, skipping scratch and earlier build stages', () => {
    expect(containerfileBaseImages('FROM scratch\nCOPY a /a\n')).toEqual([]);
    expect(containerfileBaseImages('# c\nFROM localhost/keyward-debian:bookworm\nRUN true\n')).toEqual([
      'localhost/keyward-debian:bookworm',
    ]);
    expect(
      containerfileBaseImages(
        'FROM --platform=linux/amd64 localhost/a:1 AS build\nFROM build\nFROM scratch\n',
      ),
    ).toEqual(['localhost/a:1']);
  });
});

describe('runBuildScript', () => {
  it('returns the last line of stdout and passes stderr lines on', async () => {
    const script = join(mkdtempSync(join(tmpdir(), 'keyward-build-script-')), 'build.sh');
    writeFileSync(script, 'echo step one >&2\necho ignored\necho /some/context\n');
    const lines: string[] = [];
    await expect(runBuildScript(script, { onLine: (line) => lines.push(line) })).resolves.toBe(
      '/some/context',
    );
    expect(lines).toEqual(['step one']);
  });

  it('fails with the exit code and the last lines of stderr', async () => {
    const script = join(mkdtempSync(join(tmpdir(), 'keyward-build-script-')), 'build.sh');
    writeFileSync(script, 'echo the module proxy said no >&2\nexit 3\n');
    await expect(runBuildScript(script)).rejects.toThrow(/exited with 3:\nthe module proxy said no/);
  });
});
