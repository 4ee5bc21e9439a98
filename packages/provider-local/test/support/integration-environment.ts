// Shared set-up for this package's integration tests on top of
// `@keyward/provider-local/testing` (runtime, demo upstream): the locally built images,
// the upstream's throwaway certificates, tokenizer plans, runnable mock sidecars and a runner
// for self-test checks (the sidecars' and the target's).
import {
  AGENT_CONTAINER_NAME,
  composePlanV2,
  composeRotationV2,
  type DeploymentPlanV2,
  type InstanceDetailV2,
  type InstanceSpec,
  parseInstanceSpec,
  type SidecarContributionV2,
  type SidecarProviderV2,
  type VerifyCheckV2,
} from '@keyward/core';
import { buildImage, imageDefinitions, imageReference } from '@keyward/images';
import { createTokenizerProvider } from '@keyward/provider-tokenizer';
import { createThrowawayCertificates, type ThrowawayCertificates } from '@keyward/tokenizer/certificates';
import type Docker from 'dockerode';
import type { LocalProvider } from '../../src/index.js';
import { demoUpstreamHost } from '../../src/testing/index.js';
import { compositionTarget } from '../plan-fixtures.js';

export async function ensureImages(docker: Docker): Promise<void> {
  for (const definition of Object.values(imageDefinitions)) await buildImage(docker, definition);
}

export const demoUpstreamImage = imageReference(imageDefinitions.demoUpstream);

/** A throwaway CA and the demo upstream's server certificate (for api.demo.test). */
export function createUpstreamCertificates(): ThrowawayCertificates {
  return createThrowawayCertificates({ dnsNames: [demoUpstreamHost], validDays: 2 });
}

export interface TestCredential {
  name: string;
  secret: string;
  allowedHosts: string[];
}

export const tokenizerProvider = createTokenizerProvider();

export async function tokenizerPlan(options: {
  name: string;
  egress: 'proxy-only' | 'open';
  credentials: TestCredential[];
  caPem: string;
  stateDirectories?: string[];
}): Promise<DeploymentPlanV2> {
  const spec = parseInstanceSpec({
    name: options.name,
    target: 'local',
    agent: {
      image: imageReference(imageDefinitions.agentStandIn),
      port: 18789,
      skillsDirectory: '/home/node/.openclaw/skills',
      env: { AGENT_MODE: 'test' },
      ...(options.stateDirectories ? { stateDirectories: options.stateDirectories } : {}),
    },
    network: { egress: options.egress },
    sidecars: {
      tokenizer: {
        credentials: options.credentials,
        upstreamCaCertificates: options.caPem,
        // The demo upstream lives on a private container network.
        allowPrivateUpstreams: true,
      },
    },
  });
  return composePlanV2({
    spec,
    sidecars: { getSidecar: (id) => (id === 'tokenizer' ? tokenizerProvider : undefined) },
    target: compositionTarget,
  });
}

export const agentStandInImage = imageReference(imageDefinitions.agentStandIn);

/**
 * A core mock sidecar provider whose containers really run: the stand-in agent image (an HTTP
 * server with /health on $PORT) replaces the mock images, which CI cannot pull. Everything else
 * about the contribution (secrets, mounts, connections, exports) is the mock's own.
 */
export function runnable<TConfig, TChange>(
  provider: SidecarProviderV2<TConfig, TChange>,
): SidecarProviderV2<TConfig, TChange> {
  const adapt = (contribution: SidecarContributionV2): SidecarContributionV2 => ({
    ...contribution,
    containers: contribution.containers.map(({ command: _command, ...container }) => ({
      ...container,
      image: agentStandInImage,
      env: { ...container.env, PORT: String(container.ports?.[0]?.containerPort ?? 18789) },
      ...(container.readiness ? { readiness: { ...container.readiness, retries: 60 } } : {}),
    })),
  });
  return {
    ...provider,
    contribute: async (context, config) => adapt(await provider.contribute(context, config)),
    ...(provider.rotation
      ? {
          rotation: {
            ...provider.rotation,
            rotate: async (context, state, change) =>
              adapt(
                await (provider.rotation as NonNullable<typeof provider.rotation>).rotate(
                  context,
                  state,
                  change,
                ),
              ),
            ...(provider.rotation.refresh
              ? {
                  refresh: async (context, state) =>
                    adapt(
                      await (
                        (provider.rotation as NonNullable<typeof provider.rotation>).refresh as NonNullable<
                          NonNullable<typeof provider.rotation>['refresh']
                        >
                      )(context, state),
                    ),
                }
              : {}),
          },
        }
      : {}),
  };
}

export interface CheckReport {
  name: string;
  passed: boolean;
  evidence: string;
}

/** Runs self-test checks the way the API will: each check's exec through the target, then its judge. */
export async function runChecks(
  provider: LocalProvider,
  name: string,
  checks: readonly VerifyCheckV2[],
): Promise<CheckReport[]> {
  const reports: CheckReport[] = [];
  for (const check of checks) {
    const result = await provider.exec(name, check.exec);
    reports.push({ name: check.name, ...check.judge(result) });
  }
  return reports;
}

/** The target's own network checks of an instance, run. */
export async function targetChecks(
  provider: LocalProvider,
  detail: InstanceDetailV2,
): Promise<CheckReport[]> {
  return runChecks(provider, detail.name, await provider.verificationChecks(detail));
}

export { AGENT_CONTAINER_NAME };

/** A request through the tokenizer, made from INSIDE the agent container, using its own env. */
export const proxiedRequestScript = `
const http = require('node:http');
const key = process.env.CREDENTIAL_KEY;
const proxy = new URL(process.env.TOKENIZER_PROXY_URL);
const target = new URL(process.env.TARGET_URL);
const headers = { host: target.host };
if (key) {
  headers['proxy-tokenizer'] = process.env['TOKENIZER_CRED_' + key];
  if (process.env['TOKENIZER_AUTH_' + key]) headers['proxy-authorization'] = 'Bearer ' + process.env['TOKENIZER_AUTH_' + key];
}
const request = http.request({ host: proxy.hostname, port: proxy.port, path: target.href, headers }, (response) => {
  let body = '';
  response.on('data', (chunk) => { body += chunk; });
  response.on('end', () => console.log(JSON.stringify({ status: response.statusCode, body })));
});
request.on('error', (error) => console.log(JSON.stringify({ status: 0, body: error.code || error.message })));
request.end();
`;

export const tokenizerLookup = {
  getSidecar: (id: string) => (id === 'tokenizer' ? tokenizerProvider : undefined),
};

/** A tokenizer rotation composed the way the API does it, from what the target reads back. */
export function tokenizerRotation(
  provider: LocalProvider,
  name: string,
  spec: InstanceSpec,
  change: unknown,
) {
  return composeRotationV2({
    spec,
    providerId: 'tokenizer',
    change,
    sidecars: tokenizerLookup,
    target: compositionTarget,
    readState: (id) => provider.readSidecarState(name, id),
  });
}

/** The tokenizer's own self-test checks for an instance, from its stored metadata and exports. */
export async function tokenizerSelfTest(
  provider: LocalProvider,
  name: string,
  options: Record<string, unknown>,
) {
  const detail = await provider.get(name);
  const sidecar = detail.sidecars.find((entry) => entry.providerId === 'tokenizer');
  if (!sidecar || !tokenizerProvider.verification) throw new Error('no tokenizer in the instance');
  const checks = await tokenizerProvider.verification.checks(
    {
      instanceName: name,
      networkMode: detail.networkMode,
      metadata: sidecar.metadata,
      exports: sidecar.exports,
    },
    (tokenizerProvider.verification.optionsSchema?.parse(options) ?? options) as never,
  );
  return runChecks(provider, name, checks);
}
