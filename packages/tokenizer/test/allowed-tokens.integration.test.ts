import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEntry } from '../src/audit-log.js';
import { type RunningTokenizerServer, startTokenizerServer } from '../src/proxy-server.js';
import { generateOpenKey, sealKeyFromOpenKey } from '../src/sealed-box.js';
import { bearerDigest, openSecret, sealSecret } from '../src/secret.js';
import type { SecretDefinition } from '../src/secret-json.js';
import { tokenDigest } from '../src/secret-resolver.js';
import { proxyRequest } from './proxy-client.js';
import { createLoopbackCertificates, type EchoServer, startEchoServer } from './tls-fixtures.js';

// The allow-list of issued tokens (keyward's extension): a client that holds the public seal
// key must not be able to seal its own token and use the proxy as an open egress.

const OPEN_KEY = generateOpenKey();
const SEAL_KEY = sealKeyFromOpenKey(OPEN_KEY);
const PASSWORD = 'agent-password-1';
const auth = { type: 'bearer' as const, digest: bearerDigest(PASSWORD) };
const proxyAuth = { 'Proxy-Authorization': `Bearer ${PASSWORD}` };

let echo: EchoServer;
let upstream: string;
let proxy: RunningTokenizerServer;
let issued: string;
let jwtToken: string;
const audit: AuditEntry[] = [];

beforeAll(async () => {
  const certificates = createLoopbackCertificates();
  echo = await startEchoServer(certificates);
  upstream = `127.0.0.1:${echo.port}`;
  issued = sealSecret(
    { processor: { type: 'inject', token: 'issued-secret-77' }, auth, allowedHosts: [upstream] },
    SEAL_KEY,
  );
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  jwtToken = sealSecret(
    {
      processor: {
        type: 'jwt',
        privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
        email: 'sa@example.iam',
        scopes: 'cloud',
        tokenUrl: `https://${upstream}/token`,
      },
      auth,
      allowedHosts: [upstream],
    },
    SEAL_KEY,
  );
  proxy = await startTokenizerServer({
    openKey: OPEN_KEY,
    listenAddress: '127.0.0.1:0',
    allowPrivateUpstreams: true,
    upstreamCa: certificates.caCertificatePem,
    allowedTokens: [tokenDigest(issued), `sha256:${tokenDigest(jwtToken).toUpperCase()}`],
    auditLog: (entry) => audit.push(entry),
    log: () => {},
  });
}, 60_000);

afterAll(async () => {
  await proxy?.close();
  await echo?.close();
});

const send = (token: string, path = '/echo', method = 'GET') =>
  proxyRequest(proxy.url, `http://${upstream}${path}`, {
    method,
    headers: { 'Proxy-Tokenizer': token, ...proxyAuth },
  });

describe('allowed tokens', () => {
  it('forwards a listed token with its credential injected', async () => {
    const response = await send(issued);
    expect(response.status).toBe(200);
    expect(JSON.parse(response.body).headers.authorization).toBe('Bearer issued-secret-77');
  });

  it('refuses a token the client sealed itself with the public seal key, before dialling anything', async () => {
    let reached = 0;
    echo.routes.set('/self-sealed', () => {
      reached++;
      return { status: 200, body: 'should not get here' };
    });
    const forged: SecretDefinition = {
      processor: { type: 'inject', token: 'anything' },
      auth: { type: 'none' },
    };
    const token = sealSecret(forged, SEAL_KEY);
    const response = await send(token, '/self-sealed');
    expect(response.status).toBe(407);
    expect(response.body).toBe('unauthorized to use secret: not authorized: token not issued for this proxy');
    expect(reached).toBe(0);
    const entry = audit.findLast((line) => line.path === '/self-sealed');
    expect(entry).toMatchObject({ status: 407, decision: 'denied', error: 'TOKEN_NOT_ALLOWED' });
    expect(entry?.credentials).toEqual([tokenDigest(token).slice(0, 16)]);
  });

  it('accepts the tokens it mints in a token exchange, which the public seal key cannot produce', async () => {
    echo.routes.set('/token', () => ({
      status: 200,
      body: JSON.stringify({ access_token: 'ya29.minted-access', expires_in: 3600, token_type: 'Bearer' }),
    }));
    const exchange = await send(jwtToken, '/token', 'POST');
    expect(exchange.status).toBe(200);
    const minted = (JSON.parse(exchange.body) as { sealed_token: string }).sealed_token;
    // Sealed to the proxy's unpublished mint key, not to the published seal key.
    expect(() => openSecret(minted, OPEN_KEY)).toThrow(/decryption/);
    const used = await send(minted);
    expect(used.status).toBe(200);
    expect(JSON.parse(used.body).headers.authorization).toBe('Bearer ya29.minted-access');
    // The minted token keeps its parent's auth.
    const wrongPassword = await proxyRequest(proxy.url, `http://${upstream}/echo`, {
      headers: { 'Proxy-Tokenizer': minted, 'Proxy-Authorization': 'Bearer wrong' },
    });
    expect(wrongPassword.status).toBe(407);
  });

  it('refuses a malformed list entry at start-up with a message that says what to write', async () => {
    await expect(
      startTokenizerServer({ openKey: OPEN_KEY, listenAddress: '127.0.0.1:0', allowedTokens: ['abc'] }),
    ).rejects.toThrow(/allowed token 1 is not a SHA-256 digest/);
  });
});
