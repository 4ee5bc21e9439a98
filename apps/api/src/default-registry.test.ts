import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMemoryTargetProvider } from '@keyward/core/testing';
import { describe, expect, it } from 'vitest';
import { createApp } from './app.js';
import { createDefaultRegistry } from './default-registry.js';

describe('createDefaultRegistry', () => {
  it('registers the built-in providers and lists plugins that fail to load, without failing', {
    timeout: 30_000,
  }, async () => {
    const dataDirectory = mkdtempSync(join(tmpdir(), 'keyward-registry-'));
    writeFileSync(
      join(dataDirectory, 'broken-plugin.mjs'),
      'export default { specificationVersion: "v7", name: "x" };',
    );
    writeFileSync(
      join(dataDirectory, 'plugins.json'),
      JSON.stringify({ plugins: ['./broken-plugin.mjs', 'keyward-plugin-not-installed'] }),
    );
    const registry = await createDefaultRegistry({ dataDirectory, nodeModulesDirectories: [] });
    expect(registry.listSidecars().map((provider) => provider.id)).toEqual(['tokenizer', 'litellm', 'otel']);
    expect(registry.getSidecar('tokenizer')?.roles).toEqual(['credentials']);
    expect(registry.getSidecar('tokenizer')?.view?.absent).toEqual({ enabled: false, credentials: [] });
    // provider-local is registered, or listed with the reason it could not be.
    const local = registry.getTarget('local');
    const localError = registry.loadErrors.find((error) => error.source === '@keyward/provider-local');
    expect(local !== undefined || localError !== undefined).toBe(true);
    expect(
      registry.loadErrors
        .filter((error) => error.source !== '@keyward/provider-local')
        .map((error) => [error.source, error.code])
        .sort(),
    ).toEqual([
      ['./broken-plugin.mjs', 'UNSUPPORTED_SPEC_VERSION'],
      ['keyward-plugin-not-installed', 'PLUGIN_LOAD_FAILED'],
    ]);
  });

  it('loads only the built-ins KEYWARD_BUILTINS names, so tests never see this machine’s runtime', async () => {
    const only = await createDefaultRegistry({
      discover: false,
      environment: { KEYWARD_BUILTINS: '@keyward/provider-tokenizer' },
    });
    expect(only.listSidecars().map((provider) => provider.id)).toEqual(['tokenizer']);
    expect(only.listTargets()).toEqual([]);
    expect(only.loadErrors).toEqual([]);
    const none = await createDefaultRegistry({ discover: false, environment: { KEYWARD_BUILTINS: 'none' } });
    expect([none.listSidecars(), none.listTargets()]).toEqual([[], []]);
    const explicit = await createDefaultRegistry({ discover: false, builtIns: [] });
    expect(explicit.listSidecars()).toEqual([]);
  });

  it('a KUBECONFIG that names a missing file makes k8s unavailable with a message that says what to fix', async () => {
    const saved = process.env['KUBECONFIG'];
    const missing = join(mkdtempSync(join(tmpdir(), 'keyward-bad-kube-')), 'missing-kubeconfig');
    process.env['KUBECONFIG'] = missing;
    try {
      const registry = await createDefaultRegistry({
        discover: false,
        environment: { KEYWARD_BUILTINS: '@keyward/provider-k8s' },
      });
      const detected = await registry.getTarget('k8s')?.detect();
      expect(detected).toMatchObject({ available: false });
      expect(detected?.reason).toContain(`The kubeconfig could not be read (ENOENT`);
      expect(detected?.reason).toContain(missing);
      expect(detected?.reason).toMatch(/point KUBECONFIG at a readable kubeconfig, or unset it/);
    } finally {
      if (saved === undefined) delete process.env['KUBECONFIG'];
      else process.env['KUBECONFIG'] = saved;
    }
  });

  it('registers the Kubernetes target; with no kubeconfig it is unavailable and `GET /api/instances` lists the rest with one k8s error', async () => {
    const saved = { KUBECONFIG: process.env['KUBECONFIG'], HOME: process.env['HOME'] };
    delete process.env['KUBECONFIG'];
    process.env['HOME'] = mkdtempSync(join(tmpdir(), 'keyward-no-kube-'));
    try {
      const registry = await createDefaultRegistry({
        discover: false,
        environment: {
          KEYWARD_BUILTINS: '@keyward/provider-k8s',
          KEYWARD_K8S_NAMESPACES: 'agents-a, agents-b',
        },
      });
      const k8s = registry.getTarget('k8s');
      expect(registry.loadErrors).toEqual([]);
      expect(await k8s?.detect()).toMatchObject({
        available: false,
        reason: expect.stringMatching(/^No kubeconfig: KUBECONFIG is not set/),
      });
      const memory = createMemoryTargetProvider();
      registry.registerTarget(memory);
      const token = 'kw_test-token-for-the-registry-test-0123';
      const app = createApp({ registry, token, logger: { log() {} } });
      const response = await app.request('/api/instances', { headers: { authorization: `Bearer ${token}` } });
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({
        instances: [],
        errors: [
          {
            target: 'k8s',
            code: 'RUNTIME_UNAVAILABLE',
            message:
              'No kubeconfig: KUBECONFIG is not set, ~/.kube/config does not exist and keyward is not running in a cluster.',
          },
        ],
      });
    } finally {
      for (const [key, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
    }
  });
});
