import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DeploymentPlanV2, KeywardError, type ProgressEventV2 } from '@keyward/core';
import type { ThrowawayCertificates } from '@keyward/tokenizer/certificates';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalProvider } from '../src/index.js';
import {
  connectToTestRuntime,
  demoUpstreamHost,
  demoUpstreamPort,
  remainingObjects,
  testRuntimeKind,
  uniqueName,
} from '../src/testing/index.js';
import { faultInjectingDocker } from './support/fault-injecting-docker.js';
import {
  createUpstreamCertificates,
  ensureImages,
  tokenizerPlan,
} from './support/integration-environment.js';

/** podman, or docker under `pnpm test:docker` (KEYWARD_TEST_RUNTIME). */
const runtime = testRuntimeKind();

describe(`provider-local rollback on real ${runtime}`, () => {
  let docker: Docker;
  let certificates: ThrowawayCertificates;
  const name = uniqueName('it-rollback');
  let plan: DeploymentPlanV2;

  beforeAll(async () => {
    docker = await connectToTestRuntime();
    await ensureImages(docker);
    certificates = createUpstreamCertificates();
    plan = await tokenizerPlan({
      name,
      egress: 'proxy-only',
      caPem: certificates.caCertificatePem,
      // A state volume too: created by the apply, so taken back by its rollback.
      stateDirectories: ['/home/node/state'],
      credentials: [
        {
          name: 'demo',
          secret: `raw-${randomBytes(12).toString('hex')}`,
          allowedHosts: [`${demoUpstreamHost}:${demoUpstreamPort}`],
        },
      ],
    });
  });

  afterAll(async () => {
    await createLocalProvider({ docker })
      .delete(name, { removeVolumes: true })
      .catch(() => undefined);
  });

  it('a failure at every runtime call of apply leaves no labelled object and names the failed step', async () => {
    const faults = faultInjectingDocker(docker);
    const provider = createLocalProvider({
      docker: faults.docker,
      lockDirectory: join(tmpdir(), `keyward-locks-${name}`),
      readinessIntervalMs: 100,
      // Volume names carry the generation: a fixed one makes every run's calls comparable.
      generation: () => 'rollback',
    });
    // A clean run first: it lists every runtime call and every step.
    const cleanEvents: ProgressEventV2[] = [];
    faults.failOn(undefined);
    await provider.apply(plan, { onProgress: (event) => cleanEvents.push(event) });
    const distinctCalls = [...new Set(faults.calls)];
    const steps = new Set(
      cleanEvents.filter((event) => event.status === 'started').map((event) => event.step),
    );
    await provider.delete(name, { removeVolumes: true });
    expect(distinctCalls.length).toBeGreaterThan(10);

    const failedSteps = new Set<string>();
    for (const failedCall of distinctCalls) {
      faults.failOn(failedCall);
      const events: ProgressEventV2[] = [];
      const error = await provider.apply(plan, { onProgress: (event) => events.push(event) }).then(
        () => undefined,
        (problem: unknown) => problem,
      );
      expect(KeywardError.isInstance(error), `failing "${failedCall}" did not fail the apply`).toBe(true);
      const step = (error as KeywardError).details?.['step'] as string;
      expect((error as KeywardError).message).toContain(`failed at step "${step}"`);
      expect(events.find((event) => event.status === 'failed')?.step).toBe(step);
      failedSteps.add(step);
      expect(await remainingObjects(docker, name), `after failing "${failedCall}"`).toEqual([]);
    }
    // Every step of the clean run except image checks (read-only) failed at least once.
    const mutatingSteps = [...steps].filter((step) => !step.startsWith('image.check'));
    expect(mutatingSteps.filter((step) => !failedSteps.has(step))).toEqual([]);
    // One apply and its rollback per distinct runtime call (about 40; more on docker, whose
    // volume owners are containers too), each bounded by its own steps' waits.
  }, 600_000);

  it('an aborted apply stops before its next step, rolls back and leaves no labelled object', async () => {
    const provider = createLocalProvider({ docker, lockDirectory: join(tmpdir(), `keyward-locks-${name}`) });
    const controller = new AbortController();
    const events: ProgressEventV2[] = [];
    const error = await provider
      .apply(plan, {
        signal: controller.signal,
        onProgress: (event) => {
          events.push(event);
          // Abort once the first sidecar container exists: networks and volumes are already made.
          if (event.step === 'container.start:tokenizer' && event.status === 'succeeded') controller.abort();
        },
      })
      .then(
        () => undefined,
        (problem: unknown) => problem,
      );
    expect(KeywardError.isInstance(error)).toBe(true);
    expect((error as KeywardError).message).toMatch(/aborted/i);
    expect(events.some((event) => event.step === 'container.start:agent')).toBe(false);
    expect(await remainingObjects(docker, name)).toEqual([]);
  });
});
