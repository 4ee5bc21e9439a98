// `keyward serve` as a real child process (the CLI bundled from source) on a data directory of
// the test's, for the fault tests: start it, kill it with SIGKILL, start it again, and talk to
// its API with the token it generated.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { labelKeys } from '@keyward/core';
import type Docker from 'dockerode';
import { bundle } from './bundle.js';

export interface ServeProcess {
  url: string;
  process: ChildProcess;
  /** Everything it wrote to stderr so far (its log lines). */
  log: () => string;
}

/** Bundles the CLI (`src/cli.ts`) into `<directory>/keyward.mjs`; returns its path. */
export async function bundleCli(directory: string): Promise<string> {
  const cli = join(directory, 'keyward.mjs');
  await bundle(new URL('../src/cli.ts', import.meta.url).pathname, cli);
  return cli;
}

/** Every process `startServe` started, so `afterAll` can kill what a failed test left. */
export const startedServers: ChildProcess[] = [];

/**
 * Starts `keyward serve --port 0` and resolves with its URL once it listens (after start-up
 * reconciliation); rejects with its output when it exits first or after two minutes.
 */
export async function startServe(input: {
  cli: string;
  dataDirectory: string;
  environment?: Record<string, string>;
}): Promise<ServeProcess> {
  const child = spawn(process.execPath, [input.cli, 'serve', '--port', '0'], {
    env: {
      ...process.env,
      KEYWARD_DATA_DIR: input.dataDirectory,
      KEYWARD_BUILTINS: '@keyward/provider-local,@keyward/provider-tokenizer',
      ...input.environment,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  startedServers.push(child);
  let log = '';
  child.stderr!.on('data', (chunk) => {
    log += chunk;
  });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${log}`)), 120_000);
    const listening = () => {
      const match = /keyward API on (http:\/\/127\.0\.0\.1:\d+)/.exec(log);
      if (!match) return;
      clearTimeout(timer);
      child.stderr!.off('data', listening);
      resolve(match[1]!);
    };
    child.stderr!.on('data', listening);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}:\n${log}`));
    });
  });
  return { url, process: child, log: () => log };
}

/** SIGKILL, the way a crash or an OOM kill ends it: no handler runs. */
export async function killProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

/** The bearer token the server generated in its data directory. */
export function apiHeaders(dataDirectory: string): Record<string, string> {
  const token = readFileSync(join(dataDirectory, 'api-token'), 'utf8').trim();
  return { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
}

/**
 * Reads a job's event stream until `until` matches what arrived, and returns it. Fails when
 * the job ends first (`event: result` or `event: error` without a match).
 */
export async function readEventsUntil(
  url: string,
  headers: Record<string, string>,
  jobId: string,
  until: RegExp,
): Promise<{ seen: string; match: RegExpExecArray; close: () => Promise<void> }> {
  const stream = await fetch(`${url}/api/jobs/${jobId}/events`, { headers });
  const reader = stream.body!.getReader();
  const decoder = new TextDecoder();
  let seen = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`job ${jobId} ended before ${until}:\n${seen}`);
    seen += decoder.decode(value, { stream: true });
    const match = until.exec(seen);
    if (match) return { seen, match, close: () => reader.cancel().catch(() => undefined) };
    if (/event: (result|error)\n/.test(seen)) throw new Error(`job ${jobId} ended before ${until}:\n${seen}`);
  }
}

export interface JobView {
  id: string;
  kind: string;
  status: 'running' | 'succeeded' | 'failed';
  failedStep?: string;
  error?: { code: string; message: string; step?: string };
  reconciliation?: { outcome: string; message: string };
}

/**
 * Polls `GET /api/jobs/:id` until `done` holds (every half second, for at most `timeoutMs`).
 * `request`: how to send it (an in-process app's `app.request`); default `fetch`.
 */
export async function waitForJob(
  url: string,
  headers: Record<string, string>,
  jobId: string,
  done: (job: JobView) => boolean,
  timeoutMs = 180_000,
  request: (url: string, init: RequestInit) => Response | Promise<Response> = fetch,
): Promise<JobView> {
  const deadline = Date.now() + timeoutMs;
  let last: JobView | undefined;
  while (Date.now() < deadline) {
    const response = await request(`${url}/api/jobs/${jobId}`, { headers });
    last = (await response.json()) as JobView;
    if (done(last)) return last;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new Error(`job ${jobId} did not get there within ${timeoutMs} ms: ${JSON.stringify(last)}`);
}

/** Removes everything labelled with the instance (what a failed test may leave). */
export async function removeInstanceObjects(docker: Docker, name: string): Promise<void> {
  const filters = { label: [`${labelKeys.instance}=${name}`] };
  // A helper whose namespace another container joins is refused until that one is gone: retry.
  for (let pass = 0; pass < 3; pass += 1) {
    for (const container of await docker.listContainers({ all: true, filters })) {
      await docker
        .getContainer(container.Id)
        .remove({ force: true })
        .catch(() => undefined);
    }
  }
  for (const network of await docker.listNetworks({ filters })) {
    await docker
      .getNetwork(network.Id)
      .remove()
      .catch(() => undefined);
  }
  for (const volume of (await docker.listVolumes({ filters })).Volumes ?? []) {
    await docker
      .getVolume(volume.Name)
      .remove()
      .catch(() => undefined);
  }
}
