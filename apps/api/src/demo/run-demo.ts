// `keyward demo`: deploys an agent next to the tokenizer in `proxy-only` mode with
// one credential bound to a demo HTTPS API, then shows from inside the agent that
// the agent can use the credential but can neither read it, nor go around the proxy, nor
// make the proxy carry a token it sealed itself.
import { createHash, randomBytes } from 'node:crypto';
import {
  composePlanV2,
  type InstanceSpecInput,
  instanceLabels,
  isKeywardError,
  KeywardError,
  labelKeys,
  type ProgressEventV1,
  ProviderRegistry,
  parseInstanceSpec,
  redact,
  registerSecret,
  runtimeName,
  secretRedactor,
  type VerifyCheckReportV2,
} from '@keyward/core';
import type { ImageBuildProgress } from '@keyward/images';
import { createLitellmProvider } from '@keyward/provider-litellm';
import { containerRuntimeName } from '@keyward/provider-local';
import { createOtelProvider } from '@keyward/provider-otel';
import { createTokenizerProvider } from '@keyward/provider-tokenizer';
import type Docker from 'dockerode';
import { defaultHost, defaultPort } from '../server.js';
import { runVerification, verifyOptionsOf } from '../verification.js';
import { defaultWebDirectory } from '../web-routes.js';
import { findCredentialInContainer } from './credential-exposure.js';
import { DEMO_API_PORT, type DemoApi, readReceivedRequests, startDemoApi } from './demo-api-container.js';
import { createDemoCertificates } from './demo-certificates.js';
import { DEMO_MODEL_CREDENTIAL, DEMO_MODEL_NAME, type DemoChainCheck, runChainChecks } from './demo-chain.js';
import { type DemoExtra, ensureDemoImages, loadImages } from './demo-images.js';
import { type DemoRuntime, detectDemoRuntime } from './demo-runtime.js';

export const DEMO_INSTANCE_NAME = 'demo';
/** `keyward demo --with …` deploys a second instance, so the plain demo's stays as it is. */
export const DEMO_CHAIN_INSTANCE_NAME = 'demo-chain';
export const DEMO_API_HOSTNAME = 'api.demo.keyward.test';
export const DEMO_CREDENTIAL_NAME = 'demo-api';
/** A host the credential is not bound to; the tokenizer refuses it without dialing it. */
export const DEMO_UNBOUND_URL = 'https://example.com/';
const demoPath = '/v1/whoami';

export type DemoStep = 'runtime' | 'images' | 'cleanup' | 'deploy' | 'demo-api' | 'checks' | 'rollback';

export interface DemoProgressEvent {
  step: DemoStep;
  status: ProgressEventV1['status'];
  message: string;
  time: string;
  /** The underlying target or image-build event, for `--verbose` output. */
  detail?: ProgressEventV1 | ImageBuildProgress;
}

export interface DemoCheck {
  name:
    | 'proxied-request-injected'
    | 'upstream-received-credential'
    | 'direct-egress-blocked'
    | 'agent-holds-no-credential'
    | 'unbound-host-refused'
    | 'self-sealed-token-refused'
    | DemoChainCheck['name'];
  title: string;
  passed: boolean;
  /** What was observed, never a secret. */
  evidence: string;
}

export interface DemoOptions {
  onProgress?: (event: DemoProgressEvent) => void;
  /** Abort (Ctrl-C): the run stops at the next step and removes what it made. */
  signal?: AbortSignal;
  environment?: NodeJS.ProcessEnv;
  /**
   * Sidecars next to the tokenizer (`keyward demo --with litellm,otel`): LiteLLM calls the demo
   * API as a model API through the tokenizer; the collector receives one trace from the agent,
   * LiteLLM and the tokenizer.
   */
  with?: readonly DemoExtra[];
  /** Injectable runtime (tests). Default: provider-local's detection. */
  detectRuntime?: (options: { environment: NodeJS.ProcessEnv }) => Promise<DemoRuntime>;
}

export interface DemoResult {
  instance: string;
  passed: boolean;
  checks: DemoCheck[];
  runtime: { name: string; version?: string; endpoint: string };
  images: { built: string[]; reused: string[] };
  /** Whether an earlier demo instance was replaced. */
  replacedExisting: boolean;
  agentContainer: string;
  agentUrl?: string;
  demoApi: { hostname: string; port: number; adminUrl: string };
  /** `keyward serve` serves the HTTP API here, and the web UI at `/` when this install has it. */
  apiAddress: string;
  /** Whether `keyward serve` has a built web UI to serve (a checkout after `pnpm build`; npm packages have none). */
  webUi: boolean;
  /** How to call keyward where the demo ran: `pnpm keyward` inside the repository, else `keyward`. */
  cliCommand: string;
  cleanupCommand: string;
  /** Set when the runtime was found without DOCKER_HOST; other keyward commands need it exported. */
  dockerHostHint?: string;
  durationMs: number;
  /** sha256 prefix of the demo credential, to match against what the API received without showing it. */
  credentialFingerprint: string;
  /** The sidecars added with `--with`. */
  extras: DemoExtra[];
  /** sha256 prefix of the model API key LiteLLM's model uses (with litellm). */
  modelKeyFingerprint?: string;
}

export class DemoAbortedError extends KeywardError {
  constructor(rolledBack: boolean) {
    super({
      code: 'DEPLOY_FAILED',
      message: rolledBack
        ? 'The demo was interrupted; everything it had made was removed.'
        : 'The demo was interrupted before it made anything.',
      details: { aborted: true, rolledBack },
    });
  }
}

function fingerprint(value: string): string {
  return createHash('sha256').update(value).digest('hex').slice(0, 12);
}

interface DemoExtraSpec {
  extras: readonly DemoExtra[];
  /** The provider key LiteLLM's model uses; sealed by the tokenizer for LiteLLM's container. */
  modelKey: string;
}

function demoSpec(
  agentImage: string,
  secret: string,
  caCertificate: string,
  extra: DemoExtraSpec = { extras: [], modelKey: '' },
): InstanceSpecInput {
  return {
    name: extra.extras.length > 0 ? DEMO_CHAIN_INSTANCE_NAME : DEMO_INSTANCE_NAME,
    target: 'local',
    // The stand-in keeps OpenClaw's layout: its port and its skills folder.
    agent: { image: agentImage, port: 18789, skillsDirectory: '/home/node/.openclaw/skills' },
    network: { egress: 'proxy-only' },
    sidecars: {
      ...(extra.extras.includes('litellm')
        ? {
            litellm: {
              // The demo API answers OpenAI-style too: it stands in for a model provider.
              models: [
                { name: DEMO_MODEL_NAME, model: 'openai/demo-model', credential: DEMO_MODEL_CREDENTIAL },
              ],
              credentials: [
                {
                  name: DEMO_MODEL_CREDENTIAL,
                  secret: extra.modelKey,
                  host: `${DEMO_API_HOSTNAME}:${DEMO_API_PORT}`,
                },
              ],
            },
          }
        : {}),
      ...(extra.extras.includes('otel') ? { otel: { exporters: { file: {} } } } : {}),
      tokenizer: {
        credentials: [
          {
            name: DEMO_CREDENTIAL_NAME,
            secret,
            allowedHosts: [`${DEMO_API_HOSTNAME}:${DEMO_API_PORT}`],
          },
        ],
        // The demo API's certificate comes from a CA made for this run.
        upstreamCaCertificates: caCertificate,
        // The demo API is a container on a private address; real APIs are not.
        allowPrivateUpstreams: true,
      },
    },
  };
}

function verifyCheck(
  checks: VerifyCheckReportV2[],
  name: string,
): Pick<VerifyCheckReportV2, 'passed' | 'evidence'> {
  return (
    checks.find((check) => check.name === name) ?? {
      passed: false,
      evidence: `the self-test reported no "${name}" check`,
    }
  );
}

function formatBytes(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(0)} MB` : `${(bytes / 1024).toFixed(0)} kB`;
}

function describeImageProgress(event: ImageBuildProgress): string | undefined {
  switch (event.type) {
    case 'building':
      return `Building ${event.image} (${event.base === 'scratch' ? 'from scratch with this machine’s node' : 'from a registry base'})`;
    case 'built':
      return `Built ${event.image} in ${(event.milliseconds / 1000).toFixed(1)} s`;
    case 'skipped':
      return `${event.image} is up to date`;
    case 'output':
      return `  ${event.line}`;
    default:
      return undefined;
  }
}

/**
 * Runs the whole demo. It never prompts, so it runs the same in a terminal and in
 * CI. Resolves with the checks (a failed check does not throw:
 * the instance stays up for a look). Throws when a step fails or the signal
 * aborts, after removing everything the run made.
 */
export async function runDemo(options: DemoOptions = {}): Promise<DemoResult> {
  const started = Date.now();
  const { imageDefinitions, imageReference } = await loadImages();
  const environment = options.environment ?? process.env;
  const signal = options.signal;
  const extras = [...new Set(options.with ?? [])].sort() as DemoExtra[];
  const instance = extras.length > 0 ? DEMO_CHAIN_INSTANCE_NAME : DEMO_INSTANCE_NAME;
  const emit = (
    step: DemoStep,
    status: DemoProgressEvent['status'],
    message: string,
    detail?: DemoProgressEvent['detail'],
  ) => {
    options.onProgress?.({
      step,
      status,
      message: redact(message),
      time: new Date().toISOString(),
      ...(detail ? { detail: redact(detail) } : {}),
    });
  };
  const abortIfAsked = () => {
    if (signal?.aborted) throw new DemoAbortedError(false);
  };

  abortIfAsked();
  emit('runtime', 'started', 'Looking for a container runtime');
  let runtime: DemoRuntime;
  try {
    runtime = await (options.detectRuntime ?? detectDemoRuntime)({ environment });
  } catch (error) {
    emit(
      'runtime',
      'failed',
      isKeywardError(error, 'RUNTIME_UNAVAILABLE') ? 'No container runtime found' : (error as Error).message,
    );
    throw error;
  }
  emit(
    'runtime',
    'succeeded',
    `Using ${runtime.name}${runtime.version ? ` ${runtime.version}` : ''} at ${runtime.endpoint} (found by ${runtime.strategy})`,
  );
  const { docker, provider } = runtime;

  abortIfAsked();
  emit(
    'images',
    'started',
    `Building the images the demo needs (tokenizer, stand-in agent, demo API, network helper${extras.includes('litellm') ? ', LiteLLM' : ''}${extras.includes('otel') ? ', OpenTelemetry Collector' : ''}) if missing`,
  );
  const images = await raceAbort(
    ensureDemoImages(docker, {
      extras,
      onProgress: (event) => {
        const message = describeImageProgress(event);
        if (message) emit('images', 'info', message, event);
      },
    }),
    signal,
  );
  emit(
    'images',
    'succeeded',
    images.built.length > 0
      ? `Built ${images.built.length} image(s), reused ${images.reused.length}`
      : 'All images were up to date',
  );

  // From here on the run makes runtime objects: any failure or Ctrl-C removes them.
  let madeSomething = false;
  try {
    abortIfAsked();
    const existing =
      (
        await docker.listContainers({
          all: true,
          filters: { label: [`${labelKeys.instance}=${instance}`, `${labelKeys.component}=agent`] },
        })
      ).length > 0;
    madeSomething = true;
    emit(
      'cleanup',
      'started',
      existing
        ? 'Removing the demo instance of an earlier run'
        : 'Removing leftovers of an earlier run, if any',
    );
    await removeEverything(runtime, instance);
    emit(
      'cleanup',
      'succeeded',
      existing ? 'Removed the earlier demo instance' : 'Nothing left from earlier runs',
    );

    abortIfAsked();
    // The credential exists only in this process's memory, then sealed in the tokenizer's token.
    const secret = `kwdemo_${randomBytes(24).toString('base64url')}`;
    registerSecret(secret);
    // With LiteLLM: the model API key, sealed by the tokenizer for LiteLLM's container alone.
    const modelKey = `kwmodel_${randomBytes(24).toString('base64url')}`;
    registerSecret(modelKey);
    const certificates = createDemoCertificates({ hostname: DEMO_API_HOSTNAME });
    const registry = new ProviderRegistry();
    registry.registerSidecar(createTokenizerProvider());
    if (extras.includes('litellm')) {
      const { prebuiltImageDefinitions } = await loadImages();
      registry.registerSidecar(
        createLitellmProvider({ defaultImage: imageReference(prebuiltImageDefinitions.litellm) }),
      );
    }
    if (extras.includes('otel')) {
      const { prebuiltImageDefinitions } = await loadImages();
      registry.registerSidecar(
        createOtelProvider({
          defaultImage: imageReference(prebuiltImageDefinitions.otelCollector),
          defaultBinary: '/usr/bin/otelcol-keyward',
        }),
      );
    }
    registry.registerTarget(provider);
    const spec = parseInstanceSpec(
      demoSpec(imageReference(imageDefinitions.agentStandIn), secret, certificates.caCertificatePem, {
        extras,
        modelKey,
      }),
    );
    const plan = await composePlanV2({
      spec,
      sidecars: registry,
      target: provider,
      redactor: secretRedactor,
    });

    emit(
      'deploy',
      'started',
      `Deploying instance "${instance}" (proxy-only) with credential "${DEMO_CREDENTIAL_NAME}" bound to ${DEMO_API_HOSTNAME}:${DEMO_API_PORT}${extras.includes('litellm') ? `, LiteLLM with model "${DEMO_MODEL_NAME}" (its key sealed for LiteLLM, bound to the same API)` : ''}${extras.includes('otel') ? ', an OpenTelemetry Collector' : ''}`,
    );
    const detail = await provider.apply(plan, {
      onProgress: (event) => emit('deploy', 'info', event.message, event),
    });
    emit('deploy', 'succeeded', `Instance "${instance}" is ${detail.state}`);

    abortIfAsked();
    emit(
      'demo-api',
      'started',
      `Starting the demo API https://${DEMO_API_HOSTNAME}:${DEMO_API_PORT} (accepts only the demo credential)`,
    );
    // provider-local's network for the sidecars' way out (the agent is not on it).
    const egressNetwork = runtimeName(instance, 'egress');
    const api: DemoApi = await startDemoApi({
      docker,
      instanceName: instance,
      target: provider.id,
      image: imageReference(imageDefinitions.demoUpstream),
      user: imageDefinitions.demoUpstream.user,
      network: egressNetwork,
      hostname: DEMO_API_HOSTNAME,
      certificates,
      acceptedToken: secret,
      ...(extras.includes('litellm') ? { moreAcceptedTokens: [modelKey] } : {}),
      ...(signal ? { signal } : {}),
    });
    emit(
      'demo-api',
      'succeeded',
      `Demo API is up on network ${egressNetwork} (reachable by the tokenizer, not by the agent)`,
    );

    abortIfAsked();
    emit('checks', 'started', 'Checking from inside the agent');
    const checks: DemoCheck[] = await runChecks(instance, runtime, registry, api, secret);
    if (extras.includes('litellm')) {
      checks.push(
        ...(await runChainChecks({
          docker,
          instance,
          adminUrl: api.adminUrl,
          modelKey,
          modelApiHost: DEMO_API_HOSTNAME,
          telemetry: extras.includes('otel'),
        })),
      );
    }
    for (const check of checks)
      emit('checks', check.passed ? 'succeeded' : 'failed', `${check.title}: ${check.evidence}`);
    abortIfAsked();

    const agentContainer = containerRuntimeName(instance, 'agent');
    // `pnpm demo` in the repository: the CLI is `pnpm keyward` there, not on the PATH.
    const cliCommand = environment['npm_lifecycle_event'] === 'demo' ? 'pnpm keyward' : 'keyward';
    const current = await provider.get(instance);
    return {
      instance,
      passed: checks.every((check) => check.passed),
      checks,
      runtime: {
        name: runtime.name,
        ...(runtime.version ? { version: runtime.version } : {}),
        endpoint: runtime.endpoint,
      },
      images,
      replacedExisting: existing,
      agentContainer,
      ...(current.agentUrl ? { agentUrl: current.agentUrl } : {}),
      demoApi: { hostname: DEMO_API_HOSTNAME, port: DEMO_API_PORT, adminUrl: api.adminUrl },
      apiAddress: `http://${defaultHost}:${defaultPort}`,
      webUi: defaultWebDirectory() !== undefined,
      cliCommand,
      cleanupCommand: `${cliCommand} rm ${instance}`,
      ...(runtime.dockerHostHint ? { dockerHostHint: runtime.dockerHostHint } : {}),
      durationMs: Date.now() - started,
      credentialFingerprint: fingerprint(secret),
      extras,
      ...(extras.includes('litellm') ? { modelKeyFingerprint: fingerprint(modelKey) } : {}),
    };
  } catch (error) {
    if (!madeSomething) throw signal?.aborted ? new DemoAbortedError(false) : error;
    emit(
      'rollback',
      'started',
      signal?.aborted
        ? 'Interrupted: removing what this run made'
        : `Failed (${(error as Error).message}): removing what this run made`,
    );
    await removeEverything(runtime, instance);
    emit('rollback', 'succeeded', `Removed every object labelled keyward.dev/instance=${instance}`);
    if (signal?.aborted) throw new DemoAbortedError(true);
    throw error;
  }
}

/** Resolves as soon as the signal aborts, leaving the work to finish on its own (image builds only). */
async function raceAbort<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(new DemoAbortedError(false));
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([work, aborted]);
  } finally {
    if (onAbort) signal.removeEventListener('abort', onAbort);
    work.catch(() => undefined);
  }
}

/**
 * Removes every object labelled as part of the demo instance (what `keyward rm demo`
 * does, the demo API included) with the client the demo already holds. Each
 * object's labels are checked here as well: podman 4.3's compat API ORs several
 * `label` filters on volumes, and other instances' volumes must never be touched.
 */
export async function removeDemoObjects(
  docker: Docker,
  target = 'local',
  instance = DEMO_INSTANCE_NAME,
): Promise<number> {
  // Any spec version: a demo left by an older keyward must not block this one.
  const { [labelKeys.specVersion]: _version, ...wanted } = instanceLabels(instance, target);
  const matches = (labels: Record<string, string> | null | undefined) =>
    Object.entries(wanted).every(([key, value]) => labels?.[key] === value);
  const filters = { label: [`${labelKeys.instance}=${instance}`] };
  const ignoreMissing = (error: unknown) => {
    if ((error as { statusCode?: number }).statusCode !== 404) throw error;
  };
  let removed = 0;
  const containers = (await docker.listContainers({ all: true, filters })).filter((summary) =>
    matches(summary.Labels),
  );
  // Containers that share another's network namespace go before it: the agent before the
  // agent-network helper that holds its namespace, everything before the network helper that
  // holds open mode's. (podman's container list does not report `container:` network modes.)
  const rank: Record<string, number> = { agent: 0, 'agent-network': 2, 'network-helper': 3 };
  const order = (summary: (typeof containers)[number]) =>
    summary.HostConfig?.NetworkMode?.startsWith('container:')
      ? 0
      : (rank[summary.Labels[labelKeys.component] ?? ''] ?? 1);
  containers.sort((a, b) => order(a) - order(b));
  for (const summary of containers) {
    await docker.getContainer(summary.Id).remove({ force: true, v: true }).catch(ignoreMissing);
    removed += 1;
  }
  for (const network of (await docker.listNetworks({ filters })).filter((entry) => matches(entry.Labels))) {
    await docker
      .getNetwork(network.Id ?? network.Name)
      .remove()
      .catch(ignoreMissing);
    removed += 1;
  }
  const { Volumes: volumes } = await docker.listVolumes({ filters });
  for (const volume of (volumes ?? []).filter((entry) => matches(entry.Labels))) {
    await docker.getVolume(volume.Name).remove().catch(ignoreMissing);
    removed += 1;
  }
  return removed;
}

async function removeEverything(runtime: DemoRuntime, instance: string): Promise<void> {
  await removeDemoObjects(runtime.docker, runtime.provider.id, instance);
}

async function runChecks(
  instance: string,
  runtime: DemoRuntime,
  registry: ProviderRegistry,
  api: DemoApi,
  secret: string,
): Promise<DemoCheck[]> {
  const allowedUrl = `https://${DEMO_API_HOSTNAME}:${DEMO_API_PORT}${demoPath}`;
  // The same self-test `keyward verify` runs: the target's isolation checks and the
  // tokenizer's own (it seals its self-made-token probe itself).
  const detail = await runtime.provider.get(instance);
  const result = await runVerification({
    target: runtime.provider,
    sidecars: registry,
    detail,
    options: verifyOptionsOf(detail, registry, {
      options: {
        tokenizer: { allowedUrl, unboundUrl: DEMO_UNBOUND_URL, credential: DEMO_CREDENTIAL_NAME },
      },
    }),
  });
  const proxied = verifyCheck(result.checks, 'proxied-request-injected');
  // The target's own direct-egress check; a target that names it otherwise: all its own checks.
  const isolation = result.checks.filter((check) => check.providerId === runtime.provider.id);
  const namedDirect = isolation.filter((check) => check.name === 'direct-egress-blocked');
  const directChecks = namedDirect.length > 0 ? namedDirect : isolation;
  const direct = {
    passed: directChecks.length > 0 && directChecks.every((check) => check.passed),
    evidence:
      directChecks.length > 0
        ? directChecks
            .map((check) => (namedDirect.length > 0 ? check.evidence : `${check.name}: ${check.evidence}`))
            .join('; ')
        : `target "${runtime.provider.id}" reported no isolation check`,
  };
  const unbound = verifyCheck(result.checks, 'unbound-host-refused');
  const selfSealed = verifyCheck(result.checks, 'self-sealed-token-refused');

  // What the API saw, read from its recording endpoint: the proof that the proxy
  // put the real credential in, compared here in memory and never printed.
  const received = await readReceivedRequests(api.adminUrl);
  const hit = received.filter((entry) => entry.url === demoPath).pop();
  const authorization = hit?.headers['authorization'];
  const leakedProxyHeaders = hit
    ? Object.keys(hit.headers).filter((header) => header.startsWith('proxy-'))
    : [];
  const upstreamPassed =
    hit !== undefined &&
    authorization === `Bearer ${secret}` &&
    hit.status === 200 &&
    leakedProxyHeaders.length === 0;
  const upstreamEvidence = hit
    ? `the API got ${hit.method} ${hit.url} with Authorization: Bearer <credential sha256:${typeof authorization === 'string' && authorization.startsWith('Bearer ') ? fingerprint(authorization.slice(7)) : 'none'}> (demo credential sha256:${fingerprint(secret)}) and answered ${hit.status}${leakedProxyHeaders.length > 0 ? `; proxy headers reached it: ${leakedProxyHeaders.join(', ')}` : '; no Proxy-* header reached it'}`
    : `the API recorded no request for ${demoPath} (${received.length} request(s) in all)`;

  const exposure = await findCredentialInContainer(
    runtime.docker,
    containerRuntimeName(instance, 'agent'),
    secret,
  );
  const exposurePassed = exposure.findings.length === 0 && exposure.unreadable.length === 0;
  const exposureEvidence =
    exposure.findings.length > 0
      ? `found in ${exposure.findings.map((finding) => `${finding.place} (${finding.form})`).join(', ')}`
      : `no match (raw, base64, base64url, hex) in ${exposure.searched.envVariables} env variables, ${exposure.searched.processFiles.join(' and ') || 'no process files'}, ${exposure.searched.files} files (${formatBytes(exposure.searched.bytes)}) incl. mounts ${exposure.searched.mounts.join(', ') || 'none'}${exposure.unreadable.length > 0 ? `; could not read ${exposure.unreadable.join(', ')}` : ''}`;

  return [
    {
      name: 'proxied-request-injected',
      title: 'The agent calls the API through the proxy and succeeds',
      passed: proxied.passed,
      evidence: proxied.evidence,
    },
    {
      name: 'upstream-received-credential',
      title: 'The proxy injected the real credential',
      passed: upstreamPassed,
      evidence: upstreamEvidence,
    },
    {
      name: 'direct-egress-blocked',
      title: 'The agent cannot call the API directly',
      passed: direct.passed,
      evidence: direct.evidence,
    },
    {
      name: 'agent-holds-no-credential',
      title: 'The agent’s env and files hold no raw credential',
      passed: exposurePassed,
      evidence: exposureEvidence,
    },
    {
      name: 'unbound-host-refused',
      title: 'The proxy refuses the credential for another host',
      passed: unbound.passed,
      evidence: unbound.evidence,
    },
    {
      name: 'self-sealed-token-refused',
      title: 'The proxy refuses a token the agent seals itself',
      passed: selfSealed.passed,
      evidence: selfSealed.evidence,
    },
  ];
}
