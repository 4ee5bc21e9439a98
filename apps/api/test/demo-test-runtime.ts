// Helpers for the demo's integration tests: a real runtime (podman's API socket,
// started by the repository's script when DOCKER_HOST is unset), the real CLI as a
// child process, and exec inside a container with the script on stdin.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dockerFromEnvironment } from '@keyward/images';
import { type ExecResult, execInContainer } from '@keyward/provider-local';
import type Docker from 'dockerode';
import { build } from 'esbuild';

export const repositoryRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** Sets DOCKER_HOST (starting podman's socket if needed) and returns a client for it. */
export async function dockerForTests(): Promise<Docker> {
  if (!process.env['DOCKER_HOST']) {
    const exports = execFileSync('sh', [join(repositoryRoot, 'scripts/ci/start-podman.sh')], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    for (const match of exports.matchAll(/^export (\w+)=(.*)$/gm)) {
      process.env[match[1] as string] = match[2] as string;
    }
  }
  const docker = dockerFromEnvironment(process.env);
  await docker.ping();
  return docker;
}

/**
 * Bundles the real `keyward` entry (src/cli.ts, workspace packages from source) so
 * the test runs the CLI users run without a prior `pnpm build`. The bundle lives in
 * @keyward/images' cache directory, as `pnpm images`' own bundle does: the image
 * definitions find their program sources from there, and esbuild (which cannot be
 * bundled) resolves from that package.
 */
export async function bundleCli(): Promise<string> {
  const directory = join(repositoryRoot, 'packages/images/node_modules/.cache/keyward-demo-test');
  mkdirSync(directory, { recursive: true });
  const outfile = join(directory, 'keyward.mjs');
  await build({
    entryPoints: [join(repositoryRoot, 'apps/api/src/cli.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    conditions: ['dev-source'],
    // esbuild finds its binary from its own package; optional native addons of ssh2 stay out.
    external: ['esbuild', '*.node'],
    logLevel: 'error',
    // CommonJS dependencies (dockerode, ssh2) use require() and __dirname.
    banner: {
      js: [
        "import { createRequire as __createRequire } from 'node:module';",
        "import { fileURLToPath as __fileURLToPath } from 'node:url';",
        "import { dirname as __pathDirname } from 'node:path';",
        'const require = __createRequire(import.meta.url);',
        'const __filename = __fileURLToPath(import.meta.url);',
        'const __dirname = __pathDirname(__filename);',
      ].join(' '),
    },
    plugins: [
      {
        // core/testing re-exports vitest suites; the CLI never runs them.
        name: 'stub-vitest',
        setup(builder) {
          builder.onResolve({ filter: /^vitest$/ }, () => ({ path: 'vitest', namespace: 'stub' }));
          builder.onLoad({ filter: /.*/, namespace: 'stub' }, () => ({
            contents:
              'export const describe = () => {}; export const it = () => {}; export const expect = () => {};',
          }));
        },
      },
    ],
  });
  return outfile;
}

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Starts the CLI; `done` resolves when it exits. */
export function startCli(
  cli: string,
  args: string[],
  environment: NodeJS.ProcessEnv = process.env,
): { child: ChildProcess; done: Promise<CliRun>; output: () => string } {
  const child = spawn(process.execPath, [cli, ...args], {
    env: { ...environment, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const done = new Promise<CliRun>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done, output: () => stdout + stderr };
}

export async function runCli(cli: string, args: string[], environment?: NodeJS.ProcessEnv): Promise<CliRun> {
  return startCli(cli, args, environment).done;
}

/** Runs a command in a container, the script (if any) on stdin; returns stdout and the exit code. */
export async function execIn(
  docker: Docker,
  container: string,
  command: string[],
  stdin?: string,
): Promise<ExecResult> {
  return execInContainer(docker, container, command, {
    ...(stdin === undefined ? {} : { stdin }),
    timeoutMs: 60_000,
  });
}

/** A container's stdout and stderr so far, as lines (frames of the multiplexed log stream joined). */
export async function containerLogLines(docker: Docker, container: string): Promise<string[]> {
  const raw = (await docker
    .getContainer(container)
    .logs({ stdout: true, stderr: true, follow: false })) as unknown as Buffer;
  let text = '';
  for (let offset = 0; offset + 8 <= raw.length; ) {
    const size = raw.readUInt32BE(offset + 4);
    text += raw.subarray(offset + 8, offset + 8 + size).toString('utf8');
    offset += 8 + size;
  }
  return text.split('\n').filter((line) => line !== '');
}

/** Everything labelled as part of an instance, checking every label client-side (podman 4.3 ORs volume label filters). */
export async function objectsOfInstance(docker: Docker, instance: string): Promise<string[]> {
  const filters = { label: [`keyward.dev/instance=${instance}`] };
  const mine = (labels: Record<string, string> | null | undefined) =>
    labels?.['keyward.dev/instance'] === instance;
  const containers = (await docker.listContainers({ all: true, filters }))
    .filter((entry) => mine(entry.Labels))
    .map((entry) => `container ${entry.Names?.[0]?.replace(/^\//, '')}`);
  const networks = (await docker.listNetworks({ filters }))
    .filter((entry) => mine(entry.Labels))
    .map((entry) => `network ${entry.Name}`);
  const volumes = ((await docker.listVolumes({ filters })).Volumes ?? [])
    .filter((entry) => mine(entry.Labels))
    .map((entry) => `volume ${entry.Name}`);
  return [...containers, ...networks, ...volumes];
}
