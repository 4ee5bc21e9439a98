import { describe, expect, it } from 'vitest';
import { SecretJsonError, TokenizerError } from '../src/errors.js';
import { bearerDigest, openSecret, sealSecret } from '../src/secret.js';
import { marshalSecret, parseSecret, type SecretDefinition } from '../src/secret-json.js';

const OPEN_KEY = '0d88a36d5c41d5c3d97b929fdebf0bea57e5fb4616da88121ba972431a161cab';
const SEAL_KEY = 'a29dcbaa824af8f0a8d435df6ca1f27cfbf1d5aaa03f3f87fa0a58f8a34d8f67';
const DIGEST = 'IDtwta6IOTIWG70L3tk1fnY+Y6/OmLFiML4z8LlMLMU=';

function expectBadJson(json: string, message: string) {
  try {
    parseSecret(json);
  } catch (error) {
    expect(error).toBeInstanceOf(SecretJsonError);
    expect((error as TokenizerError).status).toBe(502);
    expect((error as Error).message).toContain(message);
    return;
  }
  throw new Error(`expected ${json} to be rejected`);
}

describe('bearerDigest (§1.5)', () => {
  it.each([
    ['trustno1', DIGEST],
    ['secret', 'K7gNU3sdo+OL0wNhqoVWhr3g6s1xYv72ol/pe/Unols='],
    ['secreter', '5aefyjtWaOYCfAGRC1L5ZWLWUap6F0xshFKngqhYML4='],
  ])('%s', (password, digest) => {
    expect(bearerDigest(password)).toBe(digest);
  });
});

describe('marshalSecret (Go json.Marshal form)', () => {
  it('writes the §1.5 plaintext byte for byte', () => {
    expect(
      marshalSecret({
        processor: { type: 'inject', token: 'supersecret' },
        auth: { type: 'bearer', digest: DIGEST },
      }),
    ).toBe(
      '{"inject_processor":{"token":"supersecret"},"bearer_auth":{"digest":"IDtwta6IOTIWG70L3tk1fnY+Y6/OmLFiML4z8LlMLMU="}}',
    );
  });

  it('orders fields, escapes HTML and keeps empty allowlists', () => {
    expect(
      marshalSecret({
        processor: { type: 'inject', token: 'a<b>&', dst: 'X-Key', fmt: '%s', allowedDst: [] },
        auth: { type: 'none' },
        allowedHosts: ['api.example.com'],
        allowedHostPattern: '^api\\.example\\.com$',
      }),
    ).toBe(
      '{"inject_processor":{"token":"a\\u003cb\\u003e\\u0026","fmt":"%s","dst":"X-Key","allowed_dst":[]},"no_auth":{},' +
        '"allowed_hosts":["api.example.com"],"allowed_host_pattern":"^api\\\\.example\\\\.com$"}',
    );
  });

  it('omits an empty allowed_host_pattern, as Go does (omitempty; checked against the reference)', () => {
    expect(
      marshalSecret({
        processor: { type: 'inject', token: 't' },
        auth: { type: 'none' },
        allowedHostPattern: '',
      }),
    ).toBe('{"inject_processor":{"token":"t"},"no_auth":{}}');
  });

  it('writes every processor and auth shape', () => {
    expect(
      marshalSecret({
        processor: {
          type: 'multi',
          processors: [
            { type: 'inject_hmac', key: 'trustno2' },
            { type: 'oauth2_body', token: { accessToken: 'a', refreshToken: 'r' }, placeholder: 'P' },
            { type: 'sigv4', accessKey: 'AK', secretKey: 'SK' },
            { type: 'client_credentials', clientId: 'id', clientSecret: 's', tokenUrl: 'https://t/x' },
            { type: 'github_app', privateKey: new Uint8Array([1, 2]), appId: '1', installationId: '2' },
            { type: 'jwt', privateKey: 'PEM', email: 'e@x' },
          ],
        },
        auth: { type: 'fly_src', allowedOrgs: ['o'] },
      }),
    ).toBe(
      '{"multi_processor":[{"inject_hmac_processor":{"key":"dHJ1c3RubzI=","hash":"sha256"}},' +
        '{"oauth2_body_processor":{"token":{"access_token":"a","refresh_token":"r"},"placeholder":"P"}},' +
        '{"sigv4_processor":{"access_key":"AK","secret_key":"SK","no_swap":false}},' +
        '{"client_credentials_processor":{"client_id":"id","client_secret":"s","token_url":"https://t/x"}},' +
        '{"github_app_processor":{"private_key":"AQI=","app_id":"1","installation_id":"2","token_url":""}},' +
        '{"jwt_processor":{"private_key":"UEVN","email":"e@x","sub":"","scopes":"","token_url":""}}],' +
        '"fly_src_auth":{"allowed_orgs":["o"],"allowed_apps":null,"allowed_instances":null}}',
    );
  });

  it('refuses a password where the digest belongs and unknown types', () => {
    expect(() =>
      marshalSecret({
        processor: { type: 'inject', token: 't' },
        auth: { type: 'bearer', digest: 'trustno1' },
      }),
    ).toThrow('bearerDigest');
    expect(() => marshalSecret({ processor: { type: 'nope' }, auth: { type: 'none' } } as never)).toThrow(
      'unknown processor type "nope"',
    );
    expect(() =>
      marshalSecret({ processor: { type: 'inject', token: 't' }, auth: { type: 'x' } } as never),
    ).toThrow(TokenizerError);
  });
});

describe('parseSecret (Go encoding/json rules, §2.1)', () => {
  it('round-trips through seal and open', () => {
    const definition: SecretDefinition = {
      processor: { type: 'inject', token: 'supersecret', dst: 'X-Api-Key', fmt: '%s' },
      auth: { type: 'bearer', digest: bearerDigest('trustno1') },
      allowedHosts: ['api.example.com'],
    };
    expect(openSecret(sealSecret(definition, SEAL_KEY), OPEN_KEY)).toEqual(definition);
  });

  it('matches keys case-insensitively and ignores unknown keys', () => {
    expect(parseSecret('{"INJECT_PROCESSOR":{"Token":"t","DST":"x"},"No_Auth":{},"extra":[1,2]}')).toEqual({
      processor: { type: 'inject', token: 't', dst: 'x' },
      auth: { type: 'none' },
    });
  });

  it('merges duplicate nested objects and lets the last scalar win', () => {
    expect(
      parseSecret(
        '{"inject_processor":{"token":"a","fmt":"%s"},"inject_processor":{"token":"b"},"no_auth":{}}',
      ),
    ).toEqual({ processor: { type: 'inject', token: 'b', fmt: '%s' }, auth: { type: 'none' } });
  });

  it('treats null as absent and an empty array as present', () => {
    const secret = parseSecret(
      '{"inject_processor":{"token":"t","allowed_dst":[]},"bearer_auth":null,"no_auth":{},"allowed_hosts":[]}',
    );
    expect(secret.allowedHosts).toEqual([]);
    expect(secret.processor).toEqual({ type: 'inject', token: 't', allowedDst: [] });
    expect(
      parseSecret('{"inject_processor":{"token":"t"},"no_auth":{},"allowed_hosts":null}').allowedHosts,
    ).toBe(undefined);
  });

  it('decodes base64 byte fields', () => {
    const secret = parseSecret(
      '{"inject_hmac_processor":{"key":"dHJ1c3Ru\\nbzI=","hash":"sha256"},"no_auth":{}}',
    );
    expect(secret.processor).toMatchObject({ type: 'inject_hmac', hash: 'sha256' });
    expect(Buffer.from((secret.processor as { key: Uint8Array }).key).toString()).toBe('trustno2');
  });

  it('parses nested multi processors, empty multi and every auth', () => {
    expect(parseSecret('{"multi_processor":[],"no_auth":{}}').processor).toEqual({
      type: 'multi',
      processors: [],
    });
    expect(
      parseSecret(
        '{"multi_processor":[{"inject_processor":{"token":"A"}},{"multi_processor":[{"oauth2_processor":{"token":{"access_token":"x"}}}]}],' +
          '"flyio_macaroon_auth":{"access":{"action":"r","org_id":1}}}',
      ),
    ).toEqual({
      processor: {
        type: 'multi',
        processors: [
          { type: 'inject', token: 'A' },
          { type: 'multi', processors: [{ type: 'oauth2', token: { accessToken: 'x' } }] },
        ],
      },
      auth: { type: 'flyio_macaroon', access: { action: 'r', org_id: 1 } },
    });
    expect(parseSecret('{"oauth2_processor":{},"fly_src_auth":{"allowed_orgs":["o"]}}')).toEqual({
      processor: { type: 'oauth2' },
      auth: { type: 'fly_src', allowedOrgs: ['o'] },
    });
    expect(parseSecret('{"sigv4_processor":{"access_key":"a"},"macaroon_auth":{"key":"AQ=="}}')).toEqual({
      processor: { type: 'sigv4', accessKey: 'a', secretKey: '', noSwap: false },
      auth: { type: 'macaroon', key: new Uint8Array([1]) },
    });
  });

  it.each([
    ['{"no_auth":{}}', 'bad secret json: bad processor config'],
    ['{"inject_processor":{"token":"t"},"oauth2_processor":{},"no_auth":{}}', 'bad processor config'],
    ['{"inject_processor":null,"no_auth":{}}', 'bad processor config'],
    ['{"inject_processor":{"token":"t"}}', 'bad secret json: bad auth config'],
    ['{"inject_processor":{"token":"t"},"no_auth":{},"bearer_auth":{"digest":""}}', 'bad auth config'],
    ['{"multi_processor":[{}],"no_auth":{}}', 'bad processor config'],
    ['{"inject_processor":{"token":1},"no_auth":{}}', 'cannot unmarshal number'],
    ['{"inject_processor":"x","no_auth":{}}', 'cannot unmarshal string'],
    ['{"sigv4_processor":{"no_swap":"true"},"no_auth":{}}', 'cannot unmarshal string'],
    ['{"inject_processor":{"token":"t"},"no_auth":{},"allowed_hosts":"a"}', 'cannot unmarshal string'],
    ['{"inject_hmac_processor":{"key":"dHJ1c3RubzI"},"no_auth":{}}', 'illegal base64'],
    ['{"inject_hmac_processor":{"key":"_-8="},"no_auth":{}}', 'illegal base64'],
    ['[]', 'cannot unmarshal array'],
    ['{"inject_processor":{"token":"t"},"no_auth":{}', 'unexpected end'],
    ['{"inject_processor":{"token":"t"},"no_auth":{}} x', 'invalid character'],
    ['', 'unexpected end'],
  ])('rejects %s', (json, message) => {
    expectBadJson(json, message);
  });
});
