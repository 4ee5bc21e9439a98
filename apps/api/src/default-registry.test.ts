import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createDefaultRegistry } from './default-registry.js';

describe('createDefaultRegistry', () => {
  it('registers the built-in providers and lists plugins that fail to load, without failing', async () => {
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
    expect(registry.listSidecars().map((provider) => provider.id)).toEqual(['tokenizer']);
    expect(registry.listTargets().map((provider) => provider.id)).toEqual(['local']);
    expect(registry.loadErrors.map((error) => [error.source, error.code]).sort()).toEqual([
      ['./broken-plugin.mjs', 'UNSUPPORTED_SPEC_VERSION'],
      ['keyward-plugin-not-installed', 'PLUGIN_LOAD_FAILED'],
    ]);
  });
});
