import { composePlanV2, parseInstanceSpec, type SidecarContributionV2 } from '@keyward/core';
import { openSecret } from '@keyward/tokenizer';
import { describe, expect, it } from 'vitest';
import { createTokenizerProvider } from '../src/index.js';
import {
  createSeededRandomBytes,
  deploy,
  litellmRequest,
  rawSecrets,
  secretValue,
  stateOf,
  stubTarget,
  testContext,
  twoCredentials,
} from './helpers.js';

/** Every way a raw value could leak in text: as is, JSON-escaped, base64, hex, URL-encoded. */
function encodings(value: string): string[] {
  return [
    value,
    JSON.stringify(value).slice(1, -1),
    Buffer.from(value).toString('base64'),
    Buffer.from(value).toString('base64url'),
    Buffer.from(value).toString('hex'),
    encodeURIComponent(value),
  ];
}

function leaks(text: string, value: string): boolean {
  return encodings(value).some((encoded) => text.includes(encoded));
}

const pem =
  '-----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8wggE7AgEAAkEA\n-----END PRIVATE KEY-----\n';
const fullConfig = {
  credentials: [
    ...twoCredentials.credentials,
    {
      name: 'signer',
      secret: 'hmacRAWkey-000111',
      allowedHosts: ['hooks.example.com'],
      processor: { type: 'inject_hmac' },
    },
    {
      name: 'google',
      secret: pem,
      allowedHosts: ['oauth2.googleapis.com'],
      processor: { type: 'jwt', email: 'r@x.com' },
    },
  ],
  upstreamCaCertificates: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
};
const allRaw = [rawSecrets.github, rawSecrets.stripe, 'hmacRAWkey-000111', pem];

/** An opened Secret as text, byte fields (HMAC and PEM keys) decoded as UTF-8. */
function openedText(token: string, openKey: string): string {
  return JSON.stringify(openSecret(token, openKey), (_key, value: unknown) =>
    value instanceof Uint8Array ? Buffer.from(value).toString('utf8') : value,
  );
}

function scanContribution(contribution: SidecarContributionV2, raw: readonly string[]) {
  const openKey = secretValue(contribution, 'tokenizer-open-key');
  const sealedTokens = contribution.secrets
    .filter((secret) => /^tokenizer-(cred-|req-.*-cred$)/.test(secret.name))
    .map((secret) => secret.value);

  // 1. No raw secret anywhere in the contribution, in any encoding.
  const everything = JSON.stringify(contribution);
  for (const value of raw) expect(leaks(everything, value), 'raw secret in contribution').toBe(false);

  // 2. ...but each one is inside a sealed token (so it was not simply dropped).
  const opened = sealedTokens.map((token) => openedText(token, openKey));
  for (const value of raw) {
    expect(opened.some((text) => text.includes(JSON.stringify(value).slice(1, -1)))).toBe(true);
  }

  // 3. The open key appears only in the tokenizer's secret.
  const withoutOpenKeySecret = JSON.stringify({
    ...contribution,
    secrets: contribution.secrets.filter((secret) => secret.name !== 'tokenizer-open-key'),
  });
  expect(leaks(withoutOpenKeySecret, openKey)).toBe(false);
  const openKeySecret = contribution.secrets.filter((secret) => secret.value === openKey);
  expect(openKeySecret.map((secret) => [secret.name, secret.visibleTo])).toEqual([
    ['tokenizer-open-key', ['tokenizer']],
  ]);

  // 4. Proxy passwords and sealed tokens appear only in their own secrets, never in env, files or metadata.
  const plain = JSON.stringify({
    containers: contribution.containers,
    files: contribution.files,
    agentEnv: contribution.agentEnv,
    metadata: contribution.metadata,
    warnings: contribution.warnings ?? [],
  });
  for (const secret of contribution.secrets) expect(leaks(plain, secret.value)).toBe(false);
}

describe('secret scan', () => {
  it('finds no raw secret outside sealed tokens and the open key only in the tokenizer secret (deploy)', async () => {
    scanContribution(await deploy(fullConfig), allRaw);
  });

  it('holds after a rotation that keeps, adds and removes', async () => {
    const before = await deploy(fullConfig);
    const provider = createTokenizerProvider();
    const after = await provider.rotation.rotate(
      testContext('proxy-only', 31),
      stateOf(before),
      provider.rotation.changeSchema.parse({
        credentials: [
          { name: 'github', secret: '' },
          { name: 'signer', secret: '' },
          { name: 'openai', secret: rawSecrets.openai, allowedHosts: ['api.openai.com'] },
        ],
      }),
    );
    scanContribution(after, [rawSecrets.github, 'hmacRAWkey-000111', rawSecrets.openai]);
    // Removed raw secrets are gone too, sealed or not.
    const openKey = secretValue(after, 'tokenizer-open-key');
    const remaining = after.secrets
      .filter((secret) => secret.name.startsWith('tokenizer-cred-'))
      .map((secret) => openedText(secret.value, openKey))
      .join('\n');
    expect(remaining).not.toContain(rawSecrets.stripe);
  });

  it('holds for credentials sealed for another sidecar, at deploy and after a rotation that keeps them', async () => {
    const request = litellmRequest();
    const before = await deploy(fullConfig, testContext('proxy-only', 13, [request]));
    scanContribution(before, [...allRaw, rawSecrets.openai]);
    const provider = createTokenizerProvider();
    const after = await provider.rotation.rotate(
      testContext('proxy-only', 17),
      stateOf(before),
      provider.rotation.changeSchema.parse({ credentials: [{ name: 'github', secret: '' }] }),
    );
    scanContribution(after, [rawSecrets.github, rawSecrets.openai]);
  });

  it('keeps the open key out of the agent container and every other plan object', async () => {
    const provider = createTokenizerProvider();
    const plan = await composePlanV2({
      spec: parseInstanceSpec({
        name: 'scan',
        target: 'local',
        agent: { image: 'localhost/keyward-agent-standin:0.1.0', port: 18789, skillsDirectory: '/skills' },
        sidecars: { tokenizer: fullConfig },
      }),
      sidecars: { getSidecar: (id) => (id === 'tokenizer' ? provider : undefined) },
      target: stubTarget(),
      randomBytes: createSeededRandomBytes(5),
    });
    const openKeySecret = plan.secrets.find((secret) => secret.name === 'tokenizer-open-key');
    const openKey = openKeySecret?.value as string;
    expect(openKey).toMatch(/^[0-9a-f]{64}$/);
    const rest = JSON.stringify({
      ...plan,
      secrets: plan.secrets.filter((secret) => secret !== openKeySecret),
    });
    expect(leaks(rest, openKey)).toBe(false);
    const agent = plan.containers.find((container) => container.name === 'agent');
    expect(agent?.secretMounts.map((mount) => mount.secret)).not.toContain('tokenizer-open-key');
    const tokenizer = plan.containers.find((container) => container.name === 'tokenizer');
    expect(tokenizer?.secretMounts).toEqual([
      {
        secret: 'tokenizer-open-key',
        delivery: { type: 'file', path: '/run/keyward/tokenizer/open-key', mode: 0o440 },
      },
    ]);
    for (const value of allRaw) expect(leaks(JSON.stringify(plan), value)).toBe(false);
    // The persisted spec carries no secrets at all.
    const redacted = JSON.stringify(plan.redactedSpec);
    for (const secret of plan.secrets) expect(leaks(redacted, secret.value)).toBe(false);
  });

  it('the scan itself detects a leak (it can fail)', () => {
    expect(
      leaks(
        JSON.stringify({ env: { X: Buffer.from(rawSecrets.github).toString('base64') } }),
        rawSecrets.github,
      ),
    ).toBe(true);
    expect(leaks(JSON.stringify({ file: `token ${rawSecrets.github}` }), rawSecrets.github)).toBe(true);
    expect(leaks(JSON.stringify({ file: pem }), pem)).toBe(true);
  });
});
