import type {
  NetworkMode,
  ReceivedRequestV2,
  SidecarContextV2,
  SidecarContributionV2,
  SidecarStateV2,
  TargetForComposition,
} from '@keyward/core';
import { createSeededRandomBytes } from '@keyward/core/testing';
import * as z from 'zod';
import { createTokenizerProvider } from '../src/index.js';

export { createSeededRandomBytes };

export const rawSecrets = {
  github: 'ghp_RAWgithubSECRET0123456789',
  stripe: 'sk_live_RAWstripeSECRET987654',
  openai: 'sk-RAWopenaiSECRET-abcdefghij',
  anthropic: 'sk-ant-RAWanthropicSECRET-0042',
};

/** How the podman target addresses containers: a DNS name per container, one namespace in `open`. */
function localAddress(mode: NetworkMode, to: string, port: number): string {
  return mode === 'proxy-only' ? `${to}:${port}` : `localhost:${port}`;
}

/**
 * A stand-in for the local target, as far as composition sees it (id, capabilities, options,
 * addresses); core's v2 memory target is still being ported.
 */
export function stubTarget(): TargetForComposition {
  return {
    id: 'local',
    capabilities: {
      networkModes: ['proxy-only', 'open'],
      egress: ['none', 'internet', 'destinations'],
      rotation: true,
      render: false,
      exec: true,
      logsFollow: false,
    },
    configSchema: z.object({}).passthrough(),
    addressOf: ({ networkMode, to, port }) => localAddress(networkMode, to.container, port),
  };
}

export function testContext(
  mode: NetworkMode = 'proxy-only',
  seed = 11,
  requests: ReceivedRequestV2[] = [],
): SidecarContextV2 {
  return {
    instanceName: 'demo',
    networkMode: mode,
    target: 'local',
    addressOf: (_from, to, port) => localAddress(mode, to, port),
    agent: { port: 18789, skillsDirectory: '/home/node/.openclaw/skills' },
    randomBytes: createSeededRandomBytes(seed),
    dependencies: {},
    requests,
  };
}

export const twoCredentials = {
  credentials: [
    { name: 'github', secret: rawSecrets.github, allowedHosts: ['api.github.com'] },
    {
      name: 'stripe',
      secret: rawSecrets.stripe,
      allowedHosts: ['api.stripe.com', 'files.stripe.com:8443'],
      headerDst: 'X-Api-Key',
      headerFmt: 'key=%s',
    },
  ],
};

/** What LiteLLM will send: its OpenAI key, sealed for its own container. */
export function litellmRequest(overrides: Record<string, unknown> = {}): ReceivedRequestV2 {
  return {
    id: 'openai-key',
    provider: 'tokenizer',
    kind: 'sealed-credential',
    container: 'litellm',
    from: 'litellm',
    payload: {
      name: 'openai',
      secret: rawSecrets.openai,
      allowedHosts: ['api.openai.com'],
      tokenVariable: 'OPENAI_SEALED_TOKEN',
      authVariable: 'OPENAI_PROXY_PASSWORD',
      ...overrides,
    },
  };
}

export async function deploy(
  config: unknown = twoCredentials,
  context: SidecarContextV2 = testContext(),
): Promise<SidecarContributionV2> {
  const provider = createTokenizerProvider();
  return provider.contribute(context, provider.configSchema.parse(config));
}

/** What a target hands back for a rotation: the metadata, exports and every secret value by name. */
export function stateOf(contribution: SidecarContributionV2): SidecarStateV2 {
  return {
    metadata: structuredClone(contribution.metadata),
    exports: structuredClone(contribution.exports ?? {}),
    secrets: Object.fromEntries(contribution.secrets.map((secret) => [secret.name, secret.value])),
  };
}

export function secretValue(contribution: SidecarContributionV2, name: string): string {
  const secret = contribution.secrets.find((candidate) => candidate.name === name);
  if (!secret)
    throw new Error(`no secret ${name} in ${contribution.secrets.map((item) => item.name).join(', ')}`);
  return secret.value;
}

export function secretByVariable(contribution: SidecarContributionV2, variable: string): string {
  const secret = contribution.secrets.find(
    (candidate) => candidate.delivery.type === 'env' && candidate.delivery.variable === variable,
  );
  if (!secret) throw new Error(`no secret delivered as ${variable}`);
  return secret.value;
}

export function skillOf(contribution: SidecarContributionV2): string {
  const file = contribution.files.find((candidate) => candidate.path === 'tokenizer/SKILL.md');
  if (!file) throw new Error('no SKILL.md');
  return file.content;
}
