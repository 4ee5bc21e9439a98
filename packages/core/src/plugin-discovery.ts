import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { KeywardError } from './errors/keyward-error.js';
import type { PluginLoadError, ProviderRegistry } from './registry.js';
import { supportedSpecificationVersions } from './registry.js';
import type { KeywardPluginV1 } from './spec/v1/plugin-v1.js';
import type { KeywardPluginV2 } from './spec/v2/plugin-v2.js';

/** The package.json keyword that marks an installed package as a keyward plugin. */
export const pluginKeyword = 'keyward-provider';

export interface DiscoverPluginsOptions {
  registry: ProviderRegistry;
  /** node_modules folders to scan for packages with the keyword. Default: `<cwd>/node_modules`. */
  nodeModulesDirectories?: string[];
  /** A JSON file `{ "plugins": ["package-name", "./local-plugin.js"] }`. Missing file: ignored. */
  configFile?: string;
  /** Injectable for tests. */
  importModule?: (url: string) => Promise<unknown>;
}

export interface DiscoverPluginsResult {
  loaded: { source: string; name: string }[];
  errors: PluginLoadError[];
}

interface PackageManifest {
  name?: string;
  keywords?: unknown;
  main?: string;
  exports?: unknown;
}

function entryOf(manifest: PackageManifest): string {
  const pick = (value: unknown): string | undefined => {
    if (typeof value === 'string') return value;
    if (value && typeof value === 'object') {
      const record = value as Record<string, unknown>;
      // `dev-source` is the monorepo's own condition; installed plugins are built.
      for (const condition of ['import', 'node', 'default']) {
        const found = pick(record[condition]);
        if (found) return found;
      }
      if ('.' in record) return pick(record['.']);
    }
    return undefined;
  };
  return pick(manifest.exports) ?? manifest.main ?? 'index.js';
}

async function readManifest(directory: string): Promise<PackageManifest | undefined> {
  try {
    return JSON.parse(await readFile(join(directory, 'package.json'), 'utf8')) as PackageManifest;
  } catch {
    return undefined;
  }
}

async function packageDirectories(nodeModules: string): Promise<string[]> {
  if (!existsSync(nodeModules)) return [];
  const result: string[] = [];
  for (const entry of await readdir(nodeModules, { withFileTypes: true })) {
    if (entry.name.startsWith('.')) continue;
    const path = join(nodeModules, entry.name);
    if (entry.name.startsWith('@')) {
      for (const scoped of await readdir(path, { withFileTypes: true }).catch(() => [])) {
        result.push(join(path, scoped.name));
      }
    } else {
      result.push(path);
    }
  }
  return result.sort();
}

function findPackageDirectory(name: string, fromDirectory: string): string | undefined {
  let directory = resolve(fromDirectory);
  for (;;) {
    const candidate = join(directory, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    const parent = dirname(directory);
    if (parent === directory) return undefined;
    directory = parent;
  }
}

function asPlugin(moduleNamespace: unknown, source: string): KeywardPluginV1 | KeywardPluginV2 {
  const namespace = (moduleNamespace ?? {}) as Record<string, unknown>;
  const plugin = (namespace['keywardPlugin'] ?? namespace['default']) as
    | KeywardPluginV1
    | KeywardPluginV2
    | undefined;
  if (!plugin || typeof plugin !== 'object') {
    throw new KeywardError({
      code: 'PLUGIN_LOAD_FAILED',
      message: `Plugin ${source} exports neither "keywardPlugin" nor a default plugin object.`,
    });
  }
  if (!supportedSpecificationVersions.includes(plugin.specificationVersion)) {
    throw new KeywardError({
      code: 'UNSUPPORTED_SPEC_VERSION',
      message: `Plugin ${source} implements specification version ${JSON.stringify(plugin.specificationVersion)}; this keyward supports ${supportedSpecificationVersions.join(', ')}.`,
    });
  }
  return plugin;
}

/**
 * Finds plugins by package keyword and by config file, and registers them. A
 * plugin that fails to load is reported with its error; it never takes the
 * caller down.
 */
export async function discoverPlugins(options: DiscoverPluginsOptions): Promise<DiscoverPluginsResult> {
  const importModule = options.importModule ?? ((url: string) => import(url));
  const result: DiscoverPluginsResult = { loaded: [], errors: [] };
  const candidates: { source: string; url: string }[] = [];
  const seen = new Set<string>();

  const addPackage = async (directory: string, requireKeyword: boolean, source?: string) => {
    const manifest = await readManifest(directory);
    if (!manifest) {
      if (source)
        result.errors.push({
          source,
          code: 'PLUGIN_LOAD_FAILED',
          message: `Plugin ${source}: no package.json in ${directory}.`,
        });
      return;
    }
    const keywords = Array.isArray(manifest.keywords) ? manifest.keywords : [];
    if (requireKeyword && !keywords.includes(pluginKeyword)) return;
    const name = manifest.name ?? directory;
    if (seen.has(name)) return;
    seen.add(name);
    candidates.push({ source: source ?? name, url: pathToFileURL(join(directory, entryOf(manifest))).href });
  };

  for (const nodeModules of options.nodeModulesDirectories ?? [join(process.cwd(), 'node_modules')]) {
    for (const directory of await packageDirectories(nodeModules)) await addPackage(directory, true);
  }

  if (options.configFile && existsSync(options.configFile)) {
    try {
      const config = JSON.parse(await readFile(options.configFile, 'utf8')) as { plugins?: unknown };
      if (config.plugins !== undefined && !Array.isArray(config.plugins)) {
        throw new Error('"plugins" must be an array of package names or paths');
      }
      const base = dirname(resolve(options.configFile));
      for (const entry of (config.plugins ?? []) as unknown[]) {
        if (typeof entry !== 'string') {
          result.errors.push({
            source: options.configFile,
            code: 'PLUGIN_LOAD_FAILED',
            message: `Plugin entries must be strings, got ${JSON.stringify(entry)}.`,
          });
        } else if (entry.startsWith('.') || isAbsolute(entry)) {
          const path = resolve(base, entry);
          if (seen.has(path)) continue;
          seen.add(path);
          candidates.push({ source: entry, url: pathToFileURL(path).href });
        } else {
          const directory = findPackageDirectory(entry, base);
          if (directory) await addPackage(directory, false, entry);
          else
            result.errors.push({
              source: entry,
              code: 'PLUGIN_LOAD_FAILED',
              // Found from the config file's folder upwards, so that is where it must go.
              message: `Plugin package "${entry}" (listed in ${options.configFile}) is not installed; run "npm install --prefix ${base} ${entry}".`,
            });
        }
      }
    } catch (error) {
      result.errors.push({
        source: options.configFile,
        code: 'PLUGIN_LOAD_FAILED',
        message: `Could not read plugin config ${options.configFile}: ${error instanceof Error ? error.message : String(error)}`,
      });
    }
  }

  for (const candidate of candidates) {
    try {
      const plugin = asPlugin(await importModule(candidate.url), candidate.source);
      const before = options.registry.loadErrors.length;
      options.registry.registerPlugin(plugin, candidate.source);
      result.errors.push(...options.registry.loadErrors.slice(before));
      result.loaded.push({ source: candidate.source, name: plugin.name });
    } catch (error) {
      options.registry.recordLoadError(candidate.source, error);
      result.errors.push({
        source: candidate.source,
        code: KeywardError.isInstance(error) ? error.code : 'PLUGIN_LOAD_FAILED',
        message: `Plugin ${candidate.source} failed to load: ${error instanceof Error ? error.message : String(error)}`,
      });
    }
  }
  return result;
}
