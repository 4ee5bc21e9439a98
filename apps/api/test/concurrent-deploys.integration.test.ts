import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProviderRegistry } from '@keyward/core';
import { buildImage, imageDefinitions, imageReference } from '@keyward/images';
import { createLocalProvider } from '@keyward/provider-local';
import { connectToTestRuntime, remainingObjects, uniqueName } from '@keyward/provider-local/testing';
import { createTokenizerProvider } from '@keyward/provider-tokenizer';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/app.js';
import { readEvents } from './test-app.js';

// Load on real podman through the API: N instances (`load-…`, each with the real tokenizer in
// proxy-only mode) deployed at once, then every one rotated three ways at once: twice through
// one API process (the second must get 409 ROTATION_IN_PROGRESS) and once through a second API
// process (a second app on the same lock directory: two `keyward` processes on one machine), whose
// rotation provider-local's cross-process lock must hold back until the first ends. All along, a
// client calls `GET /instances` and `GET /instances/:id` and records their latency. Asserts: every
// job ends with a result, the two rotations of an instance never interleave (their progress events
// do not overlap in time), the last one's credentials are what the instance holds, and after the
// deletes nothing labelled with any instance is left, nor a lock file.
// CI: 4 instances. Long run: KEYWARD_LOAD_INSTANCES=20 (`pnpm test:reliability`).
const instanceCount = Number(process.env['KEYWARD_LOAD_INSTANCES'] ?? 4);
const token = `kw_${randomBytes(24).toString('base64url')}`;
const base = uniqueName('load');
const names = Array.from({ length: instanceCount }, (_, index) => `${base}-${index}`);
const lockDirectory = mkdtempSync(join(tmpdir(), 'keyward-load-locks-'));
// Generous: the machine is shared (load 5–20), and 20 proxy-only instances are 60 containers.
const testTimeout = (10 + instanceCount * 2) * 60_000;

type App = ReturnType<typeof createApp>;
const errorLines: string[] = [];
/** JSON.stringify drops an Error's message and stack; keep them. */
const errorFields = (_key: string, value: unknown) =>
  value instanceof Error ? { name: value.name, message: value.message, stack: value.stack } : value;
type Event = Awaited<ReturnType<typeof readEvents>>[number];

function percentile(sorted: number[], fraction: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1)]!;
}

describe(`the API deploying and rotating ${instanceCount} instances at once on real podman`, () => {
  let docker: Docker;
  let first: App;
  let second: App;

  const call = (app: App, method: string, path: string, body?: unknown) =>
    Promise.resolve(
      app.request(path, {
        method,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      }),
    );

  /** The job's events to its end; the stream closes after the result or the error. */
  const eventsOf = async (app: App, jobId: string): Promise<Event[]> =>
    (await readEvents(await call(app, 'GET', `/api/jobs/${jobId}/events`))).filter(
      (event) => event.event !== 'message', // keep-alive comments
    );

  const appFor = () => {
    const registry = new ProviderRegistry();
    // Rotations wait for each other: under load one can take minutes.
    registry.registerTarget(createLocalProvider({ docker, lockDirectory, lockWaitMs: testTimeout }));
    registry.registerSidecar(createTokenizerProvider());
    return createApp({
      registry,
      token,
      // The latency probe sends hundreds of requests a minute; the limits are tested in routes.test.ts.
      rateLimits: {
        requests: { limit: 1_000_000, windowMilliseconds: 60_000 },
        deploy: { limit: 1000, windowMilliseconds: 60_000 },
        rotation: { limit: 1000, windowMilliseconds: 60_000 },
      },
      // Only failures are kept, for the assertion messages.
      logger: {
        log: (level, message, fields) => {
          if (level === 'error')
            errorLines.push(JSON.stringify({ message, ...fields }, errorFields).slice(0, 2000));
        },
      },
    });
  };

  beforeAll(async () => {
    docker = await connectToTestRuntime();
    for (const definition of Object.values(imageDefinitions)) await buildImage(docker, definition);
    first = appFor();
    second = appFor();
  }, 600_000);

  afterAll(async () => {
    // Whatever the test reached, leave nothing behind.
    for (const name of names) await call(first, 'DELETE', `/api/instances/${name}`).catch(() => undefined);
    rmSync(lockDirectory, { recursive: true, force: true });
  }, 600_000);

  it(
    'every job ends with a result, rotations of one instance never interleave, list and get answer throughout, nothing is left',
    async ({ task }) => {
      const load = loadavg();
      // The latency probe: list and get, one request at a time, until the load ends.
      const latencies: { list: number[]; get: number[] } = { list: [], get: [] };
      const probeFailures: string[] = [];
      let loading = true;
      const probe = (async () => {
        for (let round = 0; loading; round += 1) {
          const kind = round % 2 === 0 ? 'list' : 'get';
          const path = kind === 'list' ? '/api/instances' : `/api/instances/${names[round % names.length]}`;
          const started = performance.now();
          const response = await call(first, 'GET', path);
          const body = await response.text();
          latencies[kind].push(performance.now() - started);
          // A get before the instance exists is a 404; anything else must be a 200.
          if (response.status !== 200 && !(kind === 'get' && response.status === 404)) {
            probeFailures.push(`${path}: ${response.status} ${body.slice(0, 300)}`);
          }
        }
      })();

      const deployStarted = performance.now();
      const deploys = await Promise.all(
        names.map(async (name) => {
          const response = await call(first, 'POST', '/api/instances', {
            name,
            target: 'local',
            agent: {
              image: imageReference(imageDefinitions.agentStandIn),
              port: 18789,
              skillsDirectory: '/home/node/skills',
            },
            sidecars: {
              tokenizer: {
                credentials: [
                  {
                    name: 'first',
                    secret: `first-${randomBytes(16).toString('hex')}`,
                    allowedHosts: ['api.example.com'],
                  },
                ],
              },
            },
          });
          expect(response.status, await response.clone().text()).toBe(202);
          const { jobId } = (await response.json()) as { jobId: string };
          return { name, jobId, events: await eventsOf(first, jobId) };
        }),
      );
      const deploySeconds = (performance.now() - deployStarted) / 1000;
      for (const deploy of deploys) {
        expect(deploy.events.at(-1)?.event, `${deploy.name}: ${JSON.stringify(deploy.events.at(-1))}`).toBe(
          'result',
        );
      }

      const change = (label: string) => ({
        credentials: [
          { name: 'first', secret: '' },
          {
            name: label,
            secret: `${label}-${randomBytes(16).toString('hex')}`,
            allowedHosts: ['api.example.com'],
          },
        ],
      });
      const rotationStarted = performance.now();
      const rotations = await Promise.all(
        names.map(async (name) => {
          const path = `/api/instances/${name}/tokenizer`;
          const [a, again, b] = await Promise.all([
            call(first, 'PUT', path, change('through-first')),
            call(first, 'PUT', path, change('again-first')),
            call(second, 'PUT', path, change('through-second')),
          ]);
          // One process runs one change of an instance at a time: the second request is refused.
          const statuses = [a.status, again.status].sort();
          expect(statuses, `${name}: ${await a.clone().text()} ${await again.clone().text()}`).toEqual([
            202, 409,
          ]);
          const refused = a.status === 409 ? a : again;
          expect(((await refused.json()) as { error: { code: string } }).error.code).toBe(
            'ROTATION_IN_PROGRESS',
          );
          const accepted =
            a.status === 202
              ? { response: a, label: 'through-first' }
              : { response: again, label: 'again-first' };
          const jobs = [
            {
              app: first,
              label: accepted.label,
              jobId: ((await accepted.response.json()) as { jobId: string }).jobId,
            },
          ];
          // The other process reads the instance's secrets to compose its change: accepted when it
          // does so before the first rotation parks the old containers (the lock then holds it back),
          // else refused with 409 ROTATION_IN_PROGRESS, never a 500.
          const other = await b.clone().text();
          expect([202, 409], `${other}\n${errorLines.join('\n')}`).toContain(b.status);
          if (b.status === 202) {
            jobs.push({
              app: second,
              label: 'through-second',
              jobId: (JSON.parse(other) as { jobId: string }).jobId,
            });
          } else {
            expect((JSON.parse(other) as { error: { code: string } }).error.code).toBe(
              'ROTATION_IN_PROGRESS',
            );
          }
          const followed = await Promise.all(
            jobs.map(async (job) => ({ ...job, events: await eventsOf(job.app, job.jobId) })),
          );
          return { name, jobs: followed };
        }),
      );
      const rotationSeconds = (performance.now() - rotationStarted) / 1000;
      loading = false;
      await probe;

      for (const { name, jobs } of rotations) {
        for (const job of jobs) {
          expect(job.events.at(-1)?.event, `${name} ${job.label}: ${JSON.stringify(job.events.at(-1))}`).toBe(
            'result',
          );
        }
        // The provider's progress events of two rotations do not overlap in time.
        const windows = jobs
          .map((job) => {
            const times = job.events
              .filter((event) => event.event === 'progress')
              .map((event) => Date.parse(event.data.time as string));
            return {
              label: job.label,
              from: Math.min(...times),
              to: Math.max(...times),
              count: times.length,
            };
          })
          .sort((left, right) => left.from - right.from);
        for (const window of windows) expect(window.count).toBeGreaterThan(0);
        for (let index = 1; index < windows.length; index += 1) {
          expect(windows[index - 1]!.to, `${name}: ${JSON.stringify(windows)}`).toBeLessThanOrEqual(
            windows[index]!.from,
          );
        }
        // The rotation that ran last decided the credentials (each was composed before either ran).
        const view = (await (await call(first, 'GET', `/api/instances/${name}/tokenizer`)).json()) as {
          credentials: { name: string }[];
        };
        expect(view.credentials.map((credential) => credential.name)).toEqual([
          'first',
          windows.at(-1)!.label,
        ]);
      }
      expect(probeFailures).toEqual([]);

      for (const name of names) {
        const deleted = await call(first, 'DELETE', `/api/instances/${name}`);
        expect(deleted.status, await deleted.clone().text()).toBe(200);
      }
      for (const name of names) expect(await remainingObjects(docker, name), name).toEqual([]);
      expect(readdirSync(lockDirectory)).toEqual([]);

      const sorted = {
        list: [...latencies.list].sort((left, right) => left - right),
        get: [...latencies.get].sort((left, right) => left - right),
      };
      const figures = [
        { figure: 'instances', value: instanceCount },
        { figure: 'concurrent deploys, wall time', value: Math.round(deploySeconds), unit: 's' },
        {
          figure: 'concurrent rotations (2 per instance), wall time',
          value: Math.round(rotationSeconds),
          unit: 's',
        },
        {
          figure: 'jobs ended with a result',
          value: deploys.length + rotations.flatMap((item) => item.jobs).length,
        },
        {
          figure: "second process's rotations refused with 409 (the first was replacing containers)",
          value: rotations.filter((item) => item.jobs.length === 1).length,
        },
        ...(['list', 'get'] as const).flatMap((kind) => [
          { figure: `${kind} calls under load`, value: sorted[kind].length },
          { figure: `${kind} latency p50`, value: Math.round(percentile(sorted[kind], 0.5)), unit: 'ms' },
          { figure: `${kind} latency p90`, value: Math.round(percentile(sorted[kind], 0.9)), unit: 'ms' },
          { figure: `${kind} latency p99`, value: Math.round(percentile(sorted[kind], 0.99)), unit: 'ms' },
          { figure: `${kind} latency max`, value: Math.round(sorted[kind].at(-1) ?? Number.NaN), unit: 'ms' },
        ]),
        { figure: 'load average (1 min) at start', value: load[0] },
      ];
      Object.assign(task.meta, { figures });
      console.log(
        `load: ${figures.map((item) => `${item.figure} ${item.value}${item.unit ? ` ${item.unit}` : ''}`).join(', ')}; load ${load.map((value) => value.toFixed(2)).join(' ')}`,
      );
    },
    testTimeout,
  );
});
