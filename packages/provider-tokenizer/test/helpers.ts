import type { SidecarContextV1, SidecarContributionV1, SidecarRotationStateV1 } from '@keyward/core';
import { createSeededRandomBytes } from '@keyward/core/testing';
import { createTokenizerProvider } from '../src/index.js';

export const rawSecrets = {
  github: 'ghp_RAWgithubSECRET0123456789',
  stripe: 'sk_live_RAWstripeSECRET987654',
  openai: 'sk-RAWopenaiSECRET-abcdefghij',
};

export function testContext(
  mode: SidecarContextV1['networkMode'] = 'proxy-only',
  seed = 11,
): SidecarContextV1 {
  return {
    instanceName: 'demo',
    networkMode: mode,
    addressOf: (container, port) =>
      mode === 'proxy-only' ? `http://${container}:${port}` : `http://localhost:${port}`,
    agent: { port: 18789, skillsDirectory: '/home/node/.openclaw/skills' },
    randomBytes: createSeededRandomBytes(seed),
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

export async function deploy(
  config: unknown = twoCredentials,
  context: SidecarContextV1 = testContext(),
): Promise<SidecarContributionV1> {
  const provider = createTokenizerProvider();
  return provider.contribute(context, provider.configSchema.parse(config));
}

/** What a target hands back for a rotation: the metadata and every secret value by name. */
export function stateOf(contribution: SidecarContributionV1): SidecarRotationStateV1 {
  return {
    metadata: structuredClone(contribution.metadata),
    secrets: Object.fromEntries(contribution.secrets.map((secret) => [secret.name, secret.value])),
  };
}

export function secretValue(contribution: SidecarContributionV1, name: string): string {
  const secret = contribution.secrets.find((candidate) => candidate.name === name);
  if (!secret)
    throw new Error(`no secret ${name} in ${contribution.secrets.map((item) => item.name).join(', ')}`);
  return secret.value;
}

export function secretByVariable(contribution: SidecarContributionV1, variable: string): string {
  const secret = contribution.secrets.find(
    (candidate) => candidate.delivery.type === 'env' && candidate.delivery.variable === variable,
  );
  if (!secret) throw new Error(`no secret delivered as ${variable}`);
  return secret.value;
}

export function skillOf(contribution: SidecarContributionV1): string {
  const file = contribution.files.find((candidate) => candidate.path === 'tokenizer/SKILL.md');
  if (!file) throw new Error('no SKILL.md');
  return file.content;
}
