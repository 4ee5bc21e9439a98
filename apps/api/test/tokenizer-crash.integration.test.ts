import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProviderRegistry, runtimeName } from '@keyward/core';
import { buildImage, imageDefinitions, imageReference } from '@keyward/images';
import { createLocalProvider } from '@keyward/provider-local';
import {
  connectToTestRuntime,
  type DemoUpstream,
  demoUpstreamHost,
  startDemoUpstream,
  uniqueName,
} from '@keyward/provider-local/testing';
import { createTokenizerProvider } from '@keyward/provider-tokenizer';
import { createThrowawayCertificates } from '@keyward/tokenizer/certificates';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/app.js';
import { createJsonLogger } from '../src/logger.js';
import { agentProxiedRequest, demoUpstreamInstanceSpec } from './demo-upstream-instance.js';
import { removeInstanceObjects, waitForJob } from './serve-process.js';

// The tokenizer container dies under a running instance on real podman. A crash (its process
// killed from outside, as the kernel's OOM killer does): the restart policy brings it back and
// the agent's next request through the proxy works. `podman kill` (the runtime's API kill):
// podman records it as stopped by the user, so no restart policy applies; `start` on the
// instance brings it back.
const token = `kw_${randomBytes(24).toString('base64url')}`;
const secret = `crash-${randomBytes(16).toString('hex')}`;
const name = uniqueName('faults-crash');
const tokenizerName = runtimeName(name, 'tokenizer');

let docker: Docker;
let upstream: DemoUpstream;
let app: ReturnType<typeof createApp>;

async function call(method: string, path: string, body?: unknown): Promise<Response> {
  return app.request(path, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

/** One request of the agent through the proxy with its sealed credential (the tokenizer's self-test). */
function agentRequest() {
  return agentProxiedRequest(call, upstream, name);
}

/** Requests until one passes; at most `timeoutMs` (the tokenizer needs a moment to listen again). */
async function agentRequestUntilItWorks(
  timeoutMs: number,
): Promise<{ authorization?: string; attempts: number }> {
  const deadline = Date.now() + timeoutMs;
  let attempts = 0;
  let last = '';
  while (Date.now() < deadline) {
    attempts += 1;
    const result = await agentRequest();
    if (result.passed)
      return { ...(result.authorization ? { authorization: result.authorization } : {}), attempts };
    last = result.evidence;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  throw new Error(`the agent's request never worked within ${timeoutMs} ms; last: ${last}`);
}

async function tokenizerState(): Promise<{
  running: boolean;
  restarts: number;
  pid: number;
  startedAt: string;
}> {
  const info = await docker.getContainer(tokenizerName).inspect();
  return {
    running: info.State.Running,
    restarts: info.RestartCount,
    pid: info.State.Pid,
    startedAt: info.State.StartedAt,
  };
}

async function waitForTokenizer(
  done: (state: Awaited<ReturnType<typeof tokenizerState>>) => boolean,
  timeoutMs: number,
): Promise<Awaited<ReturnType<typeof tokenizerState>>> {
  const deadline = Date.now() + timeoutMs;
  let state = await tokenizerState();
  while (!done(state)) {
    if (Date.now() > deadline)
      throw new Error(`the tokenizer container did not get there: ${JSON.stringify(state)}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
    state = await tokenizerState();
  }
  return state;
}

beforeAll(async () => {
  docker = await connectToTestRuntime();
  for (const definition of Object.values(imageDefinitions)) await buildImage(docker, definition);
  const certificates = createThrowawayCertificates({ dnsNames: [demoUpstreamHost], validDays: 2 });
  upstream = await startDemoUpstream(docker, {
    image: imageReference(imageDefinitions.demoUpstream),
    certificates,
    runId: name,
  });
  await upstream.acceptTokens([secret]);
  const registry = new ProviderRegistry();
  registry.registerTarget(
    createLocalProvider({ docker, lockDirectory: join(tmpdir(), `keyward-locks-${name}`) }),
  );
  registry.registerSidecar(createTokenizerProvider());
  app = createApp({ registry, token, logger: createJsonLogger({ write: () => undefined }) });
  const accepted = await call(
    'POST',
    '/api/instances',
    demoUpstreamInstanceSpec(name, secret, certificates.caCertificatePem),
  );
  if (accepted.status !== 202) throw new Error(`deploy refused: ${await accepted.text()}`);
  const { jobId } = (await accepted.json()) as { jobId: string };
  const headers = { authorization: `Bearer ${token}` };
  const job = await waitForJob(
    'http://app',
    headers,
    jobId,
    (view) => view.status !== 'running',
    300_000,
    (url, init) => app.request(url, init),
  );
  if (job.status !== 'succeeded') throw new Error(`deploy failed: ${JSON.stringify(job)}`);
  await upstream.attachTo(runtimeName(name, 'egress'));
}, 900_000);

afterAll(async () => {
  await call('DELETE', `/api/instances/${name}`).catch(() => undefined);
  await removeInstanceObjects(docker, name);
  await upstream?.remove();
}, 180_000);

describe('the tokenizer container killed under a running instance', { timeout: 600_000 }, () => {
  it('works before the fault', async () => {
    const first = await agentRequest();
    expect(first.passed, first.evidence).toBe(true);
    expect(first.authorization).toBe(`Bearer ${secret}`);
  });

  it('crashed (SIGKILL from outside): the restart policy brings it back and the next request works', async () => {
    const before = await tokenizerState();
    expect(before.running).toBe(true);
    // The container's main process as the host sees it: killed the way the OOM killer does.
    process.kill(before.pid, 'SIGKILL');
    const after = await waitForTokenizer(
      (state) => state.running && state.restarts > before.restarts && state.startedAt !== before.startedAt,
      90_000,
    );
    expect(after.pid).not.toBe(before.pid);
    const next = await agentRequestUntilItWorks(90_000);
    expect(next.authorization).toBe(`Bearer ${secret}`);
    const detail = (await (await call('GET', `/api/instances/${name}`)).json()) as { state: string };
    expect(detail.state).toBe('running');
  });

  it('podman kill: podman records a user stop, and start on the instance brings it back', async () => {
    await docker.getContainer(tokenizerName).kill();
    await waitForTokenizer((state) => !state.running, 30_000);
    const stopped = (await (await call('GET', `/api/instances/${name}`)).json()) as {
      state: string;
      containers: { name: string; running: boolean }[];
    };
    expect(stopped.state).toBe('partial');
    expect(stopped.containers.find((container) => container.name === 'tokenizer')?.running).toBe(false);
    const refused = await agentRequest();
    expect(refused.passed, 'no proxy, no request').toBe(false);

    const started = await call('POST', `/api/instances/${name}/start`);
    expect(started.status, await started.clone().text()).toBe(200);
    expect((await tokenizerState()).running).toBe(true);
    const next = await agentRequestUntilItWorks(90_000);
    expect(next.authorization).toBe(`Bearer ${secret}`);
  });
});
