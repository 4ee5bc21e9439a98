// `keyward demo --with litellm,otel`: the checks of the sidecar chain. The agent asks LiteLLM
// for a chat completion with its virtual key and a W3C traceparent; LiteLLM calls the model API
// (the demo API, which also answers OpenAI-style) over plain http through the tokenizer, which
// injects the provider key it sealed for LiteLLM alone. LiteLLM reports its spans as children
// of the agent's traceparent and passes that traceparent on to the tokenizer, which reports its
// span of the model call under it; the agent sends its own span for the trace, and the demo
// reads the collector's file exporter back for one trace id with all three services.
import { createHash } from 'node:crypto';
import { containerRuntimeName, execInContainer } from '@keyward/provider-local';
import type Docker from 'dockerode';
import tar from 'tar-stream';
import { findCredentialInContainer } from './credential-exposure.js';
import { readReceivedRequests } from './demo-api-container.js';

export const DEMO_MODEL_NAME = 'demo-model';
export const DEMO_MODEL_CREDENTIAL = 'demo-model-api';
/** provider-otel's default file exporter path. */
export const DEMO_TELEMETRY_FILE = '/var/lib/otelcol/telemetry.jsonl';

export interface DemoChainCheck {
  name:
    | 'gateway-chat-completed'
    | 'gateway-upstream-received-key'
    | 'gateway-holds-no-key'
    | 'trace-collected';
  title: string;
  passed: boolean;
  evidence: string;
}

/** Runs inside the agent (`node -`, on stdin): never a key in argv, the virtual key read from env. */
export function chainProbeScript(model: string): string {
  return String.raw`
const env = process.env;
const hex = (bytes) => require('node:crypto').randomBytes(bytes).toString('hex');
const traceId = hex(16);
const spanId = hex(8);
const started = BigInt(Date.now()) * 1000000n;
(async () => {
  const result = { traceId, baseUrl: env.OPENAI_BASE_URL };
  try {
    const response = await fetch(env.OPENAI_BASE_URL + '/chat/completions', {
      method: 'POST',
      headers: { authorization: 'Bearer ' + env.OPENAI_API_KEY, 'content-type': 'application/json',
        traceparent: '00-' + traceId + '-' + spanId + '-01' },
      body: JSON.stringify({ model: ${JSON.stringify(model)}, messages: [{ role: 'user', content: 'hello' }] }),
      signal: AbortSignal.timeout(90000),
    });
    result.status = response.status;
    const text = await response.text();
    try { result.content = JSON.parse(text).choices[0].message.content; } catch { result.content = null; }
  } catch (error) {
    result.error = String(error && (error.cause?.code || error.name || error));
  }
  if (env.OTEL_EXPORTER_OTLP_ENDPOINT) {
    const body = JSON.stringify({ resourceSpans: [{
      resource: { attributes: [{ key: 'service.name', value: { stringValue: env.OTEL_SERVICE_NAME || 'agent' } }] },
      scopeSpans: [{ scope: { name: 'keyward.demo' }, spans: [{ traceId, spanId, name: 'agent chat completion', kind: 3,
        startTimeUnixNano: String(started), endTimeUnixNano: String(BigInt(Date.now()) * 1000000n) }] }] }] });
    const response = await fetch(env.OTEL_EXPORTER_OTLP_ENDPOINT + '/v1/traces', {
      method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(10000),
    }).catch((error) => ({ status: String(error && (error.cause?.code || error)) }));
    result.otlpStatus = response.status;
  }
  process.stdout.write(JSON.stringify(result) + '\n');
})();
`;
}

interface ProbeOutcome {
  traceId?: string;
  baseUrl?: string;
  status?: number;
  content?: string | null;
  error?: string;
  otlpStatus?: number | string;
}

/** The `service.name` of every resource that sent a span of `traceId` (OTLP JSON lines). */
export function servicesOfTrace(lines: string, traceId: string): string[] {
  const services = new Set<string>();
  for (const line of lines.split('\n')) {
    if (!line.trim()) continue;
    let data: {
      resourceSpans?: {
        resource?: { attributes?: { key: string; value: { stringValue?: string } }[] };
        scopeSpans?: { spans?: { traceId?: string }[] }[];
      }[];
    };
    try {
      data = JSON.parse(line);
    } catch {
      continue;
    }
    for (const resource of data.resourceSpans ?? []) {
      const spans = (resource.scopeSpans ?? []).flatMap((scope) => scope.spans ?? []);
      if (!spans.some((span) => span.traceId?.toLowerCase() === traceId.toLowerCase())) continue;
      const name = resource.resource?.attributes?.find((attribute) => attribute.key === 'service.name');
      services.add(name?.value.stringValue ?? '(unnamed)');
    }
  }
  return [...services].sort();
}

export interface CollectedSpan {
  traceId: string;
  /** Absent for a root span. */
  parentSpanId?: string;
  name: string;
  attributes: Record<string, unknown>;
}

/** The spans one service sent (OTLP JSON lines of the file exporter), attributes flattened. */
export function spansOf(lines: string, service: string): CollectedSpan[] {
  const spans: CollectedSpan[] = [];
  for (const line of lines.split('\n')) {
    if (!line.trim()) continue;
    let data: {
      resourceSpans?: {
        resource?: { attributes?: { key: string; value: { stringValue?: string } }[] };
        scopeSpans?: {
          spans?: {
            traceId: string;
            parentSpanId?: string;
            name: string;
            attributes?: { key: string; value: Record<string, unknown> }[];
          }[];
        }[];
      }[];
    };
    try {
      data = JSON.parse(line);
    } catch {
      continue;
    }
    for (const resource of data.resourceSpans ?? []) {
      const name = resource.resource?.attributes?.find((attribute) => attribute.key === 'service.name');
      if (name?.value.stringValue !== service) continue;
      for (const span of (resource.scopeSpans ?? []).flatMap((scope) => scope.spans ?? [])) {
        spans.push({
          traceId: span.traceId,
          ...(span.parentSpanId ? { parentSpanId: span.parentSpanId } : {}),
          name: span.name,
          attributes: Object.fromEntries(
            (span.attributes ?? []).map((attribute) => [attribute.key, Object.values(attribute.value)[0]]),
          ),
        });
      }
    }
  }
  return spans;
}

/**
 * One file of a container through the archive API: the collector's image has no shell, and a
 * secret file's path never goes through an exec argv. The tests read files with it too.
 */
export async function readContainerText(docker: Docker, container: string, path: string): Promise<string> {
  const archive = await docker.getContainer(container).getArchive({ path });
  const extract = tar.extract();
  const chunks: Buffer[] = [];
  extract.on('entry', (_header, entry, next) => {
    entry.on('data', (chunk: unknown) => chunks.push(chunk as Buffer));
    entry.on('end', next);
    entry.resume();
  });
  await new Promise<void>((resolve, reject) => {
    extract.on('finish', resolve);
    extract.on('error', reject);
    archive.pipe(extract);
  });
  return Buffer.concat(chunks).toString('utf8');
}

function fingerprint(value: string): string {
  return createHash('sha256').update(value).digest('hex').slice(0, 12);
}

/** The services of a trace as the collector's file holds them, and the proxy's span of the model call in it. */
export interface CollectedTrace {
  services: string[];
  /** The proxy's spans of POST calls to the model API under this trace id. */
  proxySpans: CollectedSpan[];
}

/**
 * Reads the collector's file until `traceId` has spans from every service in `services` and a
 * proxy span of a POST to `modelApiHost`, or the attempts run out (exports are batched: the
 * SDKs every second, the collector's batch processor too). Returns what was there last.
 */
export async function waitForTrace(options: {
  docker: Docker;
  collector: string;
  traceId: string;
  services: readonly string[];
  proxyService: string;
  modelApiHost: string;
  attempts?: number;
}): Promise<CollectedTrace> {
  let collected: CollectedTrace = { services: [], proxySpans: [] };
  for (let attempt = 0; attempt < (options.attempts ?? 60); attempt += 1) {
    const lines = await readContainerText(options.docker, options.collector, DEMO_TELEMETRY_FILE).catch(
      () => '',
    );
    collected = {
      services: servicesOfTrace(lines, options.traceId),
      proxySpans: spansOf(lines, options.proxyService).filter(
        (span) =>
          span.traceId.toLowerCase() === options.traceId.toLowerCase() &&
          span.attributes['server.address'] === options.modelApiHost &&
          span.attributes['http.request.method'] === 'POST',
      ),
    };
    if (
      options.services.every((service) => collected.services.includes(service)) &&
      collected.proxySpans.length > 0
    ) {
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  return collected;
}

export interface ChainCheckSettings {
  docker: Docker;
  instance: string;
  adminUrl: string;
  /** The model the agent asks LiteLLM for; default the demo's. */
  model?: string;
  /** The provider key LiteLLM's model uses (sealed for LiteLLM's container). */
  modelKey: string;
  /** The model API's host name, as the tokenizer's spans name it (`server.address`). */
  modelApiHost: string;
  telemetry: boolean;
}

export async function runChainChecks(settings: ChainCheckSettings): Promise<DemoChainCheck[]> {
  const { docker, instance } = settings;
  const agent = containerRuntimeName(instance, 'agent');
  const run = await execInContainer(docker, agent, ['node', '-'], {
    stdin: chainProbeScript(settings.model ?? DEMO_MODEL_NAME),
    timeoutMs: 120_000,
  });
  let outcome: ProbeOutcome = {};
  try {
    outcome = JSON.parse(run.stdout.trim().split('\n').at(-1) ?? '{}') as ProbeOutcome;
  } catch {
    outcome = { error: `the probe printed no result (exit ${run.exitCode})` };
  }
  const checks: DemoChainCheck[] = [
    {
      name: 'gateway-chat-completed',
      title: 'The agent asks LiteLLM for a chat completion with its virtual key and gets one',
      passed: outcome.status === 200 && typeof outcome.content === 'string',
      evidence:
        outcome.status === undefined
          ? `POST ${outcome.baseUrl ?? 'the gateway'}/chat/completions failed: ${outcome.error}`
          : `POST ${outcome.baseUrl}/chat/completions → ${outcome.status}${outcome.content ? `, "${outcome.content}"` : ''}`,
    },
  ];

  const received = await readReceivedRequests(settings.adminUrl);
  const calls = received.filter(
    (entry) => entry.method === 'POST' && entry.url.endsWith('/chat/completions'),
  );
  const keyed = calls.filter((entry) => entry.headers['authorization'] === `Bearer ${settings.modelKey}`);
  const proxyHeaders = calls.flatMap((entry) =>
    Object.keys(entry.headers).filter((header) => header.startsWith('proxy-')),
  );
  const last = calls.at(-1);
  const lastKey =
    typeof last?.headers['authorization'] === 'string' && last.headers['authorization'].startsWith('Bearer ')
      ? fingerprint(last.headers['authorization'].slice(7))
      : 'none';
  checks.push({
    name: 'gateway-upstream-received-key',
    title: 'The model API received the real provider key, injected by the tokenizer',
    passed: calls.length > 0 && keyed.length === calls.length && proxyHeaders.length === 0,
    evidence: last
      ? `the API got ${calls.length} × POST ${last.url} with Authorization: Bearer <key sha256:${lastKey}> (provider key sha256:${fingerprint(settings.modelKey)}) and answered ${last.status}${proxyHeaders.length > 0 ? `; proxy headers reached it: ${[...new Set(proxyHeaders)].join(', ')}` : '; no Proxy-* header reached it'}`
      : `the API recorded no chat completion (${received.length} request(s) in all)`,
  });

  const scanned = ['litellm', 'agent', ...(settings.telemetry ? ['otel'] : [])];
  const findings: string[] = [];
  let files = 0;
  for (const container of scanned) {
    const exposure = await findCredentialInContainer(
      docker,
      containerRuntimeName(instance, container),
      settings.modelKey,
    );
    files += exposure.searched.files;
    findings.push(...exposure.findings.map((finding) => `${container} ${finding.place} (${finding.form})`));
  }
  checks.push({
    name: 'gateway-holds-no-key',
    title: 'LiteLLM holds a sealed token, never the provider key (nor does the agent or the collector)',
    passed: findings.length === 0 && files > 0,
    evidence:
      findings.length > 0
        ? `found in ${findings.join(', ')}`
        : `no match (raw, base64, base64url, hex) in the env, process files and ${files} files of ${scanned.join(', ')}`,
  });

  if (settings.telemetry) {
    const agentService = `${instance}-agent`;
    const gatewayService = `${instance}-litellm`;
    const proxyService = `${instance}-tokenizer`;
    const services = [agentService, gatewayService, proxyService];
    const trace = outcome.traceId
      ? await waitForTrace({
          docker,
          collector: containerRuntimeName(instance, 'otel'),
          traceId: outcome.traceId,
          services,
          proxyService,
          modelApiHost: settings.modelApiHost,
        })
      : { services: [], proxySpans: [] };
    const missing = services.filter((service) => !trace.services.includes(service));
    checks.push({
      name: 'trace-collected',
      title:
        'One trace runs agent → LiteLLM → proxy: the collector holds spans of all three under the agent’s trace id',
      passed: outcome.traceId !== undefined && missing.length === 0 && trace.proxySpans.length > 0,
      evidence: outcome.traceId
        ? `trace ${outcome.traceId} in ${DEMO_TELEMETRY_FILE}: spans from ${trace.services.join(', ') || 'nobody'}${missing.length > 0 ? `; none from ${missing.join(', ')}` : ''}; ${proxyService}: ${trace.proxySpans.length} span(s) of POST ${settings.modelApiHost} in it (agent POST /v1/traces → ${outcome.otlpStatus})`
        : 'the agent sent no trace',
    });
  }
  return checks;
}
