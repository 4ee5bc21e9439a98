import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProviderRegistry } from '@keyward/core';
import { createMemoryTargetProvider, createMockSidecarProvider } from '@keyward/core/testing';
import { createTokenizerProvider } from '@keyward/provider-tokenizer';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createApp } from '../src/app.js';
import { JobManager } from '../src/jobs/job-manager.js';
import { jobStorePath, SqliteJobStore } from '../src/jobs/job-store.js';
import { createJsonLogger } from '../src/logger.js';
import { mockSpec, readEvents, testToken } from './test-app.js';

// A "crash" here: the first app's job is held open inside the target (the in-memory target, the
// stand-in for a runtime that outlives the API process) and its store is closed, so nothing it
// does later reaches the file; a second app opens the same file, as a restarted server would.
const deadProcess = 4_000_001;
let directory: string;
const stores: SqliteJobStore[] = [];

function openStore(): SqliteJobStore {
  const store = new SqliteJobStore(jobStorePath(directory));
  stores.push(store);
  return store;
}

function appWith(registry: ProviderRegistry, jobs: JobManager) {
  const app = createApp({ registry, token: testToken, jobs, logger: createJsonLogger({ write: () => {} }) });
  const request = (method: string, path: string, body?: unknown) =>
    Promise.resolve(
      app.request(path, {
        method,
        headers: {
          authorization: `Bearer ${testToken}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      }),
    );
  return { app, request };
}

/** Holds the named step of the named instance open until `release`; `reached` resolves when it starts. */
function holdAt(step: string, instance: string) {
  let reached!: () => void;
  const reachedPromise = new Promise<void>((resolve) => {
    reached = resolve;
  });
  return {
    reached: reachedPromise,
    beforeStep: async (current: string, name: string) => {
      if (current === step && name === instance) {
        reached();
        await new Promise(() => {}); // the process "dies" here: never resolves
      }
    },
  };
}

function restarted(registry: ProviderRegistry) {
  const jobs = new JobManager({ store: openStore(), isProcessAlive: (pid) => pid === process.pid });
  return appWith(registry, jobs);
}

beforeEach(() => {
  directory = mkdtempSync(join(tmpdir(), 'keyward-persist-'));
});

afterEach(() => {
  for (const store of stores.splice(0)) store.close();
  rmSync(directory, { recursive: true, force: true });
});

describe('jobs after a restart', () => {
  it('answers for a deploy the previous process left half done, rolls it back and replays its events', async () => {
    const hold = holdAt('container.start:agent', 'half');
    const target = createMemoryTargetProvider({ beforeStep: hold.beforeStep });
    const registry = new ProviderRegistry();
    registry.registerTarget(target);
    registry.registerSidecar(createMockSidecarProvider());
    const first = appWith(registry, new JobManager({ store: openStore(), processId: deadProcess }));
    const accepted = await first.request('POST', '/api/instances', mockSpec('half'));
    expect(accepted.status).toBe(202);
    const { jobId } = (await accepted.json()) as { jobId: string };
    await hold.reached;
    stores[0]!.close(); // killed

    const second = restarted(registry);
    expect(await second.app.operations.reconcileInterrupted()).toEqual([]);
    const job = await (await second.request('GET', `/api/jobs/${jobId}`)).json();
    expect(job).toMatchObject({
      id: jobId,
      status: 'failed',
      error: { code: 'DEPLOY_FAILED' },
      reconciliation: { outcome: 'rolled-back' },
    });
    const events = await readEvents(await second.request('GET', `/api/jobs/${jobId}/events`));
    // What the first process streamed before it died, then what reconciliation did.
    expect(
      events.map((event) => `${event.event}:${event.data.step ?? ''}:${event.data.status ?? ''}`),
    ).toEqual([
      'progress:policy.create:started',
      'progress:policy.create:succeeded',
      'progress:secret.create:mock-secret:started',
      'progress:secret.create:mock-secret:succeeded',
      'progress:secret.create:mock-agent-token:started',
      'progress:secret.create:mock-agent-token:succeeded',
      'progress:container.start:mock:started',
      'progress:container.start:mock:succeeded',
      'progress:container.start:agent:started',
      'progress:reconcile:succeeded',
      'error::',
    ]);
    expect(events.map((event) => Number(event.id))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(target.inspect('half')).toBeUndefined();
    // A third start finds nothing left to do.
    expect(await restarted(registry).app.operations.reconcileInterrupted()).toEqual([]);
  });

  it('marks a deploy whose instance the target has whole as succeeded, and deletes a partial one', async () => {
    const target = createMemoryTargetProvider();
    const deleted: string[] = [];
    const registry = new ProviderRegistry();
    registry.registerTarget({
      ...target,
      delete: async (name: string, options?: Parameters<typeof target.delete>[1]) => {
        deleted.push(name);
        return target.delete(name, options);
      },
    });
    registry.registerSidecar(createMockSidecarProvider());
    const setup = appWith(registry, new JobManager());
    for (const name of ['whole', 'partial']) {
      const { jobId } = (await (await setup.request('POST', '/api/instances', mockSpec(name))).json()) as {
        jobId: string;
      };
      await readEvents(await setup.request('GET', `/api/jobs/${jobId}/events`));
    }
    await target.stop('partial');
    // A stopped instance is whole too; make this one partial the way a runtime would show it.
    const partialTarget = registry.getTarget('memory')!;
    const originalGet = partialTarget.get.bind(partialTarget);
    partialTarget.get = async (name: string) => {
      const detail = await originalGet(name);
      return name === 'partial'
        ? {
            ...detail,
            state: 'partial',
            containers: detail.containers.map((c, i) => (i === 0 ? { ...c, state: 'missing' } : c)),
          }
        : detail;
    };
    const crashed = new JobManager({ store: openStore(), processId: deadProcess });
    const whole = crashed.create('deploy', 'whole', 'memory');
    const partial = crashed.create('deploy', 'partial', 'memory');
    stores[0]!.close();

    const second = restarted(registry);
    await second.app.operations.reconcileInterrupted();
    expect(await (await second.request('GET', `/api/jobs/${whole.id}`)).json()).toMatchObject({
      status: 'succeeded',
      reconciliation: { outcome: 'completed' },
    });
    expect(await (await second.request('GET', `/api/jobs/${partial.id}`)).json()).toMatchObject({
      status: 'failed',
      reconciliation: { outcome: 'rolled-back' },
    });
    expect(deleted).toEqual(['partial']);
    expect(target.inspect('whole')).toBeDefined();
  });

  it('records whether a rotation the previous process left running changed the instance or not', async () => {
    const hold = holdAt('rotate.prepare:mock', 'rotated');
    const target = createMemoryTargetProvider({ beforeStep: hold.beforeStep });
    const registry = new ProviderRegistry();
    registry.registerTarget(target);
    registry.registerSidecar(createMockSidecarProvider());
    const setup = appWith(registry, new JobManager());
    const { jobId: deployId } = (await (
      await setup.request('POST', '/api/instances', mockSpec('rotated'))
    ).json()) as {
      jobId: string;
    };
    await readEvents(await setup.request('GET', `/api/jobs/${deployId}/events`));

    const first = appWith(registry, new JobManager({ store: openStore(), processId: deadProcess }));
    const accepted = await first.request('PUT', '/api/instances/rotated/sidecars/mock', {});
    expect(accepted.status).toBe(202);
    const { jobId } = (await accepted.json()) as { jobId: string };
    const stepsSeen = await Promise.race([
      hold.reached.then(() => 'held'),
      new Promise((r) => setTimeout(() => r('not held'), 2000)),
    ]);
    expect(stepsSeen).toBe('held');
    // The same store also holds a rotation whose change did land before the process died.
    const landed = new JobManager({ store: stores[0]!, processId: deadProcess }).create(
      'rotate',
      'rotated',
      'memory',
      {
        stateBefore: 'a digest of an older state',
      },
    );
    stores[0]!.close();

    const second = restarted(registry);
    await second.app.operations.reconcileInterrupted();
    expect(await (await second.request('GET', `/api/jobs/${jobId}`)).json()).toMatchObject({
      status: 'failed',
      error: { code: 'ROTATION_FAILED' },
      reconciliation: { outcome: 'unchanged' },
    });
    expect(await (await second.request('GET', `/api/jobs/${landed.id}`)).json()).toMatchObject({
      status: 'succeeded',
      reconciliation: { outcome: 'completed' },
    });
  });
});

describe('a rotation the previous process left running, on a target that recovers', () => {
  it("records the target's recovery: restored is unchanged, completed is completed", async () => {
    const target = createMemoryTargetProvider();
    const recoveries: string[] = [];
    let outcome: 'restored' | 'completed' = 'restored';
    const registry = new ProviderRegistry();
    registry.registerTarget({
      ...target,
      recoverInterrupted: async (name: string) => {
        recoveries.push(name);
        return { outcome, message: `Recovered "${name}": ${outcome}.` };
      },
    });
    registry.registerSidecar(createMockSidecarProvider());
    const setup = appWith(registry, new JobManager());
    const { jobId: deployId } = (await (
      await setup.request('POST', '/api/instances', mockSpec('recovered'))
    ).json()) as { jobId: string };
    await readEvents(await setup.request('GET', `/api/jobs/${deployId}/events`));
    const detail = await target.get('recovered');

    for (const [wanted, recorded, status] of [
      ['restored', 'unchanged', 'failed'],
      ['completed', 'completed', 'succeeded'],
    ] as const) {
      outcome = wanted;
      // The digest says "unchanged" either way: what the target did decides.
      const crashed = new JobManager({ store: openStore(), processId: deadProcess });
      const job = crashed.create('rotate', 'recovered', 'memory', { stateBefore: 'not this state' });
      stores.at(-1)!.close();
      const second = restarted(registry);
      expect(await second.app.operations.reconcileInterrupted()).toEqual([]);
      expect(await (await second.request('GET', `/api/jobs/${job.id}`)).json()).toMatchObject({
        status,
        reconciliation: {
          outcome: recorded,
          message: expect.stringContaining(`Recovered "recovered": ${wanted}.`),
        },
      });
      stores.at(-1)!.close();
    }
    expect(recoveries).toEqual(['recovered', 'recovered']);
    expect((await target.get('recovered')).state).toBe(detail.state);
  });
});

describe('the job store holds no secret', () => {
  it('has no raw credential in the database file after a deploy and a rotation', async () => {
    const knownSecret = 'ghp_StoreScanSecret_0123456789abcdefXYZ';
    const rotatedSecret = 'sk_live_StoreScanRotated_9876543210QWE';
    const target = createMemoryTargetProvider();
    const registry = new ProviderRegistry();
    registry.registerTarget(target);
    registry.registerSidecar(createTokenizerProvider());
    const store = openStore();
    const { request } = appWith(registry, new JobManager({ store }));
    const spec = {
      name: 'stored',
      target: 'memory',
      agent: { image: 'localhost/agent:test', port: 18789, skillsDirectory: '/skills' },
      sidecars: {
        tokenizer: {
          credentials: [{ name: 'github', secret: knownSecret, allowedHosts: ['api.github.com'] }],
        },
      },
    };
    const { jobId } = (await (await request('POST', '/api/instances', spec)).json()) as { jobId: string };
    expect((await readEvents(await request('GET', `/api/jobs/${jobId}/events`))).at(-1)?.event).toBe(
      'result',
    );
    const rotation = await request('PUT', '/api/instances/stored/tokenizer', {
      credentials: [
        { name: 'github', secret: '', allowedHosts: ['api.github.com'] },
        { name: 'stripe', secret: rotatedSecret, allowedHosts: ['api.stripe.com'] },
      ],
    });
    expect(rotation.status).toBe(202);
    const rotationId = ((await rotation.json()) as { jobId: string }).jobId;
    expect((await readEvents(await request('GET', `/api/jobs/${rotationId}/events`))).at(-1)?.event).toBe(
      'result',
    );
    const openKey = target
      .inspect('stored')!
      .secrets.find((secret) => secret.name === 'tokenizer-open-key')?.value;
    expect(openKey).toMatch(/^[0-9a-f]{64}$/);

    // Both files as they are on disk while the server runs (WAL not yet checkpointed), then after.
    const scan = () => {
      const bytes = Buffer.concat(
        [store.path, `${store.path}-wal`].map((file) => {
          try {
            return readFileSync(file);
          } catch {
            return Buffer.alloc(0);
          }
        }),
      );
      expect(bytes.length).toBeGreaterThan(0);
      // The store really holds the jobs (the scan is not of an empty file).
      expect(bytes.includes(Buffer.from(jobId))).toBe(true);
      for (const value of [knownSecret, rotatedSecret, openKey!]) {
        expect(bytes.includes(Buffer.from(value)), 'the database holds a secret').toBe(false);
        expect(bytes.includes(Buffer.from(Buffer.from(value).toString('base64')))).toBe(false);
      }
    };
    scan();
    store.close();
    scan();
  });
});
