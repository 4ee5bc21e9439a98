import { KeywardError } from '@keyward/core';
import { describe, expect, it } from 'vitest';
import { JobManager } from './job-manager.js';

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
