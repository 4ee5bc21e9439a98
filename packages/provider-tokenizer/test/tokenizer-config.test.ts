import { formatIssues } from '@keyward/core';
import { describe, expect, it } from 'vitest';
import { sanitizeCredentialName } from '../src/credential-names.js';
import { tokenizerChangeSchema, tokenizerConfigSchema } from '../src/tokenizer-config.js';

const pem =
  '-----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8wggE7AgEAAkEA\n-----END PRIVATE KEY-----\n';
const caPem = '-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUYQ\n-----END CERTIFICATE-----\n';

const credential = (overrides: Record<string, unknown> = {}) => ({
  name: 'github',
  secret: 'ghp_exampleexample',
  allowedHosts: ['api.github.com'],
  ...overrides,
});
const withCredential = (overrides: Record<string, unknown>) => ({ credentials: [credential(overrides)] });
const manyCredentials = (count: number) => ({
  credentials: Array.from({ length: count }, (_, index) => credential({ name: `credential-${index}` })),
});

function problems(schema: typeof tokenizerConfigSchema | typeof tokenizerChangeSchema, input: unknown) {
  const result = schema.safeParse(input);
  return result.success ? [] : formatIssues(result.error.issues);
}

const label63 = 'a'.repeat(63);
// 4 × 63 + 3 dots = 255; trim to exactly 253 / 254 characters.
const longHostname = (length: number) => `${label63}.${label63}.${label63}.${label63}`.slice(0, length);

/** [label, config, expected path, a phrase of the message that says what to write instead] */
const invalidConfigs: [string, unknown, string, string][] = [
  ['51 credentials (one over the limit)', manyCredentials(51), 'credentials', 'at most 50 credentials'],
  [
    'credentials not a list',
    { credentials: { name: 'github' } },
    'credentials',
    'must be a list of credentials',
  ],
  [
    'name missing',
    { credentials: [{ secret: 'x', allowedHosts: ['a.com'] }] },
    'credentials.0.name',
    'a name for the credential',
  ],
  [
    'name empty (0 characters)',
    withCredential({ name: '' }),
    'credentials.0.name',
    'write a name such as "github"',
  ],
  [
    'name of 129 characters',
    withCredential({ name: 'n'.repeat(129) }),
    'credentials.0.name',
    'at most 128 characters',
  ],
  [
    'name with a line break',
    withCredential({ name: 'git\nhub' }),
    'credentials.0.name',
    'without control characters',
  ],
  ['name only spaces', withCredential({ name: '   ' }), 'credentials.0.name', 'must not be only spaces'],
  [
    'names equal after sanitising',
    { credentials: [credential({ name: 'my-api' }), credential({ name: 'my api' })] },
    'credentials.1.name',
    'TOKENIZER_CRED_MY_API, like credentials[0] "my-api"',
  ],
  [
    'names equal after upper-casing',
    { credentials: [credential({ name: 'github' }), credential({ name: 'GitHub' })] },
    'credentials.1.name',
    'rename one of them',
  ],
  [
    'hosts missing',
    { credentials: [{ name: 'a', secret: 'x' }] },
    'credentials.0.allowedHosts',
    'list of hostnames',
  ],
  [
    'hosts empty list',
    withCredential({ allowedHosts: [] }),
    'credentials.0.allowedHosts',
    'list at least one host',
  ],
  [
    'hosts only blanks',
    withCredential({ allowedHosts: ' , ' }),
    'credentials.0.allowedHosts',
    'list at least one host',
  ],
  [
    'host with https scheme',
    withCredential({ allowedHosts: ['https://api.github.com'] }),
    'credentials.0.allowedHosts.0',
    'write the hostname only, for example "api.github.com"',
  ],
  [
    'host with path',
    withCredential({ allowedHosts: ['api.github.com/v3'] }),
    'credentials.0.allowedHosts.0',
    'for example "api.github.com"',
  ],
  [
    'host with query',
    withCredential({ allowedHosts: ['api.github.com?x=1'] }),
    'credentials.0.allowedHosts.0',
    'write the hostname only',
  ],
  [
    'host with wildcard',
    withCredential({ allowedHosts: ['*.github.com'] }),
    'credentials.0.allowedHosts.0',
    'list each hostname',
  ],
  [
    'host with whitespace inside',
    withCredential({ allowedHosts: ['api github.com'] }),
    'credentials.0.allowedHosts.0',
    'one hostname per entry',
  ],
  [
    'host with user info',
    withCredential({ allowedHosts: ['user@api.github.com'] }),
    'credentials.0.allowedHosts.0',
    'hostname only',
  ],
  [
    'host with underscore',
    withCredential({ allowedHosts: ['api_v1.example.com'] }),
    'credentials.0.allowedHosts.0',
    'letters, digits, "-" and dots',
  ],
  [
    'host label starting with "-"',
    withCredential({ allowedHosts: ['-api.example.com'] }),
    'credentials.0.allowedHosts.0',
    'not a hostname',
  ],
  [
    'host with empty label',
    withCredential({ allowedHosts: ['api..example.com'] }),
    'credentials.0.allowedHosts.0',
    'not a hostname',
  ],
  [
    'host of 254 characters',
    withCredential({ allowedHosts: [longHostname(254)] }),
    'credentials.0.allowedHosts.0',
    'at most 253',
  ],
  [
    'host label of 64 characters',
    withCredential({ allowedHosts: [`${'b'.repeat(64)}.com`] }),
    'credentials.0.allowedHosts.0',
    'at most 63',
  ],
  [
    'host with port 0',
    withCredential({ allowedHosts: ['api.example.com:0'] }),
    'credentials.0.allowedHosts.0',
    'port from 1 to 65535',
  ],
  [
    'host with port 65536',
    withCredential({ allowedHosts: ['api.example.com:65536'] }),
    'credentials.0.allowedHosts.0',
    'port from 1 to 65535',
  ],
  [
    'host with port 443',
    withCredential({ allowedHosts: ['api.example.com:443'] }),
    'credentials.0.allowedHosts.0',
    'write "api.example.com"',
  ],
  [
    'host with empty port',
    withCredential({ allowedHosts: ['api.example.com:'] }),
    'credentials.0.allowedHosts.0',
    'invalid port',
  ],
  [
    'host without hostname',
    withCredential({ allowedHosts: [':8443'] }),
    'credentials.0.allowedHosts.0',
    'has no hostname',
  ],
  [
    'IPv6 literal',
    withCredential({ allowedHosts: ['[::1]:8443'] }),
    'credentials.0.allowedHosts.0',
    'use a hostname instead',
  ],
  [
    '101 hosts',
    withCredential({ allowedHosts: Array.from({ length: 101 }, (_, index) => `h${index}.example.com`) }),
    'credentials.0.allowedHosts',
    'at most 100 per credential',
  ],
  [
    'headerFmt without %s',
    withCredential({ headerFmt: 'Bearer' }),
    'credentials.0.headerFmt',
    'must contain "%s" exactly once',
  ],
  [
    'headerFmt with %s twice',
    withCredential({ headerFmt: '%s %s' }),
    'credentials.0.headerFmt',
    'exactly once',
  ],
  ['headerFmt with %%', withCredential({ headerFmt: '100%% %s' }), 'credentials.0.headerFmt', 'no other "%"'],
  [
    'headerFmt with %d',
    withCredential({ headerFmt: 'Bearer %d' }),
    'credentials.0.headerFmt',
    'for example "Bearer %s"',
  ],
  [
    'headerFmt with trailing %',
    withCredential({ headerFmt: 'Bearer %s%' }),
    'credentials.0.headerFmt',
    'no other "%"',
  ],
  [
    'headerFmt with a line break',
    withCredential({ headerFmt: 'Bearer %s\nX: y' }),
    'credentials.0.headerFmt',
    'remove line breaks',
  ],
  [
    'headerDst empty',
    withCredential({ headerDst: '' }),
    'credentials.0.headerDst',
    'such as "Authorization"',
  ],
  [
    'headerDst with a space',
    withCredential({ headerDst: 'X Api Key' }),
    'credentials.0.headerDst',
    'for example "X-Api-Key"',
  ],
  [
    'headerDst with a colon',
    withCredential({ headerDst: 'Authorization:' }),
    'credentials.0.headerDst',
    'not a valid HTTP header name',
  ],
  [
    'headerDst the proxy strips',
    withCredential({ headerDst: 'Proxy-Authorization' }),
    'credentials.0.headerDst',
    'use the header the API expects',
  ],
  [
    'headerDst Host',
    withCredential({ headerDst: 'host' }),
    'credentials.0.headerDst',
    'cannot carry a credential',
  ],
  [
    'headerDst TE (the proxy refuses it at request time)',
    withCredential({ headerDst: 'TE' }),
    'credentials.0.headerDst',
    'cannot carry a credential',
  ],
  [
    'headerDst Upgrade (the proxy refuses it at request time)',
    withCredential({ headerDst: 'Upgrade' }),
    'credentials.0.headerDst',
    'cannot carry a credential',
  ],
  [
    'headerDst Expect (the proxy refuses it at request time)',
    withCredential({ headerDst: 'Expect' }),
    'credentials.0.headerDst',
    'cannot carry a credential',
  ],
  [
    'headerDst Keep-Alive (the proxy refuses it at request time)',
    withCredential({ headerDst: 'Keep-Alive' }),
    'credentials.0.headerDst',
    'cannot carry a credential',
  ],
  [
    'headerDst Trailer (the proxy refuses it at request time)',
    withCredential({ headerDst: 'Trailer' }),
    'credentials.0.headerDst',
    'cannot carry a credential',
  ],
  ['secret not a string', withCredential({ secret: 42 }), 'credentials.0.secret', 'the credential value'],
  [
    'secret with a trailing newline',
    withCredential({ secret: 'ghp_abc\n' }),
    'credentials.0.secret',
    'remove it',
  ],
  [
    'secret of 65537 characters',
    withCredential({ secret: 's'.repeat(65_537) }),
    'credentials.0.secret',
    'at most 65536',
  ],
  ['unknown credential field', withCredential({ token: 'x' }), 'credentials.0', 'unknown field(s) "token"'],
  [
    'unknown processor type',
    withCredential({ processor: { type: 'magic' } }),
    'credentials.0.processor.type',
    'leave processor out to inject',
  ],
  [
    'processor inject_hmac with %s format',
    withCredential({ processor: { type: 'inject_hmac', fmt: 'sha256=%s' } }),
    'credentials.0.processor.fmt',
    '"%x"',
  ],
  [
    'processor inject_hmac with md5',
    withCredential({ processor: { type: 'inject_hmac', hash: 'md5' } }),
    'credentials.0.processor.hash',
    'must be "sha256"',
  ],
  [
    'processor inject_hmac with a bad dst',
    withCredential({ processor: { type: 'inject_hmac', dst: 'X Sig' } }),
    'credentials.0.processor.dst',
    'not a valid HTTP header name',
  ],
  [
    'headerDst with inject_hmac',
    withCredential({ headerDst: 'X-Sig', processor: { type: 'inject_hmac' } }),
    'credentials.0.headerDst',
    'write processor.dst',
  ],
  [
    'headerFmt with oauth2',
    withCredential({ headerFmt: 'Bearer %s', processor: { type: 'oauth2' } }),
    'credentials.0.headerFmt',
    'remove it',
  ],
  [
    'processor inject_body with empty placeholder',
    withCredential({ processor: { type: 'inject_body', placeholder: '' } }),
    'credentials.0.processor.placeholder',
    'leave it out',
  ],
  [
    'processor sigv4 without accessKeyId',
    withCredential({ processor: { type: 'sigv4' } }),
    'credentials.0.processor.accessKeyId',
    'AKIAIOSFODNN7EXAMPLE',
  ],
  [
    'processor sigv4 with blank accessKeyId',
    withCredential({ processor: { type: 'sigv4', accessKeyId: ' ' } }),
    'credentials.0.processor.accessKeyId',
    'must not be empty',
  ],
  [
    'processor client_credentials with http tokenUrl',
    withCredential({
      processor: { type: 'client_credentials', clientId: 'c', tokenUrl: 'http://auth.example.com/token' },
    }),
    'credentials.0.processor.tokenUrl',
    'https:// URL',
  ],
  [
    'processor client_credentials without tokenUrl',
    withCredential({ processor: { type: 'client_credentials', clientId: 'c' } }),
    'credentials.0.processor.tokenUrl',
    'https:// URL',
  ],
  [
    'processor jwt without email',
    withCredential({ secret: pem, processor: { type: 'jwt' } }),
    'credentials.0.processor.email',
    'gserviceaccount',
  ],
  [
    'processor jwt with a non-PEM secret',
    withCredential({ processor: { type: 'jwt', email: 'a@b.c' } }),
    'credentials.0.secret',
    'needs a PEM private key',
  ],
  [
    'processor github_app without installationId',
    withCredential({ secret: pem, processor: { type: 'github_app', appId: '1' } }),
    'credentials.0.processor.installationId',
    'is required',
  ],
  [
    'processor with an unknown parameter',
    withCredential({ processor: { type: 'oauth2', refresh: 'x' } }),
    'credentials.0.processor',
    'unknown field(s) "refresh"',
  ],
  ['port 0', { port: 0 }, 'port', 'between 1 and 65535'],
  ['port 65536', { port: 65_536 }, 'port', 'between 1 and 65535'],
  ['port not whole', { port: 4001.5 }, 'port', 'whole number'],
  ['port as string', { port: '4001' }, 'port', 'for example 4001'],
  [
    'adminPort equal to port',
    { port: 5000, adminPort: 5000 },
    'adminPort',
    'must differ from port (5000); for example 5001',
  ],
  ['image empty', { image: '' }, 'image', 'leave it out to use "localhost/keyward-tokenizer:0.1.0"'],
  ['image with whitespace', { image: 'my image' }, 'image', 'must not contain whitespace'],
  [
    'CA bundle that is not PEM',
    { upstreamCaCertificates: 'hello' },
    'upstreamCaCertificates',
    'leave it out to trust the system roots',
  ],
  [
    'CA bundle with a private key',
    { upstreamCaCertificates: `${caPem}${pem}` },
    'upstreamCaCertificates',
    'give only the CA certificate',
  ],
  [
    'allowPrivateUpstreams not boolean',
    { allowPrivateUpstreams: 'yes' },
    'allowPrivateUpstreams',
    'true or false',
  ],
  ['unknown top-level field', { credential: [] }, '(root)', 'unknown field(s) "credential"'],
];

const validConfigs: [string, unknown][] = [
  ['empty config (no credentials yet)', {}],
  ['50 credentials (the limit)', manyCredentials(50)],
  ['name of 1 character', withCredential({ name: 'g' })],
  ['name of 128 characters', withCredential({ name: 'n'.repeat(128) })],
  [
    'names that stay distinct after sanitising',
    { credentials: [credential({ name: 'a-b' }), credential({ name: 'a-c' })] },
  ],
  ['host of 253 characters', withCredential({ allowedHosts: [longHostname(253)] })],
  ['host label of 63 characters', withCredential({ allowedHosts: [`${label63}.com`] })],
  ['host with port 1', withCredential({ allowedHosts: ['api.example.com:1'] })],
  ['host with port 65535', withCredential({ allowedHosts: ['api.example.com:65535'] })],
  ['host as comma-separated string', withCredential({ allowedHosts: 'api.github.com, uploads.github.com' })],
  ['IPv4 address and localhost', withCredential({ allowedHosts: ['127.0.0.1:8443', 'localhost:8443'] })],
  [
    '100 hosts',
    withCredential({ allowedHosts: Array.from({ length: 100 }, (_, index) => `h${index}.example.com`) }),
  ],
  ['headerFmt with %s once', withCredential({ headerFmt: 'token %s' })],
  ['headerFmt of only %s', withCredential({ headerFmt: '%s' })],
  ['headerDst custom', withCredential({ headerDst: 'X-Api-Key' })],
  ['secret of 65536 characters', withCredential({ secret: 's'.repeat(65_536) })],
  ['no secret (a redacted config)', withCredential({ secret: undefined })],
  [
    'inject_hmac with %X format',
    withCredential({ processor: { type: 'inject_hmac', dst: 'X-Signature', fmt: 'sha256=%X' } }),
  ],
  [
    'inject_body with placeholder',
    withCredential({ processor: { type: 'inject_body', placeholder: '__KEY__' } }),
  ],
  ['oauth2', withCredential({ processor: { type: 'oauth2' } })],
  ['oauth2_body', withCredential({ processor: { type: 'oauth2_body' } })],
  [
    'sigv4',
    withCredential({ processor: { type: 'sigv4', accessKeyId: 'AKIAIOSFODNN7EXAMPLE', noSwap: true } }),
  ],
  [
    'jwt with a PEM secret',
    withCredential({
      secret: pem,
      processor: { type: 'jwt', email: 'robot@example.iam.gserviceaccount.com', scopes: 'a b' },
    }),
  ],
  [
    'client_credentials',
    withCredential({
      processor: { type: 'client_credentials', clientId: 'c', tokenUrl: 'https://auth.example.com/token' },
    }),
  ],
  [
    'github_app with a PEM secret',
    withCredential({ secret: pem, processor: { type: 'github_app', appId: '1', installationId: '2' } }),
  ],
  ['ports 1 and 65535', { port: 1, adminPort: 65_535 }],
  ['CA bundle and private upstreams', { upstreamCaCertificates: caPem, allowPrivateUpstreams: true }],
];

describe('tokenizer config validation', () => {
  it.each(invalidConfigs)('rejects %s', (_label, config, path, phrase) => {
    const found = problems(tokenizerConfigSchema, config);
    expect(found.length).toBeGreaterThan(0);
    const atPath = found.filter((problem) => problem.startsWith(`${path}: `));
    expect(atPath, `problems: ${found.join(' | ')}`).not.toEqual([]);
    expect(atPath.join(' | ')).toContain(phrase);
  });

  it.each(validConfigs)('accepts %s', (_label, config) => {
    expect(problems(tokenizerConfigSchema, config)).toEqual([]);
  });

  it('applies defaults and normalises hosts (trimmed, lower case, no duplicates)', () => {
    const parsed = tokenizerConfigSchema.parse(
      withCredential({ allowedHosts: ' API.GitHub.com ,api.github.com, uploads.github.com:8443' }),
    );
    expect(parsed.port).toBe(4001);
    expect(parsed.adminPort).toBe(4002);
    expect(parsed.allowPrivateUpstreams).toBe(false);
    expect(parsed.credentials[0]?.allowedHosts).toEqual(['api.github.com', 'uploads.github.com:8443']);
  });
});

describe('rotation change validation', () => {
  it('accepts kept credentials with an empty or missing secret and no hosts', () => {
    expect(
      problems(tokenizerChangeSchema, {
        credentials: [{ name: 'github', secret: '' }, { name: 'stripe' }, credential({ name: 'new' })],
      }),
    ).toEqual([]);
  });

  it('accepts an empty list (remove every credential)', () => {
    expect(problems(tokenizerChangeSchema, { credentials: [] })).toEqual([]);
  });

  it('requires hosts for a new credential', () => {
    expect(problems(tokenizerChangeSchema, { credentials: [{ name: 'new', secret: 'abc' }] })).toEqual([
      'credentials.0.allowedHosts: is required for a new or replaced credential, for example ["api.github.com"]',
    ]);
  });

  it('applies the same rules as the config', () => {
    expect(
      problems(tokenizerChangeSchema, {
        credentials: [
          { name: 'a', secret: '' },
          { name: 'A', secret: '' },
        ],
      }),
    ).toEqual([expect.stringContaining('credentials.1.name: "A" becomes TOKENIZER_CRED_A')]);
    expect(problems(tokenizerChangeSchema, manyCredentials(51))).toEqual([
      expect.stringContaining('at most 50 credentials'),
    ]);
    expect(problems(tokenizerChangeSchema, { credentials: [credential({ headerFmt: 'x' })] })).toEqual([
      expect.stringContaining('credentials.0.headerFmt'),
    ]);
  });

  it('requires the credentials list', () => {
    expect(problems(tokenizerChangeSchema, {})).toEqual([
      expect.stringContaining('credentials: must be a list of credentials'),
    ]);
  });
});

describe('sanitizeCredentialName', () => {
  it.each([
    ['github', 'GITHUB'],
    ['my-api', 'MY_API'],
    ['my api.v2', 'MY_API_V2'],
    ['Ünïcode', '_N_CODE'],
    ['already_OK_9', 'ALREADY_OK_9'],
  ])('%s → %s', (name, key) => {
    expect(sanitizeCredentialName(name)).toBe(key);
  });
});
