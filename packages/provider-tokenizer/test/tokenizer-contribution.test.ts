import { isKeywardError } from '@keyward/core';
import { bearerDigest, openSecret, sealKeyFromOpenKey, tokenDigest } from '@keyward/tokenizer';
import { describe, expect, it } from 'vitest';
import { createTokenizerProvider, TOKENIZER_DEFAULT_IMAGE } from '../src/index.js';
import {
  createSeededRandomBytes,
  deploy,
  rawSecrets,
  secretByVariable,
  secretValue,
  skillOf,
  testContext,
  twoCredentials,
} from './helpers.js';

const pem =
  '-----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8wggE7AgEAAkEA\n-----END PRIVATE KEY-----\n';

describe('tokenizer contribution', () => {
  it('lists the digest of every sealed token it issued for the tokenizer, named after its credential, and nothing else', async () => {
    const contribution = await deploy();
    const list = contribution.files.find((file) => file.path === '/etc/keyward/tokenizer/allowed-tokens');
    expect(list).toMatchObject({ container: 'tokenizer', root: 'absolute', mode: 0o444 });
    const digests = (list?.content ?? '').split('\n').filter((line) => line.startsWith('sha256:'));
    expect(digests).toEqual([
      `sha256:${tokenDigest(secretByVariable(contribution, 'TOKENIZER_CRED_GITHUB'))} github`,
      `sha256:${tokenDigest(secretByVariable(contribution, 'TOKENIZER_CRED_STRIPE'))} stripe`,
    ]);
    expect(list?.content).not.toContain(secretByVariable(contribution, 'TOKENIZER_CRED_GITHUB'));
  });

  it('contributes a hardened tokenizer container with the proxy and admin listeners', async () => {
    const contribution = await deploy();
    expect(contribution.containers).toEqual([
      {
        name: 'tokenizer',
        image: TOKENIZER_DEFAULT_IMAGE,
        env: {
          LISTEN_ADDRESS: '0.0.0.0:4001',
          OPEN_KEY_FILE: '/run/keyward/tokenizer/open-key',
          ADMIN_LISTEN_ADDRESS: '0.0.0.0:4002',
          TOKENIZER_ALLOWED_TOKENS_FILE: '/etc/keyward/tokenizer/allowed-tokens',
        },
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
      },
    ]);
  });

  it('exports the agent proxy URL, the proxy endpoint and the seal key, and declares the agent connection', async () => {
    const contribution = await deploy();
    expect(contribution.exports).toEqual({
      proxyUrl: 'http://tokenizer:4001',
      proxy: { container: 'tokenizer', port: 4001 },
      sealKey: contribution.agentEnv['TOKENIZER_SEAL_KEY'],
    });
    expect(contribution.connections).toEqual([{ from: 'agent', to: 'tokenizer', port: 4001 }]);
    const open = await deploy(twoCredentials, testContext('open'));
    expect(open.exports?.['proxyUrl']).toBe('http://localhost:4001');
    expect(open.agentEnv['TOKENIZER_PROXY_URL']).toBe('http://localhost:4001');
  });

  it('seals Authorization and its default format into inject_hmac credentials too', async () => {
    const contribution = await deploy({
      credentials: [
        {
          name: 'signer',
          secret: 'hmac-key-0001',
          allowedHosts: ['hooks.example.com'],
          processor: { type: 'inject_hmac' },
        },
      ],
    });
    const opened = openSecret(
      secretByVariable(contribution, 'TOKENIZER_CRED_SIGNER'),
      secretValue(contribution, 'tokenizer-open-key'),
    );
    expect(opened.processor).toMatchObject({ type: 'inject_hmac', dst: 'Authorization', fmt: 'Bearer %x' });
  });

  it('gives the open key only to the tokenizer, as a file', async () => {
    const contribution = await deploy();
    const openKey = contribution.secrets.find((secret) => secret.name === 'tokenizer-open-key');
    expect(openKey).toMatchObject({
      visibleTo: ['tokenizer'],
      delivery: { type: 'file', path: '/run/keyward/tokenizer/open-key' },
    });
    expect(openKey?.agentSafe).toBeUndefined();
    expect(openKey?.value).toMatch(/^[0-9a-f]{64}$/);
    expect(contribution.agentEnv['TOKENIZER_SEAL_KEY']).toBe(sealKeyFromOpenKey(openKey?.value as string));
  });

  it('draws the open key and the proxy passwords from the context randomness', async () => {
    const random = createSeededRandomBytes(11);
    const expectedOpenKey = Buffer.from(random(32)).toString('hex');
    const expectedGithubPassword = Buffer.from(random(32)).toString('hex');
    const contribution = await deploy();
    expect(secretValue(contribution, 'tokenizer-open-key')).toBe(expectedOpenKey);
    expect(secretByVariable(contribution, 'TOKENIZER_AUTH_GITHUB')).toBe(expectedGithubPassword);
    const again = await deploy();
    expect(secretValue(again, 'tokenizer-open-key')).toBe(expectedOpenKey);
    // Another seed is another instance: a fresh key.
    const other = await deploy(twoCredentials, testContext('proxy-only', 99));
    expect(secretValue(other, 'tokenizer-open-key')).not.toBe(expectedOpenKey);
  });

  it('hands the agent sealed tokens and proxy passwords as agent-safe env secrets', async () => {
    const contribution = await deploy();
    const agentSecrets = contribution.secrets.filter((secret) => secret.visibleTo.includes('agent'));
    expect(
      agentSecrets.map((secret) => [secret.name, secret.delivery, secret.agentSafe, secret.visibleTo]),
    ).toEqual([
      ['tokenizer-cred-github', { type: 'env', variable: 'TOKENIZER_CRED_GITHUB' }, true, ['agent']],
      ['tokenizer-auth-github', { type: 'env', variable: 'TOKENIZER_AUTH_GITHUB' }, true, ['agent']],
      ['tokenizer-cred-stripe', { type: 'env', variable: 'TOKENIZER_CRED_STRIPE' }, true, ['agent']],
      ['tokenizer-auth-stripe', { type: 'env', variable: 'TOKENIZER_AUTH_STRIPE' }, true, ['agent']],
    ]);
    expect(contribution.agentEnv).toEqual({
      TOKENIZER_PROXY_URL: 'http://tokenizer:4001',
      TOKENIZER_SEAL_KEY: expect.stringMatching(/^[0-9a-f]{64}$/),
      TOKENIZER_HOSTS_GITHUB: 'api.github.com',
      TOKENIZER_HOSTS_STRIPE: 'api.stripe.com,files.stripe.com:8443',
    });
  });

  it('seals each credential so the tokenizer library opens it to the right Secret', async () => {
    const contribution = await deploy();
    const openKey = secretValue(contribution, 'tokenizer-open-key');
    const github = openSecret(secretByVariable(contribution, 'TOKENIZER_CRED_GITHUB'), openKey);
    // The header is sealed even when the user left the defaults: the agent cannot move it.
    expect(github).toEqual({
      processor: { type: 'inject', token: rawSecrets.github, dst: 'Authorization', fmt: 'Bearer %s' },
      auth: { type: 'bearer', digest: bearerDigest(secretByVariable(contribution, 'TOKENIZER_AUTH_GITHUB')) },
      allowedHosts: ['api.github.com'],
    });
    const stripe = openSecret(secretByVariable(contribution, 'TOKENIZER_CRED_STRIPE'), openKey);
    expect(stripe).toEqual({
      processor: { type: 'inject', token: rawSecrets.stripe, fmt: 'key=%s', dst: 'X-Api-Key' },
      auth: { type: 'bearer', digest: bearerDigest(secretByVariable(contribution, 'TOKENIZER_AUTH_STRIPE')) },
      allowedHosts: ['api.stripe.com', 'files.stripe.com:8443'],
    });
    // Distinct passwords per credential.
    expect(secretByVariable(contribution, 'TOKENIZER_AUTH_GITHUB')).not.toBe(
      secretByVariable(contribution, 'TOKENIZER_AUTH_STRIPE'),
    );
  });

  it.each([
    [
      'inject_hmac',
      { type: 'inject_hmac', dst: 'X-Signature', fmt: 'sha256=%x' },
      { type: 'inject_hmac', hash: 'sha256', dst: 'X-Signature', fmt: 'sha256=%x' },
      'key',
    ],
    [
      'inject_body',
      { type: 'inject_body', placeholder: '__K__' },
      { type: 'inject_body', placeholder: '__K__' },
      'token',
    ],
    ['oauth2', { type: 'oauth2' }, { type: 'oauth2' }, 'token'],
    ['oauth2_body', { type: 'oauth2_body' }, { type: 'oauth2_body' }, 'token'],
    [
      'sigv4',
      { type: 'sigv4', accessKeyId: 'AKIAIOSFODNN7EXAMPLE' },
      { type: 'sigv4', accessKey: 'AKIAIOSFODNN7EXAMPLE', noSwap: false },
      'secretKey',
    ],
    [
      'client_credentials',
      {
        type: 'client_credentials',
        clientId: 'client-1',
        tokenUrl: 'https://auth.example.com/token',
        scopes: 'a b',
      },
      {
        type: 'client_credentials',
        clientId: 'client-1',
        tokenUrl: 'https://auth.example.com/token',
        scopes: 'a b',
      },
      'clientSecret',
    ],
  ])(
    'maps processor %s with its parameters and puts the secret where it belongs',
    async (_type, processor, expected, secretField) => {
      const contribution = await deploy({
        credentials: [
          { name: 'api', secret: rawSecrets.openai, allowedHosts: ['api.example.com'], processor },
        ],
      });
      const opened = openSecret(
        secretByVariable(contribution, 'TOKENIZER_CRED_API'),
        secretValue(contribution, 'tokenizer-open-key'),
      );
      expect(opened.processor).toMatchObject(expected);
      const value = (opened.processor as unknown as Record<string, unknown>)[secretField];
      const text =
        value instanceof Uint8Array
          ? Buffer.from(value).toString('utf8')
          : typeof value === 'object' && value !== null
            ? (value as { accessToken: string }).accessToken
            : value;
      expect(text).toBe(rawSecrets.openai);
      const metadata = contribution.metadata['credentials'] as { processor?: unknown }[];
      expect(metadata[0]?.processor).toEqual(processor);
    },
  );

  it.each([
    ['jwt', { type: 'jwt', email: 'robot@example.iam.gserviceaccount.com', scopes: 'x' }],
    ['github_app', { type: 'github_app', appId: '12', installationId: '34' }],
  ])('seals the PEM key of processor %s as bytes', async (type, processor) => {
    const contribution = await deploy({
      credentials: [{ name: 'key', secret: pem, allowedHosts: ['api.example.com'], processor }],
    });
    const opened = openSecret(
      secretByVariable(contribution, 'TOKENIZER_CRED_KEY'),
      secretValue(contribution, 'tokenizer-open-key'),
    );
    expect(opened.processor.type).toBe(type);
    const privateKey = (opened.processor as { privateKey: Uint8Array }).privateKey;
    expect(Buffer.from(privateKey).toString('utf8')).toBe(pem);
  });

  it('writes SKILL.md into the agent skills folder', async () => {
    const contribution = await deploy();
    const skill = contribution.files.find((file) => file.container === 'agent');
    expect(skill).toMatchObject({ root: 'skills', path: 'tokenizer/SKILL.md', mode: 0o644 });
    expect(skillOf(contribution)).toContain('http://tokenizer:4001');
  });

  it('keeps metadata to names, hosts, header options, secret names and fingerprints', async () => {
    const contribution = await deploy();
    expect(contribution.metadata).toEqual({
      schemaVersion: 2,
      image: TOKENIZER_DEFAULT_IMAGE,
      port: 4001,
      adminPort: 4002,
      allowPrivateUpstreams: false,
      sealKey: contribution.agentEnv['TOKENIZER_SEAL_KEY'],
      openKeySecret: 'tokenizer-open-key',
      proxyUrl: 'http://tokenizer:4001',
      credentials: [
        {
          name: 'github',
          key: 'GITHUB',
          allowedHosts: ['api.github.com'],
          secretNames: { token: 'tokenizer-cred-github', auth: 'tokenizer-auth-github' },
          variables: {
            token: 'TOKENIZER_CRED_GITHUB',
            auth: 'TOKENIZER_AUTH_GITHUB',
            hosts: 'TOKENIZER_HOSTS_GITHUB',
          },
          tokenFingerprint: expect.stringMatching(/^sha256:[0-9a-f]{16}$/),
        },
        {
          name: 'stripe',
          key: 'STRIPE',
          allowedHosts: ['api.stripe.com', 'files.stripe.com:8443'],
          headerDst: 'X-Api-Key',
          headerFmt: 'key=%s',
          secretNames: { token: 'tokenizer-cred-stripe', auth: 'tokenizer-auth-stripe' },
          variables: {
            token: 'TOKENIZER_CRED_STRIPE',
            auth: 'TOKENIZER_AUTH_STRIPE',
            hosts: 'TOKENIZER_HOSTS_STRIPE',
          },
          tokenFingerprint: expect.stringMatching(/^sha256:[0-9a-f]{16}$/),
        },
      ],
      requests: [],
    });
  });

  it('names secrets of awkward credential names with distinct DNS labels', async () => {
    const contribution = await deploy({
      credentials: [
        { name: '_x_', secret: 'aaaaaaaa', allowedHosts: ['a.example.com'] },
        { name: 'x', secret: 'bbbbbbbb', allowedHosts: ['b.example.com'] },
        { name: 'a'.repeat(128), secret: 'cccccccc', allowedHosts: ['c.example.com'] },
        { name: 'my--api', secret: 'dddddddd', allowedHosts: ['d.example.com'] },
        { name: 'my-api', secret: 'eeeeeeee', allowedHosts: ['e.example.com'] },
      ],
    });
    const names = contribution.secrets.map((secret) => secret.name);
    expect(new Set(names).size).toBe(names.length);
    for (const name of names) expect(name).toMatch(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/);
    expect(names).toContain('tokenizer-cred-x');
    expect(names).toContain('tokenizer-cred-my-api');
    expect(contribution.agentEnv).toHaveProperty('TOKENIZER_HOSTS__X_', 'a.example.com');
  });

  it('refuses to deploy a credential without a secret, naming the field', async () => {
    const error = await deploy({
      credentials: [
        { name: 'github', secret: rawSecrets.github, allowedHosts: ['api.github.com'] },
        { name: 'stripe', allowedHosts: ['api.stripe.com'] },
      ],
    }).catch((caught: unknown) => caught);
    expect(isKeywardError(error, 'INVALID_PROVIDER_CONFIG')).toBe(true);
    expect((error as Error).message).toContain(
      'sidecars.tokenizer.credentials.1.secret: credential "stripe" has no secret; write its value',
    );
  });

  it('delivers an upstream CA bundle as a file and turns private upstreams on only when asked', async () => {
    const ca = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    const plain = await deploy();
    expect(plain.containers[0]?.env).not.toHaveProperty('TOKENIZER_UPSTREAM_CA_FILE');
    expect(plain.containers[0]?.env).not.toHaveProperty('TOKENIZER_ALLOW_PRIVATE_UPSTREAMS');
    expect(plain.warnings).toBeUndefined();

    const local = await deploy({
      ...twoCredentials,
      upstreamCaCertificates: ca,
      allowPrivateUpstreams: true,
    });
    expect(local.containers[0]?.env).toMatchObject({
      TOKENIZER_UPSTREAM_CA_FILE: '/etc/keyward/tokenizer/upstream-ca.pem',
      TOKENIZER_ALLOW_PRIVATE_UPSTREAMS: 'true',
    });
    expect(local.files).toContainEqual({
      container: 'tokenizer',
      root: 'absolute',
      path: '/etc/keyward/tokenizer/upstream-ca.pem',
      content: ca,
      mode: 0o444,
    });
    expect(local.warnings?.map((warning) => warning.code)).toEqual(['TOKENIZER_PRIVATE_UPSTREAMS']);
  });

  it('uses the configured image and ports, or the settings default image', async () => {
    const custom = await deploy({
      ...twoCredentials,
      image: 'ghcr.io/acme/tokenizer:1.2.3',
      port: 5001,
      adminPort: 5002,
    });
    expect(custom.containers[0]).toMatchObject({
      image: 'ghcr.io/acme/tokenizer:1.2.3',
      env: { LISTEN_ADDRESS: '0.0.0.0:5001', ADMIN_LISTEN_ADDRESS: '0.0.0.0:5002' },
      readiness: { port: 5002 },
    });
    expect(custom.agentEnv['TOKENIZER_PROXY_URL']).toBe('http://tokenizer:5001');

    const provider = createTokenizerProvider({ defaultImage: 'registry.example/tokenizer:9' });
    const contribution = await provider.contribute(
      testContext(),
      provider.configSchema.parse(twoCredentials),
    );
    expect(contribution.containers[0]?.image).toBe('registry.example/tokenizer:9');
  });

  it('warns when there are no credentials yet', async () => {
    const contribution = await deploy({ credentials: [] });
    expect(contribution.warnings?.map((warning) => warning.code)).toEqual(['TOKENIZER_NO_CREDENTIALS']);
    expect(contribution.secrets.map((secret) => secret.name)).toEqual(['tokenizer-open-key']);
  });

  it('redacts the config to everything but the secrets', () => {
    const provider = createTokenizerProvider();
    const redacted = provider.redactConfig(provider.configSchema.parse(twoCredentials));
    expect(redacted).toEqual({
      credentials: [
        { name: 'github', allowedHosts: ['api.github.com'] },
        {
          name: 'stripe',
          allowedHosts: ['api.stripe.com', 'files.stripe.com:8443'],
          headerDst: 'X-Api-Key',
          headerFmt: 'key=%s',
        },
      ],
      port: 4001,
      adminPort: 4002,
      allowPrivateUpstreams: false,
    });
    // A redacted config is still a valid config (the persisted spec re-parses).
    expect(provider.configSchema.safeParse(redacted).success).toBe(true);
  });
});
