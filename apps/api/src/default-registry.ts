import { join } from 'node:path';
import { discoverPlugins, KeywardError, type KeywardErrorCode, ProviderRegistry } from '@keyward/core';

export interface DefaultRegistryOptions {
  /** Holds `plugins.json` (`{ "plugins": ["package", "./file.js"] }`). */
  dataDirectory?: string;
  /**
   * Where to look for packages with the `keyward-provider` keyword. Default: `<cwd>/node_modules`
   * and, with a data directory, the plugins `keyward plugins add` installed (`<data>/plugins/node_modules`).
   */
  nodeModulesDirectories?: string[];
  /** Skip plugin discovery (tests, in-process CLI runs that want only the built-ins). */
  discover?: boolean;
  /**
   * The built-in providers to load, by package name; default all, or `KEYWARD_BUILTINS`
   * (comma-separated, `none` for none). Tests that must not see this machine's runtime leave
   * out `@keyward/provider-local`.
   */
  builtIns?: readonly string[];
  environment?: NodeJS.ProcessEnv;
}

/** Where `keyward plugins add` installs plugin packages (`npm install --prefix`). */
export function pluginsDirectory(dataDirectory: string): string {
  return join(dataDirectory, 'plugins');
}

function builtInsFromEnvironment(environment: NodeJS.ProcessEnv): string[] | undefined {
  const value = environment['KEYWARD_BUILTINS'];
  if (value === undefined) return undefined;
  return value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '' && item !== 'none');
}

interface BuiltInProvider {
  source: string;
  kind: 'sidecar' | 'target';
  load: (environment: NodeJS.ProcessEnv) => Promise<unknown>;
}

// Built-ins load like plugins: one that fails is listed in the load errors and
// the server still starts with the rest.
const builtInProviders: BuiltInProvider[] = [
  {
    source: '@keyward/provider-tokenizer',
    kind: 'sidecar',
    load: async () => (await import('@keyward/provider-tokenizer')).createTokenizerProvider(),
  },
  {
    source: '@keyward/provider-litellm',
    kind: 'sidecar',
    load: async () => (await import('@keyward/provider-litellm')).createLitellmProvider(),
  },
  {
    source: '@keyward/provider-otel',
    kind: 'sidecar',
    load: async () => (await import('@keyward/provider-otel')).createOtelProvider(),
  },
  {
    source: '@keyward/provider-local',
    kind: 'target',
    // Detection is lazy: a machine without podman or docker still starts, with `local` unavailable.
    load: async () => (await import('@keyward/provider-local')).createLocalProvider(),
  },
  {
    source: '@keyward/provider-k8s',
    kind: 'target',
    // Lazy too: no API call until it is used, so a machine without a kubeconfig starts with `k8s`
    // unavailable. KEYWARD_K8S_NAMESPACES (comma-separated) limits it to those namespaces.
    load: async (environment) =>
      (await import('@keyward/provider-k8s')).createKubernetesProvider(
        kubernetesSettings(environment['KEYWARD_K8S_NAMESPACES']),
      ),
  },
];

function kubernetesSettings(value: string | undefined): { namespaces?: string[] } {
  const namespaces = (value ?? '')
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
  return namespaces.length > 0 ? { namespaces } : {};
}

/** The registry the server starts with: the built-in providers, then discovered plugins. */
export async function createDefaultRegistry(options: DefaultRegistryOptions = {}): Promise<ProviderRegistry> {
  const registry = new ProviderRegistry();
  const environment = options.environment ?? process.env;
  const wanted = options.builtIns ?? builtInsFromEnvironment(environment);
  for (const builtIn of builtInProviders) {
    if (wanted && !wanted.includes(builtIn.source)) continue;
    try {
      const provider = await builtIn.load(environment);
      if (builtIn.kind === 'sidecar') registry.registerSidecar(provider);
      else registry.registerTarget(provider);
    } catch (error) {
      registry.recordLoadError(builtIn.source, error);
    }
  }
  if (options.discover !== false) {
    const before = registry.loadErrors.length;
    const nodeModulesDirectories =
      options.nodeModulesDirectories ??
      (options.dataDirectory
        ? [join(process.cwd(), 'node_modules'), join(pluginsDirectory(options.dataDirectory), 'node_modules')]
        : undefined);
    const discovered = await discoverPlugins({
      registry,
      ...(options.dataDirectory ? { configFile: join(options.dataDirectory, 'plugins.json') } : {}),
      ...(nodeModulesDirectories ? { nodeModulesDirectories } : {}),
    });
    // Some failures (a plugin that is not installed, a bad config file) are only in
    // the discovery result; the registry is where the API lists them.
    const recorded = registry.loadErrors.slice(before);
    for (const error of discovered.errors) {
      if (!recorded.some((known) => known.source === error.source && known.code === error.code)) {
        registry.recordLoadError(
          error.source,
          new KeywardError({ code: error.code as KeywardErrorCode, message: error.message }),
        );
      }
    }
  }
  return registry;
}
