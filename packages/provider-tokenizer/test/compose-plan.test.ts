import { composePlan, composeRotation, type NetworkMode, parseInstanceSpec } from '@keyward/core';
import {
  createMemoryTargetProvider,
  createSeededRandomBytes,
  testSidecarProvider,
} from '@keyward/core/testing';
import { openSecret } from '@keyward/tokenizer';
import { describe, expect, it } from 'vitest';
import { createTokenizerProvider } from '../src/index.js';
import { rawSecrets, twoCredentials } from './helpers.js';

const provider = createTokenizerProvider();
const sidecars = { getSidecar: (id: string) => (id === 'tokenizer' ? provider : undefined) };

function spec(mode: NetworkMode) {
  return parseInstanceSpec({
    name: 'demo',
    agent: { image: 'localhost/keyward-agent-standin:0.1.0' },
    network: { egress: mode },
    sidecars: { tokenizer: twoCredentials },
  });
}

testSidecarProvider({
  provider,
  validConfig: twoCredentials,
  invalidConfigs: [
    {
      label: '51 credentials',
      config: {
        credentials: Array.from({ length: 51 }, (_, index) => ({
          name: `c${index}`,
          secret: 'x',
          allowedHosts: ['a.com'],
        })),
      },
    },
    {
      label: 'host with scheme',
      config: { credentials: [{ name: 'a', secret: 'x', allowedHosts: ['https://a.com'] }] },
    },
    {
      label: 'headerFmt without %s',
      config: { credentials: [{ name: 'a', secret: 'x', allowedHosts: ['a.com'], headerFmt: 'Bearer' }] },
    },
    {
      label: 'duplicate sanitised names',
      config: {
        credentials: [
          { name: 'a-b', secret: 'x', allowedHosts: ['a.com'] },
          { name: 'a b', secret: 'y', allowedHosts: ['a.com'] },
        ],
      },
    },
    {
      label: 'bad headerDst',
      config: { credentials: [{ name: 'a', secret: 'x', allowedHosts: ['a.com'], headerDst: 'X Y' }] },
    },
    {
      label: 'unknown processor',
      config: {
        credentials: [{ name: 'a', secret: 'x', allowedHosts: ['a.com'], processor: { type: 'nope' } }],
      },
    },
  ],
  forbiddenValues: [rawSecrets.github, rawSecrets.stripe],
});

describe('composePlan with the tokenizer', () => {
  it.each([
    ['proxy-only', 'http://tokenizer:4001'],
    ['open', 'http://localhost:4001'],
  ] as const)('in %s mode the agent dials %s', async (mode, url) => {
    const plan = await composePlan({ spec: spec(mode), sidecars, randomBytes: createSeededRandomBytes(3) });
    const agent = plan.containers.find((container) => container.name === 'agent');
    const tokenizer = plan.containers.find((container) => container.name === 'tokenizer');
    expect(agent?.env['TOKENIZER_PROXY_URL']).toBe(url);
    expect(agent?.env['TOKENIZER_HOSTS_GITHUB']).toBe('api.github.com');
    expect(agent?.env).not.toHaveProperty('TOKENIZER_CRED_GITHUB');
    expect(agent?.secretMounts.map((mount) => mount.delivery)).toEqual([
      { type: 'env', variable: 'TOKENIZER_CRED_GITHUB' },
      { type: 'env', variable: 'TOKENIZER_AUTH_GITHUB' },
      { type: 'env', variable: 'TOKENIZER_CRED_STRIPE' },
      { type: 'env', variable: 'TOKENIZER_AUTH_STRIPE' },
    ]);
    const skill = agent?.files.find((file) => file.path === '/home/node/.openclaw/skills/tokenizer/SKILL.md');
    expect(skill?.content).toContain(`\`${url}\`, also in the environment variable`);
    expect(tokenizer).toMatchObject({
      role: 'sidecar',
      providerId: 'tokenizer',
      runtimeName: 'keyward-demo-tokenizer',
      egress: 'internet',
      security: {
        runAsUser: 65532,
        readOnlyRootFilesystem: true,
        dropAllCapabilities: true,
        noNewPrivileges: true,
      },
    });
    expect(plan.sidecars[0]?.agentEnvKeys).toEqual([
      'TOKENIZER_AUTH_GITHUB',
      'TOKENIZER_AUTH_STRIPE',
      'TOKENIZER_CRED_GITHUB',
      'TOKENIZER_CRED_STRIPE',
      'TOKENIZER_HOSTS_GITHUB',
      'TOKENIZER_HOSTS_STRIPE',
      'TOKENIZER_PROXY_URL',
      'TOKENIZER_SEAL_KEY',
    ]);
    expect(plan.network.mode).toBe(mode);
  });

  it('is reproducible for the same randomness, apart from the sealed boxes', async () => {
    const first = await composePlan({
      spec: spec('proxy-only'),
      sidecars,
      randomBytes: createSeededRandomBytes(3),
    });
    const second = await composePlan({
      spec: spec('proxy-only'),
      sidecars,
      randomBytes: createSeededRandomBytes(3),
    });
    const stable = (plan: typeof first) =>
      JSON.stringify({
        ...plan,
        secrets: plan.secrets.map((secret) =>
          secret.name.startsWith('tokenizer-cred-') ? secret.name : secret,
        ),
        // The allow-list holds digests of the sealed boxes.
        containers: plan.containers.map((container) => ({
          ...container,
          files: container.files.map((file) =>
            file.path === '/etc/keyward/tokenizer/allowed-tokens'
              ? { ...file, content: file.content.replace(/sha256:[0-9a-f]{64}/g, 'sha256:<digest>') }
              : file,
          ),
        })),
        sidecars: plan.sidecars.map((sidecar) => ({
          ...sidecar,
          metadata: { ...sidecar.metadata, credentials: null },
        })),
      });
    expect(stable(first)).toBe(stable(second));
  });

  it('rotates through a target: deploy, read state, compose the rotation, apply it', async () => {
    const target = createMemoryTargetProvider();
    const plan = await composePlan({
      spec: spec('proxy-only'),
      sidecars,
      randomBytes: createSeededRandomBytes(3),
    });
    await target.apply(plan);
    const before = target.inspect('demo');
    const current = await target.readSidecarState?.('demo', 'tokenizer');
    if (!current) throw new Error('memory target cannot read sidecar state');
    const request = await composeRotation({
      spec: spec('proxy-only'),
      provider: provider as never,
      current,
      change: {
        credentials: [
          { name: 'github', secret: '', allowedHosts: ['api.github.com'] },
          { name: 'openai', secret: rawSecrets.openai, allowedHosts: ['api.openai.com'] },
        ],
      },
      randomBytes: createSeededRandomBytes(9),
    });
    await target.rotateSecrets?.('demo', request);
    const after = target.inspect('demo');
    const agent = after?.containers.find((container) => container.name === 'agent');
    expect(agent?.env['TOKENIZER_HOSTS_OPENAI']).toBe('api.openai.com');
    expect(agent?.env).not.toHaveProperty('TOKENIZER_HOSTS_STRIPE');
    expect(agent?.secretMounts.map((mount) => mount.secret).sort()).toEqual([
      'tokenizer-auth-github',
      'tokenizer-auth-openai',
      'tokenizer-cred-github',
      'tokenizer-cred-openai',
    ]);
    const value = (plan: typeof before, name: string) =>
      plan?.secrets.find((secret) => secret.name === name)?.value;
    expect(value(after, 'tokenizer-cred-github')).toBe(value(before, 'tokenizer-cred-github'));
    expect(value(after, 'tokenizer-open-key')).toBe(value(before, 'tokenizer-open-key'));
    const openai = openSecret(
      value(after, 'tokenizer-cred-openai') as string,
      value(after, 'tokenizer-open-key') as string,
    );
    expect(openai.processor).toEqual({ type: 'inject', token: rawSecrets.openai });
    const skill = agent?.files.find((file) => file.path.endsWith('tokenizer/SKILL.md'))?.content ?? '';
    expect(skill).toContain('### github');
    expect(skill).toContain('### openai');
    expect(skill).not.toContain('stripe');
    // The persisted spec follows the change, without secrets.
    expect(JSON.stringify(request.redactedSpec)).toContain('api.openai.com');
    expect(JSON.stringify(request.redactedSpec)).not.toContain(rawSecrets.openai);
  });
});
