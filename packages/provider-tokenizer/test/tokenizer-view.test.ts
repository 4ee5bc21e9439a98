import { describe, expect, it } from 'vitest';
import { createTokenizerProvider, sealedCredentialRequestSchema } from '../src/index.js';
import { nextRedactedTokenizerConfig } from '../src/tokenizer-view.js';
import { deploy, litellmRequest, rawSecrets, testContext, twoCredentials } from './helpers.js';

const provider = createTokenizerProvider();

describe('the tokenizer view (GET /api/instances/:id/tokenizer)', () => {
  it('is byte for byte the body apps/api answered before spec v2, never a value', async () => {
    const contribution = await deploy(twoCredentials, testContext('proxy-only', 11, [litellmRequest()]));
    const view = provider.view.build({
      metadata: contribution.metadata,
      exports: contribution.exports ?? {},
    });
    expect(JSON.stringify(view)).toBe(
      '{"enabled":true,"credentials":[{"name":"github","allowedHosts":["api.github.com"]},{"name":"stripe","allowedHosts":["api.stripe.com","files.stripe.com:8443"],"headerDst":"X-Api-Key","headerFmt":"key=%s"}]}',
    );
    expect(provider.view.schema.safeParse(view).success).toBe(true);
    const text = JSON.stringify(view);
    for (const secret of contribution.secrets) expect(text).not.toContain(secret.value);
    // What was sealed for LiteLLM is not the user's list.
    expect(text).not.toContain('openai');
    expect(provider.routeAliases).toEqual(['tokenizer']);
  });

  it('reads metadata leniently as apps/api did (hosts, odd entries)', () => {
    expect(
      provider.view.build({
        metadata: { credentials: [{ name: 'a', hosts: ['x.com', 3] }, { nope: true }, 'x', { name: 'b' }] },
        exports: {},
      }),
    ).toEqual({
      enabled: true,
      credentials: [
        { name: 'a', allowedHosts: ['x.com'] },
        { name: 'b', allowedHosts: [] },
      ],
    });
    expect(provider.view.build({ metadata: {}, exports: {} })).toEqual({ enabled: true, credentials: [] });
  });
});

describe('nextRedactedConfig', () => {
  const saved = provider.redactConfig(
    provider.configSchema.parse({
      ...twoCredentials,
      image: 'localhost/custom:1',
      port: 5001,
      adminPort: 5002,
    }),
  );

  it('keeps kept credentials as sealed, adds new ones without their secret, drops the rest', () => {
    const next = nextRedactedTokenizerConfig(
      saved,
      provider.rotation.changeSchema.parse({
        credentials: [
          { name: 'Stripe', secret: '' },
          {
            name: 'openai',
            secret: rawSecrets.openai,
            allowedHosts: ['api.openai.com'],
            headerFmt: 'token %s',
          },
        ],
      }),
    );
    expect(next).toEqual({
      credentials: [
        {
          name: 'Stripe',
          allowedHosts: ['api.stripe.com', 'files.stripe.com:8443'],
          headerDst: 'X-Api-Key',
          headerFmt: 'key=%s',
        },
        { name: 'openai', allowedHosts: ['api.openai.com'], headerFmt: 'token %s' },
      ],
      image: 'localhost/custom:1',
      port: 5001,
      adminPort: 5002,
      allowPrivateUpstreams: false,
    });
    expect(JSON.stringify(next)).not.toContain(rawSecrets.openai);
    expect(provider.configSchema.safeParse(next).success).toBe(true);
  });

  it('an empty list persists no credentials', () => {
    expect(
      nextRedactedTokenizerConfig(saved, provider.rotation.changeSchema.parse({ credentials: [] }))[
        'credentials'
      ],
    ).toEqual([]);
  });
});

describe('the sealed-credential request other sidecars send', () => {
  const base = {
    name: 'openai',
    secret: rawSecrets.openai,
    allowedHosts: ['api.openai.com'],
    tokenVariable: 'OPENAI_SEALED_TOKEN',
  };

  it('is the answers schema; authVariable defaults to <tokenVariable>_AUTH', async () => {
    expect(provider.answers['sealed-credential']).toBe(sealedCredentialRequestSchema);
    const contribution = await deploy(
      { credentials: [] },
      testContext('proxy-only', 11, [litellmRequest({ authVariable: undefined })]),
    );
    const deliveries = contribution.secrets
      .filter((secret) => secret.forRequest === 'openai-key')
      .map((secret) => secret.delivery);
    expect(deliveries).toEqual([
      { type: 'env', variable: 'OPENAI_SEALED_TOKEN' },
      { type: 'env', variable: 'OPENAI_SEALED_TOKEN_AUTH' },
    ]);
    // A credential sealed for a sidecar is a credential: no "no credentials" warning.
    expect(contribution.warnings).toBeUndefined();
  });

  it.each([
    ['no secret', { ...base, secret: '' }, 'secret'],
    ['a host with a scheme', { ...base, allowedHosts: ['https://api.openai.com'] }, 'allowedHosts.0'],
    ['a bad variable', { ...base, tokenVariable: 'OPENAI-TOKEN' }, 'tokenVariable'],
    ['the same variable twice', { ...base, authVariable: 'OPENAI_SEALED_TOKEN' }, 'authVariable'],
    ['a header the proxy controls', { ...base, headerDst: 'Proxy-Authorization' }, 'headerDst'],
    ['an unknown field', { ...base, visibleTo: ['agent'] }, ''],
  ])('refuses %s', (_label, payload, path) => {
    const result = sealedCredentialRequestSchema.safeParse(payload);
    expect(result.success).toBe(false);
    expect(result.error?.issues.map((issue) => issue.path.join('.'))).toContain(path);
  });
});
