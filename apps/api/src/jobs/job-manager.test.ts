import { isKeywardError, KeywardError } from '@keyward/core';
import { describe, expect, it } from 'vitest';
import { JobManager, type JobSummary } from './job-manager.js';
import type { JobStore, StoredJob } from './job-store.js';

async function collect(manager: JobManager, id: string, afterSequence?: number) {
  const events = [];
  for await (const event of manager.follow(id, afterSequence === undefined ? {} : { afterSequence }))
    events.push(event);
  return events;
}

describe('JobManager', () => {
  it('keeps the first events and the latest ones, and marks the gap between them', async () => {
    const manager = new JobManager({ headCapacity: 3, tailCapacity: 4 });
    const job = manager.create('deploy', 'demo', 'memory');
    for (let index = 1; index <= 20; index++) manager.log(job.id, `line ${index}`);
    manager.succeed(job.id, { ok: true });
    const events = await collect(manager, job.id);
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
  });

  it('resumes after a sequence without a gap when nothing was dropped', async () => {
    const manager = new JobManager();
    const job = manager.create('rotate', 'demo', 'memory');
    for (let index = 1; index <= 5; index++) manager.log(job.id, `line ${index}`);
    manager.fail(job.id, new KeywardError({ code: 'ROTATION_FAILED', message: 'kept the old credentials' }));
    const events = await collect(manager, job.id, 3);
    expect(events.map((event) => event.sequence)).toEqual([4, 5, 6]);
    expect(events.at(-1)).toMatchObject({ type: 'error', error: { code: 'ROTATION_FAILED' } });
  });

  it('wakes a live subscriber for each new event and ends it with the result', async () => {
    const manager = new JobManager();
    const job = manager.create('deploy', 'demo', 'memory');
    const collected = collect(manager, job.id);
    manager.progress(job.id, { step: 'network.create', status: 'started', message: 'Create', time: '' });
    await new Promise((resolve) => setTimeout(resolve, 5));
    manager.progress(job.id, {
      step: 'network.create',
      status: 'failed',
      message: 'Create failed',
      time: '',
    });
    manager.fail(job.id, new Error('boom'));
    const events = await collected;
    expect(events.map((event) => event.type)).toEqual(['progress', 'progress', 'error']);
    expect(manager.get(job.id)).toMatchObject({ status: 'failed', failedStep: 'network.create' });
  });

  it('forgets the oldest finished jobs beyond its maximum, never a running one', () => {
    const manager = new JobManager({ maximumJobs: 2 });
    const running = manager.create('deploy', 'a', 'memory');
    const finished = manager.create('deploy', 'b', 'memory');
    manager.succeed(finished.id, {});
    const third = manager.create('deploy', 'c', 'memory');
    expect(manager.list().map((job) => job.id)).toEqual([running.id, third.id]);
  });
});

/** A store in memory whose writes fail while `full` is set, the way a full disk fails SQLite's. */
function storeWithDisk(): JobStore & { full: boolean; jobs: Map<string, StoredJob> } {
  const jobs = new Map<string, StoredJob>();
  const refuse = () => {
    if (store.full) {
      throw new KeywardError({ code: 'DATA_DIRECTORY_FULL', message: 'Could not write: no space left.' });
    }
  };
  const store = {
    full: false,
    jobs,
    load: () => [...jobs.values()],
    insertJob(job: Omit<StoredJob, 'events'>) {
      refuse();
      jobs.set(job.summary.id, { ...structuredClone(job), events: [] });
    },
    updateJob(summary: JobSummary, context?: Record<string, unknown>) {
      refuse();
      const stored = jobs.get(summary.id)!;
      stored.summary = structuredClone(summary);
      if (context) stored.context = structuredClone(context);
    },
    appendEvent(jobId: string, event: StoredJob['events'][number]) {
      refuse();
      jobs.get(jobId)!.events.push(event);
    },
    deleteJob(id: string) {
      refuse();
      jobs.delete(id);
    },
    close() {},
  };
  return store;
}

describe('JobManager on a store that cannot be written', () => {
  it('refuses to create a job it cannot record, and keeps nothing of it', () => {
    const store = storeWithDisk();
    const manager = new JobManager({ store });
    store.full = true;
    const error = (() => {
      try {
        manager.create('deploy', 'demo', 'memory');
      } catch (problem) {
        return problem;
      }
      return undefined;
    })();
    expect(isKeywardError(error, 'DATA_DIRECTORY_FULL')).toBe(true);
    expect(manager.list()).toEqual([]);
  });

  it('lets a running job go on in memory, reports it once, and catches up when writes work again', async () => {
    const store = storeWithDisk();
    const reported: string[] = [];
    const manager = new JobManager({ store, onStoreError: (_error, job) => reported.push(job.id) });
    const job = manager.create('deploy', 'demo', 'memory');
    store.full = true;
    manager.log(job.id, 'one');
    manager.log(job.id, 'two');
    expect(reported).toEqual([job.id]);
    store.full = false;
    manager.log(job.id, 'three');
    store.full = true;
    manager.succeed(job.id, { ok: true });
    expect(reported).toEqual([job.id, job.id]);
    // Everything is there for a subscriber; the store has what it could take.
    expect((await collect(manager, job.id)).map((event) => event.type)).toEqual([
      'log',
      'log',
      'log',
      'result',
    ]);
    expect(manager.get(job.id)?.status).toBe('succeeded');
    expect(store.jobs.get(job.id)?.summary.status).toBe('running');
    expect(store.jobs.get(job.id)?.events.map((event) => event.sequence)).toEqual([3]);
  });
});

describe('JobManager: rollbacks left to do', () => {
  it('lists a failed job with rollbackPending until its rollback is recorded', () => {
    const store = storeWithDisk();
    const manager = new JobManager({ store });
    const job = manager.create('deploy', 'demo', 'memory');
    const other = manager.create('deploy', 'other', 'memory');
    manager.fail(job.id, new KeywardError({ code: 'RUNTIME_UNAVAILABLE', message: 'gone' }), {
      rollbackPending: true,
    });
    manager.fail(other.id, new Error('plain failure'));
    expect(manager.pendingRollbacks().map((entry) => entry.job.id)).toEqual([job.id]);
    // A restarted process finds it in the store.
    expect(new JobManager({ store }).pendingRollbacks().map((entry) => entry.job.id)).toEqual([job.id]);

    manager.settleRollback(job.id, { outcome: 'rolled-back', message: 'removed' });
    expect(manager.pendingRollbacks()).toEqual([]);
    expect(manager.get(job.id)).toMatchObject({
      status: 'failed',
      error: { code: 'RUNTIME_UNAVAILABLE' },
      reconciliation: { outcome: 'rolled-back', message: 'removed' },
    });
    expect(new JobManager({ store }).pendingRollbacks()).toEqual([]);
  });

  it("leaves another live process's pending rollback to it", () => {
    const store = storeWithDisk();
    const owner = new JobManager({ store, processId: 4_000_002 });
    const job = owner.create('deploy', 'demo', 'memory');
    owner.fail(job.id, new Error('runtime gone'), { rollbackPending: true });
    const alive = new JobManager({ store, isProcessAlive: (pid) => pid === 4_000_002 });
    expect(alive.pendingRollbacks()).toEqual([]);
    const gone = new JobManager({ store, isProcessAlive: () => false });
    expect(gone.pendingRollbacks().map((entry) => entry.job.id)).toEqual([job.id]);
  });
});
