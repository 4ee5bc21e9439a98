import { join } from 'node:path';
import { discoverPlugins, ProviderRegistry } from '@keyward/core';

export interface DefaultRegistryOptions {
  /** Holds `plugins.json` (`{ "plugins": ["package", "./file.js"] }`). */
  dataDirectory?: string;
  /** Where to look for packages with the `keyward-provider` keyword. Default: `<cwd>/node_modules`. */
  nodeModulesDirectories?: string[];
  /** Skip plugin discovery (tests, in-process CLI runs that want only the built-ins). */
  discover?: boolean;
}

interface BuiltInProvider {
  source: string;
  kind: 'sidecar' | 'target';
  load: () => Promise<unknown>;
}

// Built-ins load like plugins: one that fails is listed in the load errors and
// the server still starts with the rest.
const builtInProviders: BuiltInProvider[] = [
  {
    source: '@keyward/provider-tokenizer',
    kind: 'sidecar',
    load: async () => (await import('@keyward/provider-tokenizer')).createTokenizerProvider(),
  },
];

/** The registry the server starts with: the built-in providers, then discovered plugins. */
export async function createDefaultRegistry(options: DefaultRegistryOptions = {}): Promise<ProviderRegistry> {
  const registry = new ProviderRegistry();
  for (const builtIn of builtInProviders) {
    try {
      const provider = await builtIn.load();
      if (builtIn.kind === 'sidecar') registry.registerSidecar(provider);
      else registry.registerTarget(provider);
    } catch (error) {
      registry.recordLoadError(builtIn.source, error);
    }
  }
  if (options.discover !== false) {
    await discoverPlugins({
      registry,
      ...(options.dataDirectory ? { configFile: join(options.dataDirectory, 'plugins.json') } : {}),
      ...(options.nodeModulesDirectories ? { nodeModulesDirectories: options.nodeModulesDirectories } : {}),
    });
  }
  return registry;
}
