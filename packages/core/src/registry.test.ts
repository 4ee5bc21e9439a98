import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { discoverPlugins, pluginKeyword } from './plugin-discovery.js';
import { ProviderRegistry } from './registry.js';
import { createMemoryTargetProvider } from './testing/memory-target-provider.js';
import { createMockSidecarProvider } from './testing/mock-sidecar-provider.js';

function writePackage(root: string, name: string, manifest: Record<string, unknown>, source: string): void {
  const directory = join(root, 'node_modules', ...name.split('/'));
  mkdirSync(directory, { recursive: true });
  writeFileSync(
    join(directory, 'package.json'),
    JSON.stringify({ name, type: 'module', main: 'index.js', ...manifest }),
  );
  writeFileSync(join(directory, 'index.js'), source);
}

// A real module on disk, imported through the real import(), so discovery is exercised end to end.
function fixtureProject(): string {
  const root = mkdtempSync(join(tmpdir(), 'keyward-plugins-'));
  writePackage(
    root,
    '@acme/keyward-sidecar-echo',
    { keywords: [pluginKeyword] },
    // Plain JavaScript, as an installed (built) plugin would be; a tiny schema stands in for zod.
    `const configSchema = { safeParse: (value) => ({ success: true, data: value ?? {} }), parse: (value) => value ?? {} };
     export const keywardPlugin = {
       specificationVersion: 'v1',
       name: '@acme/keyward-sidecar-echo',
       sidecars: [{
         specificationVersion: 'v1', id: 'echo', configSchema, capabilities: { networkModes: ['proxy-only'] },
         contribute: () => ({ containers: [], secrets: [], files: [], agentEnv: {}, metadata: {} }),
         redactConfig: () => ({}),
       }],
     };`,
  );
  writePackage(root, 'keyward-broken', { keywords: [pluginKeyword] }, `throw new Error('boom at import');`);
  writePackage(
    root,
    'keyward-future',
    { keywords: [pluginKeyword] },
    `export default { specificationVersion: 'v2', name: 'keyward-future' };`,
  );
  writePackage(root, 'unrelated', { keywords: ['other'] }, `throw new Error('must never be imported');`);
  writePackage(
    root,
    'keyward-config-only',
    {},
    `export default { specificationVersion: 'v1', name: 'keyward-config-only', sidecars: [{ specificationVersion: 'v9', id: 'old' }] };`,
  );
  writeFileSync(
    join(root, 'local-plugin.js'),
    `export default { specificationVersion: 'v1', name: 'local', sidecars: [] };`,
  );
  writeFileSync(
    join(root, 'keyward.config.json'),
    JSON.stringify({ plugins: ['keyward-config-only', './local-plugin.js', 'not-installed'] }),
  );
  return root;
}

describe('ProviderRegistry', () => {
  it('registers providers by id and refuses duplicates and unknown spec versions', () => {
    const registry = new ProviderRegistry();
    registry
      .registerSidecar(createMockSidecarProvider({ id: 'a' }))
      .registerTarget(createMemoryTargetProvider());
    expect(registry.requireSidecar('a').id).toBe('a');
    expect(registry.requireTarget('memory').id).toBe('memory');
    expect(() => registry.registerSidecar(createMockSidecarProvider({ id: 'a' }))).toThrow(
      /already registered/,
    );
    expect(() =>
      registry.registerSidecar({ ...createMockSidecarProvider({ id: 'b' }), specificationVersion: 'v2' }),
    ).toThrow(expect.objectContaining({ code: 'UNSUPPORTED_SPEC_VERSION' }));
    expect(() => registry.requireSidecar('zzz')).toThrow(
      expect.objectContaining({ code: 'UNKNOWN_PROVIDER' }),
    );
    expect(() => registry.registerTarget({ specificationVersion: 'v1', id: 'half', detect() {} })).toThrow(
      /no apply\(\)/,
    );
  });
});

describe('discoverPlugins', () => {
  it('finds plugins by keyword and by config file; a broken plugin is reported, not fatal', async () => {
    const root = fixtureProject();
    const registry = new ProviderRegistry();
    const result = await discoverPlugins({
      registry,
      nodeModulesDirectories: [join(root, 'node_modules')],
      configFile: join(root, 'keyward.config.json'),
    });
    expect(result.errors.find((error) => error.source.includes('echo'))).toBeUndefined();
    expect(registry.getSidecar('echo')?.id).toBe('echo');
    expect(result.loaded.map((plugin) => plugin.name).sort()).toEqual([
      '@acme/keyward-sidecar-echo',
      'keyward-config-only',
      'local',
    ]);
    const bySource = Object.fromEntries(result.errors.map((error) => [error.source, error]));
    expect(bySource['keyward-broken']).toMatchObject({
      code: 'PLUGIN_LOAD_FAILED',
      message: expect.stringContaining('boom at import'),
    });
    expect(bySource['keyward-future']).toMatchObject({ code: 'UNSUPPORTED_SPEC_VERSION' });
    expect(bySource['keyward-config-only']).toMatchObject({ code: 'UNSUPPORTED_SPEC_VERSION' });
    expect(bySource['not-installed']).toMatchObject({
      message: expect.stringContaining('pnpm add not-installed'),
    });
    expect(bySource['unrelated']).toBeUndefined();
  });

  it('reports an unreadable config file and carries on', async () => {
    const root = mkdtempSync(join(tmpdir(), 'keyward-plugins-'));
    writeFileSync(join(root, 'keyward.config.json'), '{ not json');
    const result = await discoverPlugins({
      registry: new ProviderRegistry(),
      nodeModulesDirectories: [],
      configFile: join(root, 'keyward.config.json'),
    });
    expect(result.errors).toHaveLength(1);
    expect(result.errors[0]?.message).toMatch(/Could not read plugin config/);
  });
});
