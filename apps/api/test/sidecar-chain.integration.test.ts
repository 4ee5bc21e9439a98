// The sidecar chain on real podman, through provider-local: agent → LiteLLM (the real one
// from PyPI, with the OpenTelemetry SDK) → tokenizer → a stand-in model API (the demo upstream
// over HTTPS, which records the key it received), with the OpenTelemetry Collector (the real
// one) next to them. The provider key is sealed by the tokenizer for LiteLLM's container
// alone; the test checks at the model API that the real key arrived, and scans LiteLLM, the
// agent and the collector for it in any encoding. The agent's traceparent carries one trace
// through LiteLLM and the tokenizer: the collector's file holds all three services under it.
import { randomBytes } from 'node:crypto';
import {
  composePlanV2,
  type NetworkMode,
  ProviderRegistry,
  parseInstanceSpec,
  runtimeName,
  secretRedactor,
} from '@keyward/core';
import {
  buildImage,
  buildPrebuiltImage,
  imageDefinitions,
  imageReference,
  litellmImage,
  otelCollectorImage,
} from '@keyward/images';
import { createLitellmProvider } from '@keyward/provider-litellm';
import { containerRuntimeName, createLocalProvider, type LocalProvider } from '@keyward/provider-local';
import { remainingObjects, uniqueName } from '@keyward/provider-local/testing';
import { createOtelProvider } from '@keyward/provider-otel';
import { createTokenizerProvider } from '@keyward/provider-tokenizer';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { credentialNeedles, findCredentialInContainer } from '../src/demo/credential-exposure.js';
import {
  type DemoApi,
  readReceivedRequests,
  removeDemoApi,
  startDemoApi,
} from '../src/demo/demo-api-container.js';
import { createDemoCertificates } from '../src/demo/demo-certificates.js';
import {
  DEMO_TELEMETRY_FILE,
  type DemoChainCheck,
  readContainerText,
  runChainChecks,
  servicesOfTrace,
  spansOf,
  waitForTrace,
} from '../src/demo/demo-chain.js';
import { dockerForTests, execIn } from './demo-test-runtime.js';

const modelApiHost = 'model-api.chain.keyward.test';
const modelApiPort = 8443;
const modelName = 'chain-model';

// Runs inside the agent (script on stdin): one chat completion to the gateway with the agent's
// virtual key and a W3C traceparent, then the agent's own span for that trace to the collector.
const agentScript = String.raw`
const env = process.env;
const hex = (bytes) => require('node:crypto').randomBytes(bytes).toString('hex');
const traceId = hex(16);
const spanId = hex(8);
const started = BigInt(Date.now()) * 1000000n;
(async () => {
  const result = { traceId, spanId };
  try {
    const response = await fetch(env.OPENAI_BASE_URL + '/chat/completions', {
      method: 'POST',
      headers: {
        authorization: 'Bearer ' + env.OPENAI_API_KEY,
        'content-type': 'application/json',
        traceparent: '00-' + traceId + '-' + spanId + '-01',
      },
      body: JSON.stringify({ model: ${JSON.stringify(modelName)}, messages: [{ role: 'user', content: 'hello' }] }),
      signal: AbortSignal.timeout(60000),
    });
    result.status = response.status;
    const text = await response.text();
    try { result.content = JSON.parse(text).choices[0].message.content; } catch { result.body = text.slice(0, 500); }
  } catch (error) {
    result.error = String(error && (error.cause?.code || error.name || error));
  }
  if (env.OTEL_EXPORTER_OTLP_ENDPOINT) {
    const ended = BigInt(Date.now()) * 1000000n;
    const body = JSON.stringify({ resourceSpans: [{
      resource: { attributes: [{ key: 'service.name', value: { stringValue: env.OTEL_SERVICE_NAME || 'agent' } }] },
      scopeSpans: [{ scope: { name: 'keyward.chain-test' }, spans: [{ traceId, spanId, name: 'agent chat completion', kind: 3,
        startTimeUnixNano: String(started), endTimeUnixNano: String(ended) }] }] }] });
    const response = await fetch(env.OTEL_EXPORTER_OTLP_ENDPOINT + '/v1/traces', {
      method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(10000),
    }).catch((error) => ({ status: String(error && (error.cause?.code || error)) }));
    result.otlpStatus = response.status;
  }
  process.stdout.write(JSON.stringify(result) + '\n');
})();
`;

interface Chain {
  name: string;
  mode: NetworkMode;
  secret: string;
  api: DemoApi;
}

interface AgentOutcome {
  traceId: string;
  spanId: string;
  status?: number;
  content?: string;
  body?: string;
  error?: string;
  otlpStatus?: number | string;
}

async function deployChain(docker: Docker, local: LocalProvider, mode: NetworkMode): Promise<Chain> {
  const name = uniqueName(mode === 'open' ? 'chain-open' : 'chain');
  // The provider key: only in this process's memory, then sealed for LiteLLM's container.
  const secret = `sk-chain-${randomBytes(24).toString('base64url')}`;
  const certificates = createDemoCertificates({ hostname: modelApiHost });
  const registry = new ProviderRegistry();
  registry.registerSidecar(createTokenizerProvider());
  registry.registerSidecar(createLitellmProvider({ defaultImage: imageReference(litellmImage) }));
  registry.registerSidecar(
    createOtelProvider({
      defaultImage: imageReference(otelCollectorImage),
      defaultBinary: '/usr/bin/otelcol-keyward',
    }),
  );
  registry.registerTarget(local);
  const spec = parseInstanceSpec({
    name,
    target: 'local',
    agent: {
      image: imageReference(imageDefinitions.agentStandIn),
      port: 18789,
      skillsDirectory: '/home/node/skills',
    },
    network: { egress: mode },
    sidecars: {
      tokenizer: {
        credentials: [],
        // The stand-in model API is a container on a private address, with a CA made for this run.
        upstreamCaCertificates: certificates.caCertificatePem,
        allowPrivateUpstreams: true,
      },
      litellm: {
        models: [{ name: modelName, model: 'openai/chain-upstream', credential: 'model-api' }],
        credentials: [{ name: 'model-api', secret, host: `${modelApiHost}:${modelApiPort}` }],
      },
      otel: { exporters: { file: {} } },
    },
  });
  const plan = await composePlanV2({ spec, sidecars: registry, target: local, redactor: secretRedactor });
  // The model API goes first onto the instance's egress network, before LiteLLM asks for models.
  await local.apply(plan);
  const api = await startDemoApi({
    docker,
    instanceName: name,
    target: local.id,
    image: imageReference(imageDefinitions.demoUpstream),
    user: imageDefinitions.demoUpstream.user,
    network: runtimeName(name, 'egress'),
    hostname: modelApiHost,
    certificates,
    acceptedToken: secret,
  });
  return { name, mode, secret, api };
}

/** Every place the key shows up in a container's full inspect output (any encoding). */
async function inspectFindings(docker: Docker, container: string, secret: string): Promise<string[]> {
  const text = Buffer.from(JSON.stringify(await docker.getContainer(container).inspect()), 'utf8');
  return credentialNeedles(secret)
    .filter((needle) => text.includes(needle.bytes))
    .map((needle) => `inspect ${container} (${needle.form})`);
}

describe('the sidecar chain on real podman: agent → LiteLLM → tokenizer → model API', () => {
  let docker: Docker;
  const chains: Chain[] = [];
  const outcomes = new Map<NetworkMode, AgentOutcome>();

  beforeAll(async () => {
    docker = await dockerForTests();
    for (const definition of [
      imageDefinitions.tokenizer,
      imageDefinitions.agentStandIn,
      imageDefinitions.demoUpstream,
      imageDefinitions.networkHelper,
    ]) {
      await buildImage(docker, definition);
    }
    // Built once per machine (`pnpm images otelCollector litellm`); skipped when up to date.
    await buildPrebuiltImage(docker, otelCollectorImage);
    await buildPrebuiltImage(docker, litellmImage);
    const local = createLocalProvider({ docker });
    // Both modes at once: LiteLLM takes a minute or two to start on a busy machine.
    const deployed = await Promise.allSettled(
      (['proxy-only', 'open'] as const).map((mode) => deployChain(docker, local, mode)),
    );
    for (const result of deployed) if (result.status === 'fulfilled') chains.push(result.value);
    const failed = deployed.find((result) => result.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
  }, 45 * 60_000);

  afterAll(async () => {
    if (!docker) return;
    const local = createLocalProvider({ docker });
    for (const chain of chains) {
      await removeDemoApi(docker, chain.name);
      await local.delete(chain.name, { removeVolumes: true }).catch(() => undefined);
    }
  }, 5 * 60_000);

  for (const mode of ['proxy-only', 'open'] as const) {
    it(
      `a chat completion from the agent reaches the model API with the real key injected by the tokenizer (${mode})`,
      async () => {
        const chain = chains.find((item) => item.mode === mode) as Chain;
        const agent = containerRuntimeName(chain.name, 'agent');
        const run = await execIn(docker, agent, ['node', '-'], agentScript);
        expect(run.exitCode, run.stderr).toBe(0);
        const outcome = JSON.parse(run.stdout.trim().split('\n').at(-1) ?? '{}') as AgentOutcome;
        outcomes.set(mode, outcome);
        expect(outcome, JSON.stringify(outcome)).toMatchObject({
          status: 200,
          content: 'hello from the demo upstream',
        });

        const received = await readReceivedRequests(chain.api.adminUrl);
        const completions = received.filter(
          (entry) => entry.method === 'POST' && entry.url === '/v1/chat/completions',
        );
        expect(completions.length).toBeGreaterThan(0);
        for (const call of completions) {
          // The real key, in the header the credential names, and nothing of the proxy.
          expect(call.headers['authorization']).toBe(`Bearer ${chain.secret}`);
          expect(call.status).toBe(200);
          expect(call.host).toBe(`${modelApiHost}:${modelApiPort}`);
          expect(Object.keys(call.headers).filter((header) => header.startsWith('proxy-'))).toEqual([]);
        }
        // Nothing reached the model API without the key (LiteLLM's placeholder never got through).
        expect(received.filter((entry) => entry.status !== 200)).toEqual([]);
      },
      5 * 60_000,
    );

    it(
      `no container but the tokenizer's sealed tokens holds the key: LiteLLM, the agent and the collector are scanned (${mode})`,
      async () => {
        const chain = chains.find((item) => item.mode === mode) as Chain;
        const tokenizer = containerRuntimeName(chain.name, 'tokenizer');
        // The tokenizer holds the open key (which opens the sealed tokens), not the raw key either.
        const openKey = (
          await readContainerText(docker, tokenizer, '/run/keyward/tokenizer/open-key')
        ).trim();
        expect(openKey).toMatch(/^[0-9a-f]{64}$/);
        expect((await findCredentialInContainer(docker, tokenizer, chain.secret)).findings).toEqual([]);
        for (const container of ['litellm', 'agent', 'otel']) {
          const runtime = containerRuntimeName(chain.name, container);
          // Raw, base64, base64url and hex, in env, /proc/1/environ and cmdline, the whole filesystem and every mount.
          const exposure = await findCredentialInContainer(docker, runtime, [chain.secret, openKey]);
          expect(exposure.findings, container).toEqual([]);
          expect(exposure.searched.files, container).toBeGreaterThan(3);
          // The collector's image has neither node nor python to read /proc with.
          if (container !== 'otel') expect(exposure.unreadable, container).toEqual([]);
          expect(await inspectFindings(docker, runtime, chain.secret), container).toEqual([]);
          expect(await inspectFindings(docker, runtime, openKey), container).toEqual([]);
        }
        // LiteLLM holds what it was given instead: the sealed token and the proxy password.
        const env = (await docker.getContainer(containerRuntimeName(chain.name, 'litellm')).inspect()).Config
          .Env;
        expect(env.some((entry) => /^KEYWARD_SEALED_MODEL_API=.{40,}$/.test(entry))).toBe(true);
        expect(env.some((entry) => entry.startsWith('KEYWARD_PROXY_AUTH='))).toBe(true);
      },
      20 * 60_000,
    );
  }

  for (const mode of ['proxy-only', 'open'] as const) {
    it(
      `one trace id holds the agent's span, LiteLLM's and the proxy's of the model call, and the collector's file no secret (${mode})`,
      async () => {
        const chain = chains.find((item) => item.mode === mode) as Chain;
        const outcome = outcomes.get(mode) as AgentOutcome;
        expect(outcome.otlpStatus).toBe(200);
        const collector = containerRuntimeName(chain.name, 'otel');
        const services = [`${chain.name}-agent`, `${chain.name}-litellm`, `${chain.name}-tokenizer`];
        // Bounded: the SDKs export every second, the collector batches for another.
        const trace = await waitForTrace({
          docker,
          collector,
          traceId: outcome.traceId,
          services,
          proxyService: `${chain.name}-tokenizer`,
          modelApiHost,
          attempts: 90,
        });
        expect(trace.services).toEqual(services);
        const lines = await readContainerText(docker, collector, DEMO_TELEMETRY_FILE);
        // LiteLLM's server span is the child of the agent's span (the traceparent it received).
        const gateway = spansOf(lines, `${chain.name}-litellm`).filter(
          (span) => span.traceId === outcome.traceId,
        );
        expect(gateway.map((span) => span.name)).toContain('Received Proxy Server Request');
        expect(gateway.find((span) => span.name === 'Received Proxy Server Request')?.parentSpanId).toBe(
          outcome.spanId,
        );
        // The tokenizer's span of the model call: host, method and a credential fingerprint, never a value.
        expect(trace.proxySpans.length).toBeGreaterThan(0);
        for (const span of trace.proxySpans) {
          expect(String(span.attributes['http.response.status_code'])).toBe('200');
          expect(span.attributes['keyward.tokenizer.credential.fingerprints']).toBeDefined();
        }
        // No secret of the chain in what the collector wrote: the provider key, the open key, the
        // virtual key, LiteLLM's sealed token and proxy password (any encoding).
        const tokenizer = containerRuntimeName(chain.name, 'tokenizer');
        const openKey = (
          await readContainerText(docker, tokenizer, '/run/keyward/tokenizer/open-key')
        ).trim();
        const litellmEnv = (await docker.getContainer(containerRuntimeName(chain.name, 'litellm')).inspect())
          .Config.Env;
        const variable = (name: string) =>
          litellmEnv.find((entry) => entry.startsWith(`${name}=`))?.slice(name.length + 1) ?? '';
        const secrets = {
          'provider key': chain.secret,
          'open key': openKey,
          'virtual key': variable('LITELLM_MASTER_KEY'),
          'sealed token': variable('KEYWARD_SEALED_MODEL_API'),
          'proxy password': variable('KEYWARD_PROXY_AUTH'),
        };
        const text = Buffer.from(lines, 'utf8');
        for (const [name, value] of Object.entries(secrets)) {
          expect(value.length, name).toBeGreaterThan(15);
          const found = credentialNeedles(value).filter((needle) => text.includes(needle.bytes));
          expect(
            found.map((needle) => needle.form),
            name,
          ).toEqual([]);
        }
      },
      3 * 60_000,
    );
  }

  it(
    "the demo's chain checks pass on this instance, and their trace line holds from outside (proxy-only)",
    async () => {
      const chain = chains.find((item) => item.mode === 'proxy-only') as Chain;
      // What `keyward demo --with litellm,otel` runs after its deploy, on this test's own instance.
      const checks = await runChainChecks({
        docker,
        instance: chain.name,
        adminUrl: chain.api.adminUrl,
        model: modelName,
        modelKey: chain.secret,
        modelApiHost,
        telemetry: true,
      });
      expect(
        checks.map(({ name, passed }) => ({ name, passed })),
        JSON.stringify(checks, null, 2),
      ).toEqual([
        { name: 'gateway-chat-completed', passed: true },
        { name: 'gateway-upstream-received-key', passed: true },
        { name: 'gateway-holds-no-key', passed: true },
        { name: 'trace-collected', passed: true },
      ]);
      const line = checks.find((check) => check.name === 'trace-collected') as DemoChainCheck;
      const traceId = /^trace ([0-9a-f]{32}) in /.exec(line.evidence)?.[1];
      expect(traceId, line.evidence).toBeDefined();
      const services = [`${chain.name}-agent`, `${chain.name}-litellm`, `${chain.name}-tokenizer`];
      for (const service of services) expect(line.evidence).toContain(service);
      // From outside: the collector's file, read here, has that trace id from all three services.
      const lines = await readContainerText(
        docker,
        containerRuntimeName(chain.name, 'otel'),
        DEMO_TELEMETRY_FILE,
      );
      expect(servicesOfTrace(lines, traceId as string)).toEqual(services);
      // And the model API got a call carrying that trace (the tokenizer's span id as parent).
      const received = await readReceivedRequests(chain.api.adminUrl);
      expect(
        received.some(
          (entry) =>
            entry.method === 'POST' &&
            typeof entry.headers['traceparent'] === 'string' &&
            entry.headers['traceparent'].split('-')[1] === traceId,
        ),
        JSON.stringify(received.map((entry) => entry.headers['traceparent'])),
      ).toBe(true);
    },
    20 * 60_000,
  );

  it(
    'leaves nothing labelled after delete',
    async () => {
      const local = createLocalProvider({ docker });
      for (const chain of chains.splice(0)) {
        await removeDemoApi(docker, chain.name);
        await local.delete(chain.name, { removeVolumes: true });
        expect(await remainingObjects(docker, chain.name)).toEqual([]);
      }
    },
    5 * 60_000,
  );
});
