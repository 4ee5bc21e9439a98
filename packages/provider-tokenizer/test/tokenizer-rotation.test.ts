import { isKeywardError, type SidecarStateV2 } from '@keyward/core';
import { bearerDigest, openSecret, sealSecret, tokenDigest } from '@keyward/tokenizer';
import { describe, expect, it } from 'vitest';
import { createTokenizerProvider } from '../src/index.js';
import type { TokenizerChangeInput } from '../src/tokenizer-config.js';
import {
  deploy,
  rawSecrets,
  secretByVariable,
  secretValue,
  skillOf,
  stateOf,
  testContext,
  twoCredentials,
} from './helpers.js';

const provider = createTokenizerProvider();

async function rotate(current: SidecarStateV2, change: TokenizerChangeInput, seed = 23) {
  return provider.rotation.rotate(
    testContext('proxy-only', seed),
    current,
    provider.rotation.changeSchema.parse(change),
  );
}

async function rotationError(current: SidecarStateV2, change: TokenizerChangeInput) {
  return rotate(current, change).then(
    () => {
      throw new Error('rotation succeeded but should have failed');
    },
    (error: unknown) => error,
  );
}

const keepGithubAddOpenai: TokenizerChangeInput = {
  credentials: [
    { name: 'github', secret: '', allowedHosts: ['api.github.com'] },
    {
      name: 'openai',
      secret: rawSecrets.openai,
      allowedHosts: ['api.openai.com'],
      processor: { type: 'oauth2' },
    },
  ],
};

describe('tokenizer rotation', () => {
  it('keeps a kept credential byte for byte, adds a new one with the same open key, removes the rest', async () => {
    const before = await deploy();
    const after = await rotate(stateOf(before), keepGithubAddOpenai);

    // Kept: sealed token, password and hosts untouched.
    for (const variable of ['TOKENIZER_CRED_GITHUB', 'TOKENIZER_AUTH_GITHUB']) {
      expect(secretByVariable(after, variable)).toBe(secretByVariable(before, variable));
    }
    expect(after.agentEnv['TOKENIZER_HOSTS_GITHUB']).toBe(before.agentEnv['TOKENIZER_HOSTS_GITHUB']);
    // Same key pair.
    expect(secretValue(after, 'tokenizer-open-key')).toBe(secretValue(before, 'tokenizer-open-key'));
    expect(after.agentEnv['TOKENIZER_SEAL_KEY']).toBe(before.agentEnv['TOKENIZER_SEAL_KEY']);

    // New: sealed with that same key, with its own password.
    const openKey = secretValue(before, 'tokenizer-open-key');
    const openai = openSecret(secretByVariable(after, 'TOKENIZER_CRED_OPENAI'), openKey);
    expect(openai).toEqual({
      processor: { type: 'oauth2', token: { accessToken: rawSecrets.openai } },
      auth: { type: 'bearer', digest: bearerDigest(secretByVariable(after, 'TOKENIZER_AUTH_OPENAI')) },
      allowedHosts: ['api.openai.com'],
    });

    // The tokenizer's allow-list: the kept and the new token; the removed one's copies stop working.
    const list = after.files.find((file) => file.path === '/etc/keyward/tokenizer/allowed-tokens')?.content;
    expect(list?.split('\n').filter((line) => line.startsWith('sha256:'))).toEqual([
      `sha256:${tokenDigest(secretByVariable(before, 'TOKENIZER_CRED_GITHUB'))} github`,
      `sha256:${tokenDigest(secretByVariable(after, 'TOKENIZER_CRED_OPENAI'))} openai`,
    ]);

    // Removed: gone from secrets, env, metadata and the skill.
    expect(after.secrets.map((secret) => secret.name)).toEqual([
      'tokenizer-open-key',
      'tokenizer-cred-github',
      'tokenizer-auth-github',
      'tokenizer-cred-openai',
      'tokenizer-auth-openai',
    ]);
    expect(Object.keys(after.agentEnv).sort()).toEqual([
      'TOKENIZER_HOSTS_GITHUB',
      'TOKENIZER_HOSTS_OPENAI',
      'TOKENIZER_PROXY_URL',
      'TOKENIZER_SEAL_KEY',
    ]);
    expect(JSON.stringify(after.metadata)).not.toContain('stripe');
    const skill = skillOf(after);
    expect(skill).not.toMatch(/stripe/i);
    // The skill lists kept credentials too (the seed installer's local path lost them).
    expect(skill).toContain('### github');
    expect(skill).toContain('$TOKENIZER_CRED_GITHUB');
    expect(skill).toContain('### openai');
  });

  it('lets kept credentials leave hosts out, and matches them by sanitised name', async () => {
    const before = await deploy();
    const after = await rotate(stateOf(before), {
      credentials: [{ name: 'GITHUB', secret: '' }, { name: 'Stripe' }],
    });
    expect(secretByVariable(after, 'TOKENIZER_CRED_GITHUB')).toBe(
      secretByVariable(before, 'TOKENIZER_CRED_GITHUB'),
    );
    expect(secretByVariable(after, 'TOKENIZER_CRED_STRIPE')).toBe(
      secretByVariable(before, 'TOKENIZER_CRED_STRIPE'),
    );
    expect(after.agentEnv['TOKENIZER_HOSTS_STRIPE']).toBe('api.stripe.com,files.stripe.com:8443');
    // Header options of the kept credential survive in metadata and the skill.
    const stripe = (after.metadata['credentials'] as Record<string, unknown>[])[1];
    expect(stripe).toMatchObject({ headerDst: 'X-Api-Key', headerFmt: 'key=%s' });
    expect(skillOf(after)).toContain('`X-Api-Key: key=<credential>`');
  });

  it('replaces a credential given with a new secret: new token and password, same env names', async () => {
    const before = await deploy();
    const after = await rotate(stateOf(before), {
      credentials: [
        { name: 'github', secret: 'ghp_NEWsecretVALUE', allowedHosts: ['api.github.com'] },
        { name: 'stripe', secret: '' },
      ],
    });
    expect(secretByVariable(after, 'TOKENIZER_CRED_GITHUB')).not.toBe(
      secretByVariable(before, 'TOKENIZER_CRED_GITHUB'),
    );
    expect(secretByVariable(after, 'TOKENIZER_AUTH_GITHUB')).not.toBe(
      secretByVariable(before, 'TOKENIZER_AUTH_GITHUB'),
    );
    const opened = openSecret(
      secretByVariable(after, 'TOKENIZER_CRED_GITHUB'),
      secretValue(before, 'tokenizer-open-key'),
    );
    expect(opened.processor).toEqual({
      type: 'inject',
      token: 'ghp_NEWsecretVALUE',
      dst: 'Authorization',
      fmt: 'Bearer %s',
    });
  });

  it('removes every credential with an empty list', async () => {
    const after = await rotate(stateOf(await deploy()), { credentials: [] });
    expect(after.secrets.map((secret) => secret.name)).toEqual(['tokenizer-open-key']);
    expect(Object.keys(after.agentEnv).sort()).toEqual(['TOKENIZER_PROXY_URL', 'TOKENIZER_SEAL_KEY']);
    expect(skillOf(after)).toContain('No credentials are configured yet.');
  });

  it('rebuilds the container from metadata: image, ports, CA bundle and private-upstream switch', async () => {
    const ca = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    const before = await deploy({
      ...twoCredentials,
      image: 'localhost/custom:1',
      port: 5101,
      adminPort: 5102,
      upstreamCaCertificates: ca,
      allowPrivateUpstreams: true,
    });
    const after = await rotate(stateOf(before), { credentials: [{ name: 'github', secret: '' }] });
    expect(after.containers).toEqual(before.containers);
    const caFile = (contribution: typeof before) =>
      contribution.files.find((file) => file.path === '/etc/keyward/tokenizer/upstream-ca.pem');
    expect(caFile(after)).toMatchObject({ container: 'tokenizer', content: ca });
    expect(caFile(after)).toEqual(caFile(before));
    expect(after.agentEnv['TOKENIZER_PROXY_URL']).toBe('http://tokenizer:5101');
  });

  it('fails with OPEN_KEY_MISSING when credentials are kept but the open key is gone', async () => {
    const current = stateOf(await deploy());
    delete current.secrets['tokenizer-open-key'];
    const error = await rotationError(current, keepGithubAddOpenai);
    expect(isKeywardError(error, 'OPEN_KEY_MISSING')).toBe(true);
    expect((error as Error).message).toContain(
      'Cannot keep "github": the target no longer holds the open key',
    );
    expect((error as Error).message).toContain("Give every credential's secret again");
  });

  it('fails with OPEN_KEY_MISSING when the open key does not match the seal key', async () => {
    const current = stateOf(await deploy());
    current.secrets['tokenizer-open-key'] = secretValue(
      await deploy(twoCredentials, testContext('proxy-only', 5)),
      'tokenizer-open-key',
    );
    const error = await rotationError(current, keepGithubAddOpenai);
    expect(isKeywardError(error, 'OPEN_KEY_MISSING')).toBe(true);
    expect((error as Error).message).toContain('does not match the seal key');
  });

  it('mints a new open key only when nothing is kept', async () => {
    const before = await deploy();
    const current = stateOf(before);
    delete current.secrets['tokenizer-open-key'];
    const after = await rotate(current, {
      credentials: [{ name: 'github', secret: 'ghp_again', allowedHosts: ['api.github.com'] }],
    });
    const newKey = secretValue(after, 'tokenizer-open-key');
    expect(newKey).not.toBe(secretValue(before, 'tokenizer-open-key'));
    expect(after.agentEnv['TOKENIZER_SEAL_KEY']).not.toBe(before.agentEnv['TOKENIZER_SEAL_KEY']);
    expect(openSecret(secretByVariable(after, 'TOKENIZER_CRED_GITHUB'), newKey).processor).toEqual({
      type: 'inject',
      token: 'ghp_again',
      dst: 'Authorization',
      fmt: 'Bearer %s',
    });
  });

  it('mints a fresh open key when nothing is kept, so copies of old tokens stop working', async () => {
    const before = await deploy();
    const after = await rotate(stateOf(before), {
      credentials: [{ name: 'new', secret: 'value-123456', allowedHosts: ['api.example.com'] }],
    });
    const newKey = secretValue(after, 'tokenizer-open-key');
    expect(newKey).not.toBe(secretValue(before, 'tokenizer-open-key'));
    expect(() => openSecret(secretByVariable(before, 'TOKENIZER_CRED_GITHUB'), newKey)).toThrow();
  });

  it('names the missing credential when a kept name does not exist', async () => {
    const error = await rotationError(stateOf(await deploy()), {
      credentials: [{ name: 'gitlab', secret: '' }],
    });
    expect(isKeywardError(error, 'INVALID_INPUT')).toBe(true);
    expect((error as Error).message).toBe(
      'Credential "gitlab" has an empty secret, which means "keep", but the instance has no credential by that name (it has: "github", "stripe"). Give its secret to add it, or fix the name.',
    );
  });

  it('refuses to change the hosts or header options of a kept credential without its secret', async () => {
    const current = stateOf(await deploy());
    const hosts = await rotationError(current, {
      credentials: [{ name: 'github', secret: '', allowedHosts: ['api.github.com', 'uploads.github.com'] }],
    });
    expect(isKeywardError(hosts, 'INVALID_INPUT')).toBe(true);
    expect((hosts as Error).message).toContain(
      'Credential "github" is kept (empty secret) but its allowedHosts (sealed: api.github.com) differ',
    );
    expect((hosts as Error).message).toContain('give the secret again to change them');
    const header = await rotationError(current, {
      credentials: [{ name: 'stripe', secret: '', headerDst: 'Authorization' }],
    });
    expect((header as Error).message).toContain('headerDst (sealed: X-Api-Key)');
    // Repeating what is sealed is fine, in any order.
    await expect(
      rotate(current, {
        credentials: [
          {
            name: 'stripe',
            secret: '',
            allowedHosts: ['files.stripe.com:8443', 'api.stripe.com'],
            headerDst: 'X-Api-Key',
            headerFmt: 'key=%s',
          },
        ],
      }),
    ).resolves.toBeDefined();
  });

  it('accepts a repeated processor whatever the key order of the stored metadata', async () => {
    const before = await deploy({
      credentials: [
        {
          name: 'aws',
          secret: 'aws-secret-key-000',
          allowedHosts: ['s3.amazonaws.com'],
          processor: { type: 'sigv4', accessKeyId: 'AKIAEXAMPLE', noSwap: true },
        },
      ],
    });
    const current = stateOf(before);
    // A store that sorts JSON keys (jsonb, some annotation writers) reorders the processor.
    const stored = (current.metadata['credentials'] as { processor: Record<string, unknown> }[])[0];
    if (stored) stored.processor = { noSwap: true, type: 'sigv4', accessKeyId: 'AKIAEXAMPLE' };
    const after = await rotate(current, {
      credentials: [
        { name: 'aws', secret: '', processor: { type: 'sigv4', accessKeyId: 'AKIAEXAMPLE', noSwap: true } },
      ],
    });
    expect(secretByVariable(after, 'TOKENIZER_CRED_AWS')).toBe(
      secretByVariable(before, 'TOKENIZER_CRED_AWS'),
    );
    const changed = await rotationError(current, {
      credentials: [{ name: 'aws', secret: '', processor: { type: 'sigv4', accessKeyId: 'AKIAOTHER' } }],
    });
    expect((changed as Error).message).toContain('its processor differ');
  });

  it('fails when the target lost the sealed token of a kept credential', async () => {
    const current = stateOf(await deploy());
    delete current.secrets['tokenizer-auth-github'];
    const error = await rotationError(current, { credentials: [{ name: 'github', secret: '' }] });
    expect(isKeywardError(error, 'ROTATION_FAILED')).toBe(true);
    expect((error as Error).message).toContain(
      'no longer holds the sealed token or proxy password of credential "github"',
    );
  });

  it('fails when a kept sealed token is not the one keyward sealed', async () => {
    const current = stateOf(await deploy());
    current.secrets['tokenizer-cred-github'] = current.secrets['tokenizer-cred-stripe'];
    const error = await rotationError(current, { credentials: [{ name: 'github', secret: '' }] });
    expect(isKeywardError(error, 'ROTATION_FAILED')).toBe(true);
    expect((error as Error).message).toContain('fingerprint mismatch');
  });

  it('warns when it keeps a credential sealed before the header was pinned, and not otherwise', async () => {
    const before = await deploy();
    const current = stateOf(before);
    expect(
      (await rotate(current, { credentials: [{ name: 'github', secret: '' }] })).warnings,
    ).toBeUndefined();
    // What keyward 0.1.0 sealed: no dst/fmt.
    const legacy = sealSecret(
      {
        processor: { type: 'inject', token: rawSecrets.github },
        auth: { type: 'bearer', digest: bearerDigest(secretByVariable(before, 'TOKENIZER_AUTH_GITHUB')) },
        allowedHosts: ['api.github.com'],
      },
      before.agentEnv['TOKENIZER_SEAL_KEY'] as string,
    );
    current.secrets['tokenizer-cred-github'] = legacy;
    const github = (current.metadata['credentials'] as { tokenFingerprint: string }[])[0];
    if (github) github.tokenFingerprint = `sha256:${tokenDigest(legacy).slice(0, 16)}`;
    const after = await rotate(current, {
      credentials: [
        { name: 'github', secret: '' },
        { name: 'stripe', secret: '' },
      ],
    });
    expect(secretByVariable(after, 'TOKENIZER_CRED_GITHUB')).toBe(legacy);
    expect(after.warnings).toEqual([
      {
        code: 'TOKENIZER_HEADER_NOT_PINNED',
        message:
          'Credential "github" was sealed before keyward fixed the header at seal time: the agent can ask the proxy to write it into another header. Give its secret again to seal it with a fixed header.',
      },
    ]);
  });

  it('fails clearly when the stored metadata is unusable', async () => {
    const error = await rotationError(
      { metadata: { hello: 'world' }, exports: {}, secrets: {} },
      { credentials: [] },
    );
    expect(isKeywardError(error, 'ROTATION_FAILED')).toBe(true);
    expect((error as Error).message).toContain('redeploy the instance with every credential');
  });
});
