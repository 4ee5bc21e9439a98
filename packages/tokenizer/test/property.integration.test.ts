import { Agent } from 'node:http';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningTokenizerServer, startTokenizerServer } from '../src/proxy-server.js';
import { generateOpenKey, seal, sealKeyFromOpenKey } from '../src/sealed-box.js';
import { bearerDigest, sealSecret } from '../src/secret.js';
import { parseSecret } from '../src/secret-json.js';
import { proxyRequest } from './proxy-client.js';
import { createLoopbackCertificates, type EchoServer, startEchoServer } from './tls-fixtures.js';

// Random and mutated headers and Secret JSON against the real proxy and a real HTTPS upstream:
// the proxy never crashes, never answers 2xx without valid auth, never echoes a secret.

const OPEN_KEY = generateOpenKey();
const SEAL_KEY = sealKeyFromOpenKey(OPEN_KEY);
const SECRET = 'credential-7d1e0a3c';
const PROXY_TOKEN = 'proxy-token-55aa';
const VALID_TOKEN = sealSecret(
  {
    processor: { type: 'inject', token: SECRET },
    auth: { type: 'bearer', digest: bearerDigest(PROXY_TOKEN) },
  },
  SEAL_KEY,
);
const logged: string[] = [];

let echo: EchoServer;
let proxy: RunningTokenizerServer;
let upstream: string;
const agent = new Agent({ keepAlive: true, maxSockets: 4 });

beforeAll(async () => {
  const certificates = createLoopbackCertificates();
  echo = await startEchoServer(certificates);
  upstream = `127.0.0.1:${echo.port}`;
  proxy = await startTokenizerServer({
    openKey: OPEN_KEY,
    listenAddress: '127.0.0.1:0',
    allowPrivateUpstreams: true,
    upstreamCa: certificates.caCertificatePem,
    auditLog: (entry) => logged.push(JSON.stringify(entry)),
    log: (_level, message, fields) => logged.push(message + JSON.stringify(fields)),
    debug: true,
  });
}, 60_000);

afterAll(async () => {
  agent.destroy();
  await proxy?.close();
  await echo?.close();
});

// Header values Node's client accepts (no CR/LF/control characters).
const headerValue = fc.string({
  unit: fc.constantFrom(...'abcXYZ019 +/=;:{}"\',-_.%@\t'.split('')),
  maxLength: 60,
});

/** A valid token with a random edit: flip, cut, insert, case change. */
const mutatedToken = fc
  .tuple(
    fc.nat({ max: VALID_TOKEN.length - 1 }),
    fc.constantFrom('flip', 'cut', 'insert', 'upper', 'swap'),
    headerValue,
  )
  .map(([position, edit, text]) => {
    switch (edit) {
      case 'flip':
        return (
          VALID_TOKEN.slice(0, position) +
          (VALID_TOKEN[position] === 'A' ? 'B' : 'A') +
          VALID_TOKEN.slice(position + 1)
        );
      case 'cut':
        return VALID_TOKEN.slice(0, position);
      case 'insert':
        return VALID_TOKEN.slice(0, position) + text + VALID_TOKEN.slice(position);
      case 'upper':
        return VALID_TOKEN.toUpperCase();
      default:
        return VALID_TOKEN.replaceAll('/', '_');
    }
  });

const tokenizerHeader = fc.oneof(
  headerValue,
  mutatedToken,
  fc
    .tuple(fc.oneof(mutatedToken, fc.constant(VALID_TOKEN)), headerValue)
    .map(([token, params]) => `${token}; ${params}`),
  fc.constant(`${VALID_TOKEN}; {"dst":"X-Echo"}`),
);
const authorizationHeader = fc.oneof(
  headerValue,
  headerValue.map((value) => `Bearer ${value}`),
  headerValue.map((value) => `Basic ${Buffer.from(`x:${value}`).toString('base64')}`),
  fc.constant(`Bearer ${PROXY_TOKEN.toUpperCase()}`),
  fc.constant(`Bearer ${PROXY_TOKEN} `),
);

function assertNoLeak(body: string) {
  expect(body).not.toContain(SECRET);
  expect(body).not.toContain(PROXY_TOKEN);
  expect(body).not.toContain(OPEN_KEY);
}

describe('property: random and mutated headers', () => {
  it('never crashes, never 2xx without the right token pair, never leaks', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(tokenizerHeader, { maxLength: 3 }),
        fc.array(authorizationHeader, { maxLength: 2 }),
        fc.dictionary(
          fc.constantFrom('X-Any', 'Authorization', 'Host', 'Content-Type', 'Fly-Src'),
          headerValue,
          { maxKeys: 2 },
        ),
        async (tokenizer, authorization, extra) => {
          const headers: Record<string, string | string[]> = { ...extra };
          if (tokenizer.length > 0) headers['Proxy-Tokenizer'] = tokenizer;
          if (authorization.length > 0) headers['Proxy-Authorization'] = authorization;
          const response = await proxyRequest(proxy.url, `http://${upstream}/echo`, { headers, agent });
          expect([200, 400, 407, 502]).toContain(response.status);
          // Every sealed part (before the first `;`) must be the untouched token.
          const allValid =
            tokenizer.length > 0 && tokenizer.every((line) => line.split(';')[0]?.trim() === VALID_TOKEN);
          // HTTP parsers (Node's and Go's) strip trailing whitespace from header values.
          const authorized = authorization.some((line) => line.trimEnd() === `Bearer ${PROXY_TOKEN}`);
          if (response.status === 200) {
            // 2xx only for an unmodified token and the right proxy token, on the right Host.
            expect(allValid && authorized).toBe(true);
          } else {
            assertNoLeak(response.body);
          }
        },
      ),
      { numRuns: 250 },
    );
    // Still serving after the barrage.
    const after = await proxyRequest(proxy.url, `http://${upstream}/echo`, {
      headers: { 'Proxy-Tokenizer': VALID_TOKEN, 'Proxy-Authorization': `Bearer ${PROXY_TOKEN}` },
      agent,
    });
    expect(after.status).toBe(200);
  });
});

/** Random Secret JSON: real keys mixed with random shapes and values. */
const jsonValue = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.constantFrom(
      '',
      SECRET,
      'sha256',
      '%s',
      'Bearer %s',
      'X-Key',
      bearerDigest(PROXY_TOKEN),
      'AA==',
      '^a$',
      '(',
      `${upstream}`,
    ),
    fc.array(tie('value'), { maxLength: 3 }),
    fc.dictionary(
      fc.constantFrom(
        'token',
        'fmt',
        'dst',
        'allowed_dst',
        'allowed_fmt',
        'digest',
        'key',
        'hash',
        'access_token',
        'Token',
        'x',
      ),
      tie('value'),
      { maxKeys: 4 },
    ),
  ),
})).value;

const secretJson = fc
  .dictionary(
    fc.constantFrom(
      'inject_processor',
      'INJECT_PROCESSOR',
      'inject_hmac_processor',
      'oauth2_processor',
      'multi_processor',
      'inject_body_processor',
      'bearer_auth',
      'no_auth',
      'macaroon_auth',
      'allowed_hosts',
      'allowed_host_pattern',
      'junk',
    ),
    jsonValue,
    { maxKeys: 5 },
  )
  .map((object) => JSON.stringify(object));

describe('property: random Secret JSON', () => {
  it('answers with a defined status, 2xx only when the secret needs no auth, never leaks', async () => {
    await fc.assert(
      fc.asyncProperty(secretJson, fc.boolean(), async (json, sendAuth) => {
        const token = seal(json, SEAL_KEY);
        const headers: Record<string, string> = { 'Proxy-Tokenizer': token };
        if (sendAuth) headers['Proxy-Authorization'] = 'Bearer wrong-token';
        const response = await proxyRequest(proxy.url, `http://${upstream}/echo`, { headers, agent });
        expect([200, 400, 407, 502]).toContain(response.status);
        if (response.status === 200) {
          // No valid proxy token was sent, so only a no_auth secret may pass.
          expect(parseSecret(json).auth.type).toBe('none');
        } else {
          assertNoLeak(response.body);
        }
      }),
      { numRuns: 250 },
    );
  });

  it('never writes a secret value to the audit or operational log', () => {
    const everything = logged.join('\n');
    expect(logged.length).toBeGreaterThan(400);
    assertNoLeak(everything);
  });
});
