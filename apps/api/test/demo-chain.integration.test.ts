// `keyward demo --with litellm,otel` end to end, against real podman, through the real CLI
// process. What the demo prints about the chain (agent → LiteLLM → tokenizer → demo API as a
// model API) and the trace is checked FROM THE OUTSIDE: the demo API's own record of the key
// it received, LiteLLM's container as the runtime reports it, and the collector's file.
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findCredentialInContainer } from '../src/demo/credential-exposure.js';
import { firstHealthyAdminUrl } from '../src/demo/demo-api-container.js';
import { DEMO_TELEMETRY_FILE, readContainerText, servicesOfTrace } from '../src/demo/demo-chain.js';
import { removeDemoObjects } from '../src/demo/run-demo.js';
import { bundleCli, type CliRun, dockerForTests, objectsOfInstance, runCli } from './demo-test-runtime.js';

// `--with` deploys its own instance, next to the plain demo's.
const instance = 'demo-chain';
const apiContainer = 'keyward-demo-chain-demo-api';

function describeRun(run: CliRun): string {
  return `exit ${run.code} (${run.signal ?? 'no signal'})\n--- stdout\n${run.stdout}\n--- stderr\n${run.stderr}`;
}

async function receivedByApi(docker: Docker) {
  const info = await docker.getContainer(apiContainer).inspect();
  const binding = info.NetworkSettings.Ports['9090/tcp']?.find((entry) => !entry.HostIp?.includes(':'));
  const address = info.NetworkSettings.Networks['keyward-demo-chain-egress']?.IPAddress;
  const health = await firstHealthyAdminUrl(
    [`http://127.0.0.1:${binding?.HostPort}`, `http://${address}:9090`],
    20_000,
  );
  if (!health.url)
    throw new Error(`the demo API's admin port does not answer: ${health.problems.join('; ')}`);
  return (await (await fetch(`${health.url}/_received`)).json()) as {
    method: string;
    url: string;
    status: number;
    headers: Record<string, string>;
  }[];
}

describe('keyward demo --with litellm,otel on real podman (the real CLI process)', () => {
  let docker: Docker;
  let cli: string;

  beforeAll(async () => {
    docker = await dockerForTests();
    cli = await bundleCli();
    await removeDemoObjects(docker, 'local', instance);
  });

  afterAll(async () => {
    if (docker) await removeDemoObjects(docker, 'local', instance);
  });

  it(
    'prints the chain and the trace as PASS lines, and each holds from outside',
    async () => {
      const run = await runCli(cli, ['demo', '--with', 'litellm,otel', '--non-interactive']);
      expect(run.code, describeRun(run)).toBe(0);
      // The plain demo's six lines, then the chain's four.
      for (const [index, title] of [
        [1, 'The agent calls the API through the proxy and succeeds'],
        [6, 'The proxy refuses a token the agent seals itself'],
        [7, 'The agent asks LiteLLM for a chat completion with its virtual key and gets one'],
        [8, 'The model API received the real provider key, injected by the tokenizer'],
        [9, 'LiteLLM holds a sealed token, never the provider key (nor does the agent or the collector)'],
        [
          10,
          'One trace runs agent → LiteLLM → proxy: the collector holds spans of all three under the agent’s trace id',
        ],
      ] as const) {
        expect(run.stdout).toContain(`✔ PASS  ${index}. ${title}`);
      }
      expect(run.stdout).not.toContain('FAIL');

      // The model API's own record: LiteLLM's call arrived with the real model key, put in by the
      // tokenizer (LiteLLM was configured with a placeholder), and no Proxy-* header.
      const calls = (await receivedByApi(docker)).filter(
        (entry) => entry.method === 'POST' && entry.url === '/v1/chat/completions',
      );
      expect(calls.length).toBeGreaterThan(0);
      const header = calls[0]?.headers['authorization'] ?? '';
      expect(header).toMatch(/^Bearer kwmodel_[\w-]{20,}$/);
      const modelKey = header.slice('Bearer '.length);
      for (const call of calls) {
        expect(call.headers['authorization']).toBe(header);
        expect(call.status).toBe(200);
        expect(Object.keys(call.headers).filter((name) => name.startsWith('proxy-'))).toEqual([]);
      }

      // LiteLLM holds the sealed token and proxy password, never the key, in any encoding.
      const litellm = await docker.getContainer('keyward-demo-chain-litellm').inspect();
      expect(litellm.State.Running).toBe(true);
      expect(litellm.Config.Env.some((entry) => /^KEYWARD_SEALED_DEMO_MODEL_API=.{40,}$/.test(entry))).toBe(
        true,
      );
      expect(JSON.stringify(litellm)).not.toContain(modelKey);
      for (const container of [
        'keyward-demo-chain-litellm',
        'keyward-demo-chain-agent',
        'keyward-demo-chain-otel',
      ]) {
        const exposure = await findCredentialInContainer(docker, container, modelKey);
        expect(exposure.findings, container).toEqual([]);
      }

      // The trace id the demo printed is in the collector's file, with spans of the agent, LiteLLM
      // and the tokenizer; and the model API got a call under that trace.
      const traceId = /trace ([0-9a-f]{32}) in /.exec(run.stdout)?.[1];
      expect(traceId, run.stdout).toBeDefined();
      expect(run.stdout).toContain('spans from demo-chain-agent, demo-chain-litellm, demo-chain-tokenizer');
      const lines = await readContainerText(docker, 'keyward-demo-chain-otel', DEMO_TELEMETRY_FILE);
      expect(servicesOfTrace(lines, traceId as string)).toEqual([
        'demo-chain-agent',
        'demo-chain-litellm',
        'demo-chain-tokenizer',
      ]);
      expect(
        calls.some((call) => call.headers['traceparent']?.split('-')[1] === traceId),
        JSON.stringify(calls.map((call) => call.headers['traceparent'])),
      ).toBe(true);
      expect(lines).not.toContain(modelKey);

      const removed = await runCli(cli, ['rm', instance]);
      expect(removed.code, describeRun(removed)).toBe(0);
      expect(await objectsOfInstance(docker, instance)).toEqual([]);
      // LiteLLM takes one to two minutes to start; the scans read its ~900 MB filesystem.
    },
    25 * 60_000,
  );
});
