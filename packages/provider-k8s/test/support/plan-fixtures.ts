import {
  type AnySidecarProviderV2,
  composePlanV2,
  type DeploymentPlanV2,
  parseInstanceSpec,
  type SidecarContributionV2,
  type SidecarProviderV2,
  type TargetForComposition,
} from '@keyward/core';
import { createTokenizerProvider } from '@keyward/provider-tokenizer';
import * as z from 'zod';

/**
 * Deterministic bytes so plans, and the snapshots of what we render, do not change between
 * runs. Each call continues the sequence: two keys of one plan must differ, as real ones do.
 */
export function sequenceBytes(): (length: number) => Uint8Array {
  let offset = 0;
  return (length) => {
    const bytes = Uint8Array.from({ length }, (_, index) => ((offset + index) * 7 + 3) % 251);
    offset += length;
    return bytes;
  };
}

export const rawCredentials = {
  github: 'ghp_raw_github_credential_0123456789',
  stripe: 'sk_live_raw_stripe_credential_987654',
  provider: 'sk-raw-llm-provider-key-5555555555',
};
export const openKeyValue = 'open-key-0f1e2d3c4b5a69788796a5b4c3d2e1f0';

interface ProxyConfig {
  credentials: { name: string; secret: string }[];
}

/**
 * A v2 credential proxy shaped like the tokenizer: its own container with the open key (a
 * file only it mounts), sealed tokens for the agent (env, agent-safe), a skill file for the
 * agent, a config file for itself, and it answers other sidecars' `sealed-credential` requests.
 * The "sealed" values are derived from the raw ones so tests can tell them apart.
 */
export const proxySidecar: SidecarProviderV2<ProxyConfig, ProxyConfig> = {
  specificationVersion: 'v2',
  id: 'proxy',
  configSchema: z.object({
    credentials: z.array(z.object({ name: z.string(), secret: z.string() })),
  }) as unknown as z.ZodType<ProxyConfig>,
  capabilities: { networkModes: ['proxy-only', 'open'] },
  answers: { 'sealed-credential': z.object({ secret: z.string() }) },
  redactConfig: (config) => ({
    credentials: config.credentials.map(({ name }) => ({ name, secret: '(set)' })),
  }),
  contribute(context, config): SidecarContributionV2 {
    const address = context.addressOf('agent', 'proxy', 4001);
    return {
      containers: [
        {
          name: 'proxy',
          image: 'localhost/keyward-tokenizer:0.1.0',
          env: { LISTEN_ADDRESS: '0.0.0.0:4001', OPEN_KEY_FILE: '/run/keyward/proxy/open-key' },
          ports: [
            { name: 'proxy', containerPort: 4001, protocol: 'tcp' },
            { name: 'admin', containerPort: 4002, protocol: 'tcp' },
          ],
          readiness: { type: 'http', port: 4002, path: '/health', timeoutSeconds: 2, retries: 15 },
          security: {
            runAsUser: 65532,
            runAsGroup: 65532,
            readOnlyRootFilesystem: true,
            dropAllCapabilities: true,
            noNewPrivileges: true,
          },
          tmpfs: ['/tmp'],
          egress: { type: 'internet' },
          resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '256Mi' } },
        },
      ],
      secrets: [
        {
          name: 'proxy-open-key',
          value: openKeyValue,
          visibleTo: ['proxy'],
          delivery: { type: 'file', path: '/run/keyward/proxy/open-key', mode: 0o440 },
        },
        ...config.credentials.map((credential) => ({
          name: `proxy-token-${credential.name}`,
          value: `sealed(${credential.secret.split('').reverse().join('')})`,
          visibleTo: ['agent'],
          delivery: { type: 'env' as const, variable: `PROXY_TOKEN_${credential.name.toUpperCase()}` },
          agentSafe: true,
        })),
        ...context.requests.map((request) => ({
          name: `proxy-for-${request.from}`,
          value: `sealed(${String(request.payload?.['secret'] ?? '')
            .split('')
            .reverse()
            .join('')})`,
          visibleTo: [request.container],
          delivery: { type: 'env' as const, variable: 'PROXY_TOKEN' },
          forRequest: request.id,
        })),
      ],
      files: [
        {
          container: 'agent',
          root: 'skills',
          path: 'proxy/SKILL.md',
          content: `# Proxy\nSend requests through http://${address}.\n`,
        },
        {
          container: 'proxy',
          root: 'absolute',
          path: '/etc/keyward/proxy/allowed-tokens',
          content: config.credentials.map((credential) => `sha256:${credential.name}\n`).join(''),
          mode: 0o444,
        },
      ],
      agentEnv: { PROXY_URL: `http://${address}` },
      connections: [{ from: 'agent', to: 'proxy', port: 4001 }],
      exports: { proxyUrl: `http://${address}` },
      metadata: { credentials: config.credentials.map((credential) => credential.name) },
    };
  },
  rotation: {
    changeSchema: z.object({
      credentials: z.array(z.object({ name: z.string(), secret: z.string() })),
    }) as unknown as z.ZodType<ProxyConfig>,
    rotate(context, current, change) {
      const contribution = proxySidecar.contribute(context, change) as SidecarContributionV2;
      // Answers to earlier requests are kept (a rotation replays no payload).
      for (const request of current.requests ?? []) {
        const value = current.secrets[`proxy-for-${request.from}`];
        if (value === undefined) continue;
        contribution.secrets.push({
          name: `proxy-for-${request.from}`,
          value,
          visibleTo: [request.container],
          delivery: { type: 'env', variable: 'PROXY_TOKEN' },
          forRequest: request.id,
        });
      }
      return contribution;
    },
    nextRedactedConfig: (_saved, change) => ({
      credentials: change.credentials.map(({ name }) => ({ name, secret: '(set)' })),
    }),
  },
};

/** An LLM gateway shaped like LiteLLM: requires the proxy, asks it to seal its provider key. */
export const gatewaySidecar: SidecarProviderV2<{ providerKey: string }> = {
  specificationVersion: 'v2',
  id: 'gateway',
  configSchema: z.object({ providerKey: z.string() }),
  capabilities: { networkModes: ['proxy-only', 'open'] },
  requires: [{ provider: 'proxy' }],
  request: (_context, config) => [
    {
      id: 'provider-key',
      provider: 'proxy',
      kind: 'sealed-credential',
      container: 'gateway',
      payload: { secret: config.providerKey },
    },
  ],
  redactConfig: () => ({ providerKey: '(set)' }),
  contribute(context): SidecarContributionV2 {
    return {
      containers: [
        {
          name: 'gateway',
          image: 'localhost/keyward-litellm:0.1.0',
          env: { HTTPS_PROXY: `http://${context.addressOf('gateway', 'proxy', 4001)}` },
          ports: [{ name: 'http', containerPort: 4000, protocol: 'tcp' }],
          readiness: { type: 'tcp', port: 4000 },
          egress: { type: 'none' },
        },
      ],
      secrets: [],
      files: [],
      agentEnv: { LLM_BASE_URL: `http://${context.addressOf('agent', 'gateway', 4000)}` },
      connections: [
        { from: 'agent', to: 'gateway', port: 4000 },
        { from: 'gateway', to: 'proxy', port: 4001 },
      ],
      metadata: {},
    };
  },
};

export const fixtureSidecars = new Map<string, AnySidecarProviderV2>([
  ['proxy', proxySidecar],
  ['gateway', gatewaySidecar],
]);

export interface FixturePlanOptions {
  name?: string;
  mode?: 'proxy-only' | 'open';
  targetOptions?: Record<string, unknown>;
  gateway?: boolean;
  credentials?: { name: string; secret: string }[];
  stateDirectories?: string[];
}

export function fixtureSpec(options: FixturePlanOptions = {}) {
  return parseInstanceSpec({
    name: options.name ?? 'snap',
    target: 'k8s',
    agent: {
      image: 'localhost/keyward-agent-standin:0.1.0',
      port: 18789,
      env: { AGENT_MODE: 'test' },
      skillsDirectory: '/home/agent/.agent/skills',
      stateDirectories: options.stateDirectories ?? ['/home/agent/.agent'],
    },
    targetOptions: options.targetOptions ?? { egressServiceIP: '10.0.0.50' },
    network: { egress: options.mode ?? 'proxy-only' },
    sidecars: {
      proxy: {
        credentials: options.credentials ?? [
          { name: 'github', secret: rawCredentials.github },
          { name: 'stripe', secret: rawCredentials.stripe },
        ],
      },
      ...(options.gateway === false ? {} : { gateway: { providerKey: rawCredentials.provider } }),
    },
  });
}

export function fixturePlan(
  target: TargetForComposition,
  options: FixturePlanOptions = {},
): Promise<DeploymentPlanV2> {
  return composePlanV2({
    spec: fixtureSpec(options),
    sidecars: { getSidecar: (id) => fixtureSidecars.get(id) },
    target,
    randomBytes: sequenceBytes(),
  });
}

/** The real tokenizer provider (v2): the shape keyward deploys today. */
export function tokenizerPlan(
  target: TargetForComposition,
  mode: 'proxy-only' | 'open',
  name = 'tok',
  targetOptions: Record<string, unknown> = { egressServiceIP: '10.0.0.60' },
): Promise<DeploymentPlanV2> {
  const tokenizer = createTokenizerProvider();
  return composePlanV2({
    spec: parseInstanceSpec({
      name,
      target: 'k8s',
      agent: {
        image: 'localhost/keyward-agent-standin:0.1.0',
        port: 18789,
        skillsDirectory: '/home/agent/skills',
      },
      targetOptions,
      network: { egress: mode },
      sidecars: {
        tokenizer: {
          credentials: [
            { name: 'github', secret: rawCredentials.github, allowedHosts: ['api.github.com'] },
            { name: 'stripe', secret: rawCredentials.stripe, allowedHosts: ['api.stripe.com'] },
          ],
        },
      },
    }),
    sidecars: { getSidecar: (id) => (id === 'tokenizer' ? tokenizer : undefined) },
    target,
    randomBytes: sequenceBytes(),
  });
}
