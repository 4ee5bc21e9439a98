import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
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
});
