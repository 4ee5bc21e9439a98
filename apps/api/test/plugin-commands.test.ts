import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../src/cli/keyward-program.js';
import { pluginsDirectory } from '../src/default-registry.js';

// `keyward plugins ls` over a plugins folder laid out as `npm install --prefix` leaves it
// (written here by hand: installing with npm is the e2e install test's part,
// scripts/e2e-install). Built-ins are off so no container runtime is looked for.
let dataDirectory: string;

function writePackage(name: string, manifest: Record<string, unknown>, source: string): void {
  const directory = join(pluginsDirectory(dataDirectory), 'node_modules', name);
  mkdirSync(directory, { recursive: true });
  writeFileSync(
    join(directory, 'package.json'),
    JSON.stringify({ name, version: '1.2.3', type: 'module', ...manifest }),
  );
  writeFileSync(join(directory, 'index.js'), source);
}

async function run(args: string[]): Promise<{ code: number; stdout: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let text = '';
  stdout.on('data', (chunk) => {
    text += chunk;
  });
  stderr.resume();
  const code = await runCli(['node', 'keyward', '--data-dir', dataDirectory, ...args], {
    stdout,
    stderr,
    environment: { ...process.env, KEYWARD_BUILTINS: 'none' },
  });
  return { code, stdout: text };
}

beforeAll(() => {
  dataDirectory = mkdtempSync(join(tmpdir(), 'keyward-plugins-'));
  mkdirSync(pluginsDirectory(dataDirectory), { recursive: true });
  writeFileSync(
    join(pluginsDirectory(dataDirectory), 'package.json'),
    JSON.stringify({
      name: 'keyward-plugins',
      private: true,
      dependencies: { 'broken-plugin': '1.2.3', 'not-a-plugin': '1.2.3', 'wrong-spec-plugin': '1.2.3' },
    }),
  );
  writePackage(
    'broken-plugin',
    { keywords: ['keyward-provider'] },
    "throw new Error('cannot start: no GREETING');\n",
  );
  writePackage('not-a-plugin', { keywords: ['something-else'] }, 'export const x = 1;\n');
  writePackage(
    'wrong-spec-plugin',
    { keywords: ['keyward-provider'] },
    "export const keywardPlugin = { specificationVersion: 'v9', name: 'wrong-spec-plugin' };\n",
  );
});

afterAll(() => rmSync(dataDirectory, { recursive: true, force: true }));

describe('keyward plugins ls', () => {
  it('lists every installed package with the reason each one fails to load', async () => {
    const { code, stdout } = await run(['plugins', 'ls']);
    expect(code).toBe(0);
    expect(stdout).toContain('✖ broken-plugin@1.2.3: failed to load');
    expect(stdout).toContain('cannot start: no GREETING');
    expect(stdout).toContain('✖ not-a-plugin@1.2.3: failed to load');
    expect(stdout).toMatch(/no "keyward-provider" keyword/);
    expect(stdout).toContain('✖ wrong-spec-plugin@1.2.3: failed to load');
    expect(stdout).toContain('UNSUPPORTED_SPEC_VERSION');
  });

  it('answers the same in JSON, with the plugins folder', async () => {
    const { code, stdout } = await run(['--json', 'plugins', 'ls']);
    expect(code).toBe(0);
    const result = JSON.parse(stdout) as {
      directory: string;
      plugins: { package: string; errors: { code: string }[] }[];
    };
    expect(result.directory).toBe(pluginsDirectory(dataDirectory));
    expect(result.plugins.map((plugin) => [plugin.package, plugin.errors[0]?.code])).toEqual([
      ['broken-plugin', 'PLUGIN_LOAD_FAILED'],
      ['not-a-plugin', 'PLUGIN_LOAD_FAILED'],
      ['wrong-spec-plugin', 'UNSUPPORTED_SPEC_VERSION'],
    ]);
  });

  it('refuses to remove a package that is not installed, naming the installed ones', async () => {
    const { code } = await run(['plugins', 'rm', 'nothing-here']);
    expect(code).toBe(3);
  });
});
