import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type InterruptedOperationRecoveryV2,
  KeywardError,
  ProviderRegistry,
  type TargetProviderV2,
} from '@keyward/core';
import { createMemoryTargetProvider, createMockSidecarProvider } from '@keyward/core/testing';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createApp } from '../src/app.js';
import { JobManager } from '../src/jobs/job-manager.js';
import { jobStorePath, SqliteJobStore } from '../src/jobs/job-store.js';
import { createJsonLogger } from '../src/logger.js';
import { mockSpec, readEvents, testToken } from './test-app.js';

// A target whose runtime stops answering: its apply and rotation fail with RUNTIME_UNAVAILABLE
// and `details.rollback: 'incomplete'` (the contract of TargetProviderV2), and every call fails
// until the runtime is back. The in-memory target holds the state, as a runtime would.
let directory: string;
const stores: SqliteJobStore[] = [];

function unavailable(): KeywardError {
  return new KeywardError({ code: 'RUNTIME_UNAVAILABLE', message: 'The runtime does not answer.' });
}

function flakyTarget() {
  const memory = createMemoryTargetProvider();
  const state = {
    up: true,
    /** The next apply/rotation loses the runtime midway. */
    loseRuntime: false,
    deleted: [] as string[],
    recoveries: [] as string[],
    recovery: {
      outcome: 'restored',
      message: 'The previous containers were put back.',
    } as InterruptedOperationRecoveryV2,
  };
  const lost = (operation: string) => {
    state.loseRuntime = false;
    state.up = false;
    return new KeywardError({
      code: 'RUNTIME_UNAVAILABLE',
      message: `${operation} failed at step "container.create:mock": the container runtime stopped answering.`,
      details: { step: 'container.create:mock', rollback: 'incomplete' },
    });
  };
  const whenUp = <T>(call: () => Promise<T>) => (state.up ? call() : Promise.reject(unavailable()));
  const target: TargetProviderV2 = {
    ...memory,
    get: (name) => whenUp(() => memory.get(name)),
    list: () => whenUp(() => memory.list()),
    apply: async (plan, options) => {
      if (!state.loseRuntime) return whenUp(() => memory.apply(plan, options));
      await memory.apply(plan, options);
      throw lost(`Applying instance "${plan.instance.name}"`);
    },
    delete: (name, options) =>
      whenUp(async () => {
        state.deleted.push(name);
        await memory.delete(name, options);
      }),
    readSidecarState: (name, providerId) => whenUp(() => memory.readSidecarState(name, providerId)),
    rotateSecrets: async (name) => {
      if (!state.loseRuntime) return whenUp(() => memory.get(name));
      throw lost(`Rotating secrets of "${name}"`);
    },
    recoverInterrupted: (name) =>
      whenUp(async () => {
        state.recoveries.push(name);
        return state.recovery;
      }),
  };
  return { target, state, memory };
}

function start(target: TargetProviderV2, store?: SqliteJobStore) {
  const registry = new ProviderRegistry();
  registry.registerTarget(target);
  registry.registerSidecar(createMockSidecarProvider());
  const app = createApp({
    registry,
    token: testToken,
    jobs: new JobManager(store ? { store } : {}),
    logger: createJsonLogger({ write: () => {} }),
  });
  const request = async (method: string, path: string, body?: unknown) =>
    app.request(path, {
      method,
      headers: { authorization: `Bearer ${testToken}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  return { app, request };
}

beforeEach(() => {
  directory = mkdtempSync(join(tmpdir(), 'keyward-pending-rollback-'));
});

afterEach(() => {
  for (const store of stores.splice(0)) {
    store.close();
  }
  rmSync(directory, { recursive: true, force: true });
});

function openStore(): SqliteJobStore {
  const store = new SqliteJobStore(jobStorePath(directory));
  stores.push(store);
  return store;
}

describe('a deploy whose runtime stopped answering midway', () => {
  it('fails with what to do, then is rolled back once the runtime answers, and the job records it', async () => {
    const { target, state, memory } = flakyTarget();
    const { app, request } = start(target, openStore());
    state.loseRuntime = true;
    const accepted = await request('POST', '/api/instances', mockSpec('lost'));
    expect(accepted.status).toBe(202);
    const { jobId } = (await accepted.json()) as { jobId: string };
    const events = await readEvents(await request('GET', `/api/jobs/${jobId}/events`));
    expect(events.at(-1)).toMatchObject({ event: 'error', data: { error: { code: 'RUNTIME_UNAVAILABLE' } } });
    expect(events.at(-1)?.data.error?.message).toMatch(/This server retries until the runtime answers/);
    expect(memory.inspect('lost')).toBeDefined();

    // Down: the pass leaves it, and a new deploy of the instance is refused until it is done.
    expect(await app.operations.reconcileInterrupted()).toEqual([jobId]);
    const refused = await request('POST', '/api/instances', mockSpec('lost'));
    expect(refused.status).toBe(503);
    const { error } = (await refused.json()) as { error: { code: string; message: string } };
    expect(error.message).toMatch(/left a rollback to do, which could not be done yet/);

    state.up = true;
    expect(await app.operations.reconcileInterrupted()).toEqual([]);
    expect(state.deleted).toEqual(['lost']);
    expect(memory.inspect('lost')).toBeUndefined();
    expect(await (await request('GET', `/api/jobs/${jobId}`)).json()).toMatchObject({
      status: 'failed',
      error: { code: 'RUNTIME_UNAVAILABLE' },
      reconciliation: { outcome: 'rolled-back' },
    });
    // Done once: a later pass leaves everything alone.
    expect(await app.operations.reconcileInterrupted()).toEqual([]);
    expect(state.deleted).toEqual(['lost']);
    app.operations.stopReconciliation();
  });

  it('is retried in the background (1 s, doubling) until the runtime answers', async () => {
    const { target, state } = flakyTarget();
    const { app, request } = start(target);
    state.loseRuntime = true;
    const { jobId } = (await (await request('POST', '/api/instances', mockSpec('retried'))).json()) as {
      jobId: string;
    };
    await readEvents(await request('GET', `/api/jobs/${jobId}/events`));
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(state.deleted).toEqual([]);
    state.up = true;
    await vi.waitFor(() => expect(state.deleted).toEqual(['retried']), { timeout: 10_000, interval: 100 });
    expect(await (await request('GET', `/api/jobs/${jobId}`)).json()).toMatchObject({
      reconciliation: { outcome: 'rolled-back' },
    });
    app.operations.stopReconciliation();
  });

  it('outlives the process: a restarted server finishes the rollback', async () => {
    const { target, state } = flakyTarget();
    const first = start(target, openStore());
    state.loseRuntime = true;
    const { jobId } = (await (
      await first.request('POST', '/api/instances', mockSpec('restarted'))
    ).json()) as {
      jobId: string;
    };
    await readEvents(await first.request('GET', `/api/jobs/${jobId}/events`));
    first.app.operations.stopReconciliation();
    stores[0]!.close();

    state.up = true;
    const second = start(target, openStore());
    expect(await second.app.operations.reconcileInterrupted()).toEqual([]);
    second.app.operations.stopReconciliation();
    expect(state.deleted).toEqual(['restarted']);
    expect(await (await second.request('GET', `/api/jobs/${jobId}`)).json()).toMatchObject({
      reconciliation: { outcome: 'rolled-back' },
    });
  });
});

describe('a rotation whose runtime stopped answering midway', () => {
  it("is recovered by the target once the runtime answers, and the job records the target's outcome", async () => {
    const { target, state } = flakyTarget();
    const { app, request } = start(target);
    const deployed = (await (await request('POST', '/api/instances', mockSpec('rotated'))).json()) as {
      jobId: string;
    };
    await readEvents(await request('GET', `/api/jobs/${deployed.jobId}/events`));
    for (const [outcome, recorded] of [
      ['restored', 'unchanged'],
      ['completed', 'completed'],
    ] as const) {
      state.recovery = { outcome, message: `The target's recovery: ${outcome}.` };
      state.loseRuntime = true;
      const accepted = await request('PUT', '/api/instances/rotated/sidecars/mock', {});
      expect(accepted.status).toBe(202);
      const { jobId } = (await accepted.json()) as { jobId: string };
      await readEvents(await request('GET', `/api/jobs/${jobId}/events`));
      expect(await app.operations.reconcileInterrupted()).toEqual([jobId]);
      state.up = true;
      expect(await app.operations.reconcileInterrupted()).toEqual([]);
      expect(await (await request('GET', `/api/jobs/${jobId}`)).json()).toMatchObject({
        status: 'failed',
        reconciliation: {
          outcome: recorded,
          message: expect.stringContaining(`The target's recovery: ${outcome}.`),
        },
      });
    }
    expect(state.recoveries).toEqual(['rotated', 'rotated']);
    app.operations.stopReconciliation();
  });
});
