// The checks as data (what runs where, how answers are judged). They run against the real proxy
// in tokenizer-proxy.integration.test.ts.
import { isKeywardError, type VerifyCheckV2 } from '@keyward/core';
import { openSecret } from '@keyward/tokenizer';
import { describe, expect, it } from 'vitest';
import { createTokenizerProvider } from '../src/index.js';
import { deploy, secretValue, twoCredentials } from './helpers.js';

const provider = createTokenizerProvider();

async function checks(config: unknown = twoCredentials, options: Record<string, unknown> = {}) {
  const contribution = await deploy(config);
  const list = await provider.verification.checks(
    {
      instanceName: 'demo',
      networkMode: 'proxy-only',
      metadata: contribution.metadata,
      exports: contribution.exports ?? {},
    },
    provider.verification.optionsSchema?.parse(options),
  );
  return { contribution, list };
}

function named(list: VerifyCheckV2[], name: string): VerifyCheckV2 {
  const check = list.find((item) => item.name === name);
  if (!check) throw new Error(`no check ${name}`);
  return check;
}

describe('tokenizer verification', () => {
  it('runs node in the agent with the script on stdin, never a secret in argv or the script', async () => {
    const { contribution, list } = await checks();
    expect(list.map((check) => check.name)).toEqual([
      'proxied-request-injected',
      'unbound-host-refused',
      'credential-header-pinned',
      'self-sealed-token-refused',
    ]);
    const values = contribution.secrets.map((secret) => secret.value);
    for (const check of list) {
      expect(check.exec).toMatchObject({ container: 'agent', command: ['node', '-'], timeoutSeconds: 20 });
      expect(check.description.length).toBeGreaterThan(20);
      const text = JSON.stringify(check.exec);
      for (const value of values) expect(text).not.toContain(value);
    }
  });

  it('seals the self-made probe token itself, from the exported seal key, with no auth and no hosts', async () => {
    const { contribution, list } = await checks();
    const stdin = named(list, 'self-sealed-token-refused').exec.stdin ?? '';
    const token = /"selfSealedToken":"([^"]+)"/.exec(stdin)?.[1] as string;
    expect(openSecret(token, secretValue(contribution, 'tokenizer-open-key'))).toEqual({
      processor: { type: 'inject', token: 'made-up' },
      auth: { type: 'none' },
    });
  });

  it.each([
    ['proxied-request-injected', { exitCode: 0, stdout: '{"status":200,"body":"x"}\n' }, true],
    ['proxied-request-injected', { exitCode: 0, stdout: '{"status":407,"body":"unauthorized"}\n' }, false],
    [
      'unbound-host-refused',
      { exitCode: 0, stdout: '{"status":400,"body":"request validator failed"}\n' },
      true,
    ],
    ['unbound-host-refused', { exitCode: 0, stdout: '{"status":200,"body":"ok"}\n' }, false],
    ['credential-header-pinned', { exitCode: 0, stdout: '{"status":400,"body":"bad request"}\n' }, true],
    ['credential-header-pinned', { exitCode: 0, stdout: '{"status":400,"body":"{\\"error\\":1}"}\n' }, false],
    ['self-sealed-token-refused', { exitCode: 0, stdout: '{"status":407,"body":"unauthorized"}\n' }, true],
    ['self-sealed-token-refused', { exitCode: 0, stdout: '{"status":400,"body":"bad request"}\n' }, false],
    ['self-sealed-token-refused', { exitCode: 0, stdout: '{"status":0,"error":"ECONNREFUSED"}\n' }, false],
    ['proxied-request-injected', { exitCode: 127, stdout: '', stderr: 'node: not found' }, false],
    ['unbound-host-refused', { exitCode: 0, stdout: 'garbage' }, false],
  ])('%s judges %j as passed=%s', async (name, result, passed) => {
    const { list } = await checks();
    const judged = named(list, name).judge({ stderr: '', timedOut: false, ...result });
    expect(judged.passed).toBe(passed);
  });

  it('quotes the proxy refusal of a passing check, but never a body that got through', async () => {
    const { list } = await checks();
    const injected = named(list, 'proxied-request-injected').judge({
      exitCode: 0,
      stdout: '{"status":401,"body":"bad request: header X: ghp_echoed"}\n',
      stderr: '',
      timedOut: false,
    });
    expect(injected.evidence).toBe(
      'GET https://api.github.com/ via http://tokenizer:4001 with TOKENIZER_CRED_GITHUB -> 401',
    );
    const timedOut = named(list, 'unbound-host-refused').judge({
      exitCode: -1,
      stdout: '',
      stderr: '',
      timedOut: true,
    });
    expect(timedOut).toEqual({
      passed: false,
      evidence: 'GET https://unbound.keyward.invalid/ with TOKENIZER_CRED_GITHUB: the probe timed out',
    });
  });

  it('chooses the credential by name or key, and says which exist when it is unknown', async () => {
    const { list } = await checks(twoCredentials, { credential: 'STRIPE' });
    const stdin = named(list, 'proxied-request-injected').exec.stdin ?? '';
    expect(stdin).toContain('"key":"STRIPE"');
    expect(stdin).toContain('"url":"https://api.stripe.com/"');
    const error = await checks(twoCredentials, { credential: 'gitlab' }).catch((caught: unknown) => caught);
    expect(isKeywardError(error, 'INVALID_INPUT')).toBe(true);
    expect((error as Error).message).toBe(
      'The tokenizer has no credential "gitlab" to verify (it has: "github", "stripe").',
    );
  });

  it('refuses options it does not know and URLs that are not http(s)', () => {
    const schema = provider.verification.optionsSchema;
    expect(schema?.safeParse({ directUrl: 'https://x' }).success).toBe(false);
    expect(schema?.safeParse({ allowedUrl: 'ftp://x/' }).success).toBe(false);
    expect(schema?.safeParse({ allowedUrl: 'https://user:pw@x/' }).success).toBe(false);
    expect(
      schema?.safeParse({ allowedUrl: 'https://api.github.com/zen', credential: 'github' }).success,
    ).toBe(true);
  });

  it('skips the header check for processors without a header, and fails the credential checks without credentials', async () => {
    const oauth = await checks({
      credentials: [
        { name: 'o', secret: 'token-123456', allowedHosts: ['a.example.com'], processor: { type: 'oauth2' } },
      ],
    });
    expect(oauth.list.map((check) => check.name)).not.toContain('credential-header-pinned');
    const empty = await checks({ credentials: [] });
    expect(empty.list.map((check) => check.name)).toEqual([
      'proxied-request-injected',
      'unbound-host-refused',
      'self-sealed-token-refused',
    ]);
    const judged = named(empty.list, 'proxied-request-injected').judge({
      exitCode: 0,
      stdout: '',
      stderr: '',
      timedOut: false,
    });
    expect(judged).toEqual({
      passed: false,
      evidence: 'the tokenizer has no credential to try (no TOKENIZER_CRED_* deployed)',
    });
  });
});
