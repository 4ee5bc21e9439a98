import { execFileSync, spawnSync } from 'node:child_process';
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildImage, imageDefinitions, imageReference } from '@keyward/images';
import { connectToTestRuntime, remainingObjects, uniqueName } from '@keyward/provider-local/testing';
import Database from 'better-sqlite3';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  apiHeaders,
  bundleCli,
  killProcess,
  readEventsUntil,
  removeInstanceObjects,
  type ServeProcess,
  startedServers,
  startServe,
  waitForJob,
} from './serve-process.js';

// The disk under the data directory fills up while `keyward serve` runs on real podman: the data
// directory is a small tmpfs of the test's own (mounted as root), filled to the last byte in the
// middle of a deploy. The running deploy goes on; a new deploy and a token rotation are refused
// with DATA_DIRECTORY_FULL and a message that says what to do; nothing is half-written (the
// token file is the old one, SQLite's integrity check passes, earlier jobs read back); a server
// started on the full disk still answers for them, and everything works again once there is room.
const failedName = uniqueName('faults-disk-failed');
const runningName = uniqueName('faults-disk-run');
const refusedName = uniqueName('faults-disk-refused');

let directory: string;
let dataDirectory: string;
let cli: string;
let docker: Docker;
let server: ServeProcess;

function deployBody(name: string, image: string): Record<string, unknown> {
  return {
    name,
    target: 'local',
    agent: { image, port: 18789, skillsDirectory: '/home/node/skills' },
    sidecars: {
      tokenizer: {
        credentials: [{ name: 'github', secret: `ghp_disk-full-${name}`, allowedHosts: ['api.github.com'] }],
      },
    },
  };
}

async function post(path: string, body: unknown): Promise<Response> {
  return fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: apiHeaders(dataDirectory),
    body: JSON.stringify(body),
  });
}

/** Writes a file until the disk refuses even one more byte. */
function fillDisk(path: string): void {
  const file = openSync(path, 'w');
  try {
    for (const size of [1 << 20, 1 << 12, 1]) {
      const chunk = Buffer.alloc(size, 0x5a);
      for (;;) {
        try {
          writeSync(file, chunk);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
          break;
        }
      }
    }
  } finally {
    closeSync(file);
  }
}

function freeSpace(path: string): number {
  return Number(execFileSync('df', ['--output=avail', '-B1', path], { encoding: 'utf8' }).split('\n')[1]);
}

/** `keyward token rotate` on the data directory, as a user would run it. */
function rotateToken(): { status: number | null; stderr: string; stdout: string } {
  const result = spawnSync(process.execPath, [cli, 'token', 'rotate'], {
    env: { ...process.env, KEYWARD_DATA_DIR: dataDirectory },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: result.status, stderr: result.stderr, stdout: result.stdout };
}

beforeAll(async () => {
  docker = await connectToTestRuntime();
  for (const definition of Object.values(imageDefinitions)) await buildImage(docker, definition);
  directory = mkdtempSync(join(tmpdir(), 'keyward-disk-full-'));
  dataDirectory = join(directory, 'data');
  mkdirSync(dataDirectory, { mode: 0o700 });
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m,mode=0700', 'tmpfs', dataDirectory]);
  } catch (error) {
    throw new Error(
      `This test mounts a small tmpfs as the data directory and needs root (CI runs as root): ${(error as Error).message}`,
    );
  }
  cli = await bundleCli(directory);
}, 600_000);

afterAll(async () => {
  for (const child of startedServers) await killProcess(child);
  for (const name of [failedName, runningName, refusedName]) await removeInstanceObjects(docker, name);
  spawnSync('umount', [dataDirectory]);
  rmSync(directory, { recursive: true, force: true });
}, 180_000);

describe('the data directory disk fills up', { timeout: 900_000 }, () => {
  let failedJob: string;
  let runningJob: string;
  let oldHeaders: Record<string, string>;

  it('records a first job while there is room', async () => {
    server = await startServe({ cli, dataDirectory });
    oldHeaders = apiHeaders(dataDirectory);
    // A deploy that fails fast (an image that cannot be found): a whole job with events and an error.
    const accepted = await post(
      '/api/instances',
      deployBody(failedName, 'localhost/keyward-faults-missing:0'),
    );
    expect(accepted.status, await accepted.clone().text()).toBe(202);
    failedJob = ((await accepted.json()) as { jobId: string }).jobId;
    const job = await waitForJob(server.url, oldHeaders, failedJob, (view) => view.status !== 'running');
    expect(job).toMatchObject({ status: 'failed', failedStep: expect.stringMatching(/^image\.check/) });
  });

  it('a deploy running when the disk fills up goes on; the log says its record is behind', async () => {
    const accepted = await post(
      '/api/instances',
      deployBody(runningName, imageReference(imageDefinitions.agentStandIn)),
    );
    expect(accepted.status).toBe(202);
    runningJob = ((await accepted.json()) as { jobId: string }).jobId;
    const { close } = await readEventsUntil(
      server.url,
      oldHeaders,
      runningJob,
      /"step":"container\.create:[^"]+"/,
    );
    await close();
    fillDisk(join(dataDirectory, 'filler'));
    expect(freeSpace(dataDirectory)).toBe(0);
    const job = await waitForJob(
      server.url,
      oldHeaders,
      runningJob,
      (view) => view.status !== 'running',
      300_000,
    );
    expect(job.status, JSON.stringify(job)).toBe('succeeded');
    expect(server.log()).toMatch(/job record not written; the job goes on in memory.*DATA_DIRECTORY_FULL/);
  });

  it('refuses a new deploy with DATA_DIRECTORY_FULL and starts nothing', async () => {
    const refused = await post(
      '/api/instances',
      deployBody(refusedName, imageReference(imageDefinitions.agentStandIn)),
    );
    expect(refused.status).toBe(503);
    const { error } = (await refused.json()) as { error: { code: string; message: string } };
    expect(error.code).toBe('DATA_DIRECTORY_FULL');
    expect(error.message).toContain(dataDirectory);
    expect(error.message).toMatch(/no space left/);
    expect(error.message).toMatch(/Nothing was started/);
    expect(error.message).toMatch(/Free space/);
    expect(await remainingObjects(docker, refusedName)).toEqual([]);
  });

  it('refuses a token rotation and keeps the old token working', async () => {
    const before = readFileSync(join(dataDirectory, 'api-token'), 'utf8');
    const rotation = rotateToken();
    expect(rotation.status, rotation.stderr).toBe(4);
    expect(rotation.stderr).toMatch(/^error DATA_DIRECTORY_FULL: Could not write the API token/);
    expect(rotation.stderr).toMatch(/The previous token is unchanged and still works/);
    expect(readFileSync(join(dataDirectory, 'api-token'), 'utf8')).toBe(before);
    expect(readdirSync(dataDirectory).filter((file) => file.startsWith('api-token.'))).toEqual([]);
    const listed = await fetch(`${server.url}/api/instances`, { headers: oldHeaders });
    expect(listed.status).toBe(200);
  });

  it('leaves SQLite whole after a crash on the full disk: integrity ok, the jobs read back', async () => {
    await killProcess(server.process);
    const database = new Database(join(dataDirectory, 'keyward.sqlite'), { readonly: true });
    try {
      expect(database.pragma('integrity_check', { simple: true })).toBe('ok');
      const rows = database.prepare('SELECT id, summary FROM jobs').all() as {
        id: string;
        summary: string;
      }[];
      const byId = new Map(rows.map((row) => [row.id, JSON.parse(row.summary) as { status: string }]));
      expect(byId.get(failedJob)?.status).toBe('failed');
      // Its start was recorded before the disk filled up; its end could not be.
      expect(byId.get(runningJob)?.status).toBe('running');
      expect(rows).toHaveLength(2);
    } finally {
      database.close();
    }
  });

  it('a server started on the full disk answers for the jobs and reconciles the one left running', async () => {
    server = await startServe({ cli, dataDirectory });
    const failed = await waitForJob(server.url, oldHeaders, failedJob, () => true);
    expect(failed.status).toBe('failed');
    const reconciled = await waitForJob(
      server.url,
      oldHeaders,
      runningJob,
      (view) => view.status !== 'running',
    );
    expect(reconciled, JSON.stringify(reconciled)).toMatchObject({
      status: 'succeeded',
      reconciliation: { outcome: 'completed' },
    });
  });

  it('works again once there is room', async () => {
    rmSync(join(dataDirectory, 'filler'));
    const rotation = rotateToken();
    expect(rotation.status, rotation.stderr).toBe(0);
    const newHeaders = apiHeaders(dataDirectory);
    expect(newHeaders['authorization']).not.toBe(oldHeaders['authorization']);
    expect((await fetch(`${server.url}/api/instances`, { headers: oldHeaders })).status).toBe(401);
    const deleted = await fetch(`${server.url}/api/instances/${runningName}`, {
      method: 'DELETE',
      headers: newHeaders,
    });
    expect(deleted.status, await deleted.clone().text()).toBe(200);
    expect(await remainingObjects(docker, runningName)).toEqual([]);
    await killProcess(server.process);
    const database = new Database(join(dataDirectory, 'keyward.sqlite'), { readonly: true });
    try {
      expect(database.pragma('integrity_check', { simple: true })).toBe('ok');
    } finally {
      database.close();
    }
  });
});
