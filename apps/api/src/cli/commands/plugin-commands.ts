// `keyward plugins add|rm|ls`: third-party sidecar and target packages installed next to keyward,
// in `<data directory>/plugins` (`npm install --prefix`), which plugin discovery scans.
import { spawn } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { discoverPlugins, type KeywardPluginV2, ProviderRegistry, pluginKeyword } from '@keyward/core';
import type { Command } from 'commander';
import { createDefaultRegistry, pluginsDirectory } from '../../default-registry.js';
import type { CliContext } from '../cli-context.js';
import { CliError, exitCodes } from '../exit-codes.js';

interface PluginStatus {
  package: string;
  version?: string;
  plugin?: string;
  sidecars: string[];
  targets: string[];
  errors: { code: string; message: string }[];
}

function readJson(path: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

function installedPackages(directory: string): string[] {
  const manifest = readJson(join(directory, 'package.json'));
  return Object.keys((manifest?.['dependencies'] as Record<string, string> | undefined) ?? {}).sort();
}

function ensurePluginsFolder(directory: string): void {
  mkdirSync(directory, { recursive: true, mode: 0o700 });
  const manifest = join(directory, 'package.json');
  if (!existsSync(manifest)) {
    writeFileSync(
      manifest,
      `${JSON.stringify({ name: 'keyward-plugins', private: true, description: 'Plugins installed by keyward plugins add', dependencies: {} }, null, 2)}\n`,
    );
  }
}

function runNpm(arguments_: string[], context: CliContext): Promise<void> {
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  return new Promise((resolve, reject) => {
    const child = spawn(npm, arguments_, {
      env: context.io.environment,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk;
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk;
    });
    child.on('error', (error) =>
      reject(
        new CliError(
          exitCodes.runtimeFailure,
          'PLUGIN_LOAD_FAILED',
          `Could not run npm (${error.message}); keyward installs plugins with npm, which comes with Node.js.`,
        ),
      ),
    );
    child.on('close', (code) => {
      if (code === 0) resolve();
      else
        reject(
          new CliError(
            exitCodes.runtimeFailure,
            'PLUGIN_LOAD_FAILED',
            `npm ${arguments_.join(' ')} exited with ${code}:\n${output.trim().split('\n').slice(-15).join('\n')}`,
          ),
        );
    });
  });
}

/**
 * A plugin's `@keyward/*` peer dependencies (the spec it implements, `@keyward/core`) resolve to
 * this keyward's own copies: one core in the process, and npm never fetches a second one.
 */
function linkKeywardPeers(directory: string): void {
  const require = createRequire(import.meta.url);
  for (const name of installedPackages(directory)) {
    const manifest = readJson(join(directory, 'node_modules', name, 'package.json'));
    const peers = Object.keys((manifest?.['peerDependencies'] as Record<string, string> | undefined) ?? {});
    for (const peer of peers.filter((peer) => peer.startsWith('@keyward/'))) {
      const link = join(directory, 'node_modules', peer);
      let target: string;
      try {
        target = dirname(require.resolve(`${peer}/package.json`));
      } catch {
        continue; // not one of keyward's packages: loading the plugin will say it is missing
      }
      if (existsSync(link) && !lstatSync(link).isSymbolicLink()) continue; // npm installed one itself
      rmSync(link, { force: true });
      mkdirSync(dirname(link), { recursive: true });
      symlinkSync(target, link, 'dir');
    }
  }
}

/** What discovery makes of each package in the plugins folder, with the full registry's load errors. */
async function pluginStatuses(
  dataDirectory: string,
  environment: NodeJS.ProcessEnv,
): Promise<{
  plugins: PluginStatus[];
  otherErrors: { source: string; code: string; message: string }[];
}> {
  const directory = pluginsDirectory(dataDirectory);
  const names = installedPackages(directory);
  const namespaces = new Map<string, unknown>();
  const scan = await discoverPlugins({
    registry: new ProviderRegistry(),
    nodeModulesDirectories: [join(directory, 'node_modules')],
    importModule: async (url) => {
      const namespace = await import(url);
      namespaces.set(url, namespace);
      return namespace;
    },
  });
  // The registry keyward itself builds: conflicts with built-ins and other plugins show here.
  const registry = await createDefaultRegistry({ dataDirectory, environment });
  const plugins = names.map((name): PluginStatus => {
    const manifest = readJson(join(directory, 'node_modules', name, 'package.json'));
    const status: PluginStatus = {
      package: name,
      ...(typeof manifest?.['version'] === 'string' ? { version: manifest['version'] } : {}),
      sidecars: [],
      targets: [],
      errors: [],
    };
    if (!manifest) {
      status.errors.push({
        code: 'PLUGIN_LOAD_FAILED',
        message: `not installed in ${directory}; run keyward plugins add ${name}`,
      });
      return status;
    }
    const keywords = Array.isArray(manifest['keywords']) ? manifest['keywords'] : [];
    if (!keywords.includes(pluginKeyword)) {
      status.errors.push({
        code: 'PLUGIN_LOAD_FAILED',
        message: `the package has no "${pluginKeyword}" keyword, so keyward does not load it; it is not a keyward plugin (remove it: keyward plugins rm ${name})`,
      });
    }
    const loaded = scan.loaded.find((entry) => entry.source === name);
    if (loaded) {
      status.plugin = loaded.name;
      for (const namespace of namespaces.values()) {
        const record = namespace as Record<string, unknown>;
        const plugin = (record['keywardPlugin'] ?? record['default']) as KeywardPluginV2 | undefined;
        if (plugin?.name !== loaded.name) continue;
        status.sidecars = (plugin.sidecars ?? []).map((sidecar) => sidecar.id);
        status.targets = (plugin.targets ?? []).map((target) => target.id);
      }
    }
    for (const error of [...scan.errors, ...registry.loadErrors]) {
      if (error.source !== name) continue;
      if (!status.errors.some((known) => known.message === error.message))
        status.errors.push({ code: error.code, message: error.message });
    }
    return status;
  });
  const otherErrors = registry.loadErrors
    .filter((error) => !names.includes(error.source))
    .map(({ source, code, message }) => ({ source, code, message }));
  return { plugins, otherErrors };
}

function printStatuses(context: CliContext, plugins: PluginStatus[]): void {
  for (const plugin of plugins) {
    const provides = [
      ...plugin.sidecars.map((id) => `sidecar ${id}`),
      ...plugin.targets.map((id) => `target ${id}`),
    ];
    const title = `${plugin.package}${plugin.version ? `@${plugin.version}` : ''}`;
    if (plugin.errors.length === 0) context.print(`✔ ${title}: ${provides.join(', ') || 'no providers'}`);
    else {
      context.print(
        `✖ ${title}: failed to load${provides.length > 0 ? ` (loaded: ${provides.join(', ')})` : ''}`,
      );
      for (const error of plugin.errors) context.print(`    ${error.code} ${error.message}`);
    }
  }
}

export function registerPluginCommands(program: Command, context: CliContext): void {
  const plugins = program
    .command('plugins')
    .description('Third-party sidecar and target packages, installed next to keyward in <data dir>/plugins');

  plugins
    .command('add <packages...>')
    .description(
      'Install plugin packages (anything npm install takes: a name, name@version, a .tgz or a folder) and check that they load',
    )
    .action(async (packages: string[], _options: unknown, command: Command) => {
      const { dataDirectory, json } = context.options(command);
      const directory = pluginsDirectory(dataDirectory);
      ensurePluginsFolder(directory);
      const before = new Set(installedPackages(directory));
      if (!json) context.io.stderr.write(`installing ${packages.join(' ')} into ${directory} …\n`);
      await runNpm(
        [
          'install',
          '--prefix',
          directory,
          '--save',
          '--legacy-peer-deps', // @keyward/* peers are linked to this keyward's own packages
          '--no-audit',
          '--no-fund',
          '--loglevel=error',
          ...packages,
        ],
        context,
      );
      linkKeywardPeers(directory);
      const added = installedPackages(directory).filter((name) => !before.has(name));
      const { plugins: statuses } = await pluginStatuses(dataDirectory, context.io.environment);
      const relevant = statuses.filter(
        (status) => added.includes(status.package) || packages.includes(status.package),
      );
      if (json) context.printJson({ directory, plugins: relevant });
      else {
        printStatuses(context, relevant);
        context.print('keyward serve and the CLI load them from their next start.');
      }
      if (relevant.some((status) => status.errors.length > 0)) {
        throw new CliError(
          exitCodes.runtimeFailure,
          'PLUGIN_LOAD_FAILED',
          'Installed, but not every package loads as a keyward plugin (reasons above).',
        );
      }
    });

  plugins
    .command('rm <packages...>')
    .alias('remove')
    .description('Uninstall plugin packages')
    .action(async (packages: string[], _options: unknown, command: Command) => {
      const { dataDirectory, json } = context.options(command);
      const directory = pluginsDirectory(dataDirectory);
      const installed = installedPackages(directory);
      const missing = packages.filter((name) => !installed.includes(name));
      if (missing.length > 0) {
        throw new CliError(
          exitCodes.notFound,
          'NOT_FOUND',
          `Not installed as a plugin: ${missing.join(', ')} (installed: ${installed.join(', ') || 'none'}).`,
        );
      }
      await runNpm(
        ['uninstall', '--prefix', directory, '--legacy-peer-deps', '--no-audit', '--no-fund', ...packages],
        context,
      );
      if (json) context.printJson({ removed: packages });
      else context.print(`removed ${packages.join(', ')}`);
    });

  plugins
    .command('ls')
    .alias('list')
    .description(
      'Installed plugins, what each provides, and every plugin that failed to load with the reason',
    )
    .action(async (_options: unknown, command: Command) => {
      const { dataDirectory, json } = context.options(command);
      const { plugins: statuses, otherErrors } = await pluginStatuses(dataDirectory, context.io.environment);
      if (json)
        return context.printJson({
          directory: pluginsDirectory(dataDirectory),
          plugins: statuses,
          otherErrors,
        });
      if (statuses.length === 0)
        context.print(
          `No plugins in ${pluginsDirectory(dataDirectory)}; add one with keyward plugins add <package>.`,
        );
      printStatuses(context, statuses);
      if (otherErrors.length > 0) {
        context.print('OTHER PROVIDERS THAT FAILED TO LOAD');
        for (const error of otherErrors) context.print(`  ${error.source}: ${error.code} ${error.message}`);
      }
    });
}
