import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeywardError } from '@keyward/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { JobManager } from './job-manager.js';
import { jobStorePath, SqliteJobStore } from './job-store.js';

let directory: string;
const stores: SqliteJobStore[] = [];

function openStore(): SqliteJobStore {
  const store = new SqliteJobStore(jobStorePath(directory));
  stores.push(store);
  return store;
}

async function collect(manager: JobManager, id: string) {
  const events = [];
  for await (const event of manager.follow(id)) events.push(event);
  return events;
}

beforeEach(() => {
  directory = mkdtempSync(join(tmpdir(), 'keyward-job-store-'));
});

afterEach(() => {
  for (const store of stores.splice(0)) store.close();
  rmSync(directory, { recursive: true, force: true });
});

describe('SqliteJobStore', () => {
  it('keeps jobs and their events across processes (a new store on the same file)', async () => {
    const first = new JobManager({ store: openStore() });
    const job = first.create('deploy', 'demo', 'memory', { replace: false });
    first.progress(job.id, { step: 'network.create', status: 'started', message: 'Create', time: '' });
    first.progress(job.id, { step: 'network.create', status: 'failed', message: 'boom', time: '' });
    first.fail(job.id, new KeywardError({ code: 'DEPLOY_FAILED', message: 'rolled back' }));
    stores[0]!.close();

    const second = new JobManager({ store: openStore() });
    expect(second.get(job.id)).toEqual(first.get(job.id));
    expect(second.get(job.id)).toMatchObject({ status: 'failed', failedStep: 'network.create' });
    expect(await collect(second, job.id)).toEqual(await collect(first, job.id));
    // Sequences go on where they stopped.
    expect((await collect(second, job.id)).map((event) => event.sequence)).toEqual([1, 2, 3]);
  });

  it('uses WAL mode and keeps its files private (0600)', () => {
    const store = openStore();
    new JobManager({ store }).create('deploy', 'demo', 'memory');
    expect(statSync(store.path).mode & 0o777).toBe(0o600);
    expect(statSync(`${store.path}-wal`).mode & 0o777).toBe(0o600);
  });

  it('stays bounded: the first and the latest events of a job, and the last N jobs', async () => {
    const manager = new JobManager({ store: openStore(), headCapacity: 3, tailCapacity: 4, maximumJobs: 3 });
    const long = manager.create('deploy', 'long', 'memory');
    for (let index = 1; index <= 20; index++) manager.log(long.id, `line ${index}`);
    manager.succeed(long.id, {});
    stores[0]!.close();
    const reloaded = new JobManager({ store: openStore(), headCapacity: 3, tailCapacity: 4, maximumJobs: 3 });
    const events = await collect(reloaded, long.id);
    expect(events.map((event) => (event.type === 'log' ? event.message : event.type))).toEqual([
      'line 1',
      'line 2',
      'line 3',
      'gap',
      'line 18',
      'line 19',
      'line 20',
      'result',
    ]);
    expect(events[3]).toMatchObject({ type: 'gap', dropped: 14 });

    for (const name of ['b', 'c', 'd', 'e'])
      reloaded.succeed(reloaded.create('deploy', name, 'memory').id, {});
    stores[1]!.close();
    const last = new JobManager({ store: openStore(), maximumJobs: 3 });
    expect(last.list().map((job) => job.instance)).toEqual(['c', 'd', 'e']);
  });

  it('takes a job of an earlier process with the same pid (pid 1 in a container) for interrupted', () => {
    const earlier = new JobManager({ store: openStore(), processId: 1 });
    const job = earlier.create('deploy', 'same-pid', 'memory');
    expect(earlier.interrupted()).toEqual([]);
    stores[0]!.close();
    const later = new JobManager({ store: openStore(), processId: 1, isProcessAlive: () => true });
    expect(later.interrupted().map((entry) => entry.job.id)).toEqual([job.id]);
  });

  it('tells a job whose process died from one a live process runs, and records its reconciliation', async () => {
    const crashed = new JobManager({ store: openStore(), processId: 4_000_001 });
    const orphan = crashed.create('deploy', 'orphan', 'memory');
    const elsewhere = new JobManager({ store: stores[0]!, processId: 4_000_002 });
    const alive = elsewhere.create('deploy', 'alive', 'memory');
    stores[0]!.close();

    const restarted = new JobManager({
      store: openStore(),
      isProcessAlive: (pid) => pid === 4_000_002,
    });
    expect(restarted.interrupted().map(({ job }) => job.id)).toEqual([orphan.id]);
    expect(restarted.get(alive.id)?.status).toBe('running');
    restarted.reconcile(
      orphan.id,
      { outcome: 'rolled-back', message: 'removed what was there' },
      { error: new KeywardError({ code: 'DEPLOY_FAILED', message: 'interrupted' }) },
    );
    stores[1]!.close();
    const later = new JobManager({ store: openStore(), isProcessAlive: () => false });
    expect(later.get(orphan.id)).toMatchObject({
      status: 'failed',
      reconciliation: { outcome: 'rolled-back', message: 'removed what was there' },
      error: { code: 'DEPLOY_FAILED' },
    });
    const events = await collect(later, orphan.id);
    expect(events.map((event) => event.type)).toEqual(['progress', 'error']);
    expect(events[0]).toMatchObject({ step: 'reconcile', status: 'succeeded' });
  });
});
