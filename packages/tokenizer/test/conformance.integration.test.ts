import { generateKeyPairSync } from 'node:crypto';
import { Agent } from 'node:http';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEntry } from '../src/audit-log.js';
import { createTokenizerMacaroon } from '../src/macaroon-auth.js';
import { type RunningTokenizerServer, startTokenizerServer } from '../src/proxy-server.js';
import { generateOpenKey, sealKeyFromOpenKey } from '../src/sealed-box.js';
import { bearerDigest, openSecret, sealSecret } from '../src/secret.js';
import type { ProcessorDefinition, SecretDefinition } from '../src/secret-json.js';
import { proxyRequest } from './proxy-client.js';
import {
  createLoopbackCertificates,
  type EchoedRequest,
  type EchoServer,
  startEchoServer,
} from './tls-fixtures.js';

// Every row of the protocol's §5 conformance checklist, through the real proxy to a real
// HTTPS server on loopback (certificate from a CA made for this run).

const OPEN_KEY = generateOpenKey();
const SEAL_KEY = sealKeyFromOpenKey(OPEN_KEY);
const SECRET_TOKEN = 'supersecret-9f27c1';
const PROXY_TOKEN = 'trustno1';
const auth = { type: 'bearer' as const, digest: bearerDigest(PROXY_TOKEN) };
const goodAuth = { 'Proxy-Authorization': `Bearer ${PROXY_TOKEN}` };

let echo: EchoServer;
let proxy: RunningTokenizerServer;
let untrustingProxy: RunningTokenizerServer;
let strictProxy: RunningTokenizerServer;
let transparentProxy: RunningTokenizerServer;
let upstream: string;
const audit: AuditEntry[] = [];
const operationalLog: string[] = [];

function seal(processor: ProcessorDefinition, extra: Partial<SecretDefinition> = {}): string {
  return sealSecret({ processor, auth, ...extra }, SEAL_KEY);
}

const injectToken = () => seal({ type: 'inject', token: SECRET_TOKEN });

async function send(
  headers: Record<string, string | string[]>,
  options: {
    path?: string;
    method?: string;
    body?: string;
    via?: RunningTokenizerServer;
    target?: string;
  } = {},
) {
  const target = options.target ?? `http://${upstream}${options.path ?? '/echo'}`;
  const response = await proxyRequest((options.via ?? proxy).url, target, {
    headers,
    ...(options.method ? { method: options.method } : {}),
    ...(options.body !== undefined ? { body: options.body } : {}),
  });
  const echoed =
    response.status === 200 && response.body.startsWith('{"method"')
      ? (JSON.parse(response.body) as EchoedRequest)
      : undefined;
  return { ...response, echoed };
}

/** Upstream headers minus what any HTTP client adds on its own. */
function injected(echoed: EchoedRequest | undefined): Record<string, string | string[]> {
  const {
    host,
    connection,
    'content-length': _length,
    'transfer-encoding': _encoding,
    ...rest
  } = echoed?.headers ?? {};
  void host;
  void connection;
  return rest;
}

beforeAll(async () => {
  const certificates = createLoopbackCertificates();
  echo = await startEchoServer(certificates);
  upstream = `127.0.0.1:${echo.port}`;
  const common = {
    openKey: OPEN_KEY,
    listenAddress: '127.0.0.1:0',
    auditLog: (entry: AuditEntry) => audit.push(entry),
    log: (_level: string, message: string, fields?: Record<string, unknown>) =>
      operationalLog.push(JSON.stringify({ message, fields })),
    debug: true,
  };
  proxy = await startTokenizerServer({
    ...common,
    adminListenAddress: '127.0.0.1:0',
    allowPrivateUpstreams: true,
    upstreamCa: certificates.caCertificatePem,
    filteredHeaders: ['X-Filtered', ' fly-client-ip '],
    maxBodyBytes: 1024 * 1024,
  });
  untrustingProxy = await startTokenizerServer({ ...common, allowPrivateUpstreams: true });
  strictProxy = await startTokenizerServer({ ...common, upstreamCa: certificates.caCertificatePem });
  transparentProxy = await startTokenizerServer({
    ...common,
    allowPrivateUpstreams: true,
    upstreamCa: certificates.caCertificatePem,
    tokenizerHostnames: ['tokenizer.internal'],
  });
}, 60_000);

afterAll(async () => {
  await Promise.all([
    proxy?.close(),
    untrustingProxy?.close(),
    strictProxy?.close(),
    transparentProxy?.close(),
  ]);
  await echo?.close();
});

describe('§5.1 upstream TLS', () => {
  it('answers 502 when the upstream certificate is not trusted', async () => {
    const response = await send({ 'Proxy-Tokenizer': injectToken(), ...goodAuth }, { via: untrustingProxy });
    expect(response.status).toBe(502);
    expect(response.body).toContain('upstream request failed');
    expect(response.body).not.toContain(SECRET_TOKEN);
  });
});

describe('§5.2 no secrets', () => {
  it('answers 400 bad request for a request with only proxy auth', async () => {
    const response = await send(goodAuth);
    expect(response.status).toBe(400);
    expect(response.body).toBe('bad request');
  });
});

describe('§5.3 inject_processor', () => {
  it('407 without Proxy-Authorization', async () => {
    const response = await send({ 'Proxy-Tokenizer': injectToken() });
    expect(response.status).toBe(407);
    expect(response.body).toBe('unauthorized to use secret: not authorized: bad or missing proxy auth');
  });

  it('407 with the wrong proxy token', async () => {
    expect(
      (await send({ 'Proxy-Tokenizer': injectToken(), 'Proxy-Authorization': 'Bearer nope' })).status,
    ).toBe(407);
  });

  it('injects only Authorization and strips the proxy headers', async () => {
    const response = await send({ 'Proxy-Tokenizer': injectToken(), ...goodAuth });
    expect(response.status).toBe(200);
    expect(injected(response.echoed)).toEqual({ authorization: `Bearer ${SECRET_TOKEN}` });
    expect(response.echoed?.headers.host).toBe(upstream);
  });

  it('honours the dst param', async () => {
    const response = await send({ 'Proxy-Tokenizer': `${injectToken()}; {"dst":"Foo"}`, ...goodAuth });
    expect(injected(response.echoed)).toEqual({ foo: `Bearer ${SECRET_TOKEN}` });
  });

  it('honours the fmt param', async () => {
    const response = await send({ 'Proxy-Tokenizer': `${injectToken()}; {"fmt":"Other %s"}`, ...goodAuth });
    expect(injected(response.echoed)).toEqual({ authorization: `Other ${SECRET_TOKEN}` });
  });

  it('refuses CONNECT (upstream #56)', async () => {
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(new URL(proxy.url).port), '127.0.0.1', () => {
        socket.write(
          `CONNECT ${upstream} HTTP/1.1\r\nHost: ${upstream}\r\nProxy-Tokenizer: ${injectToken()}\r\nProxy-Authorization: Bearer ${PROXY_TOKEN}\r\n\r\n`,
        );
      });
      let data = '';
      socket.on('data', (chunk) => {
        data += chunk.toString();
      });
      socket.on('end', () => resolve(data));
      socket.on('error', reject);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(answer).toMatch(/\r\nconnection: close\r\n/i);
    expect(answer).toContain('CONNECT is not supported');
  });

  it('accepts a good and a bogus Proxy-Authorization together', async () => {
    const response = await send({
      'Proxy-Tokenizer': injectToken(),
      'Proxy-Authorization': ['Bearer bogus', `Bearer ${PROXY_TOKEN}`],
    });
    expect(response.status).toBe(200);
  });

  it('407 when one of two secrets has an unmet bearer', async () => {
    const other = sealSecret(
      {
        processor: { type: 'inject', token: 'B', dst: 'X-B' },
        auth: { type: 'bearer', digest: bearerDigest('other') },
      },
      SEAL_KEY,
    );
    expect((await send({ 'Proxy-Tokenizer': [injectToken(), other], ...goodAuth })).status).toBe(407);
  });
});

describe('§5.4 inject_hmac_processor', () => {
  const hmacToken = (extra: Partial<{ fmt: string; dst: string }> = {}) =>
    seal({ type: 'inject_hmac', key: 'trustno2', hash: 'sha256', ...extra });

  it('signs the body and forwards it intact', async () => {
    const response = await send(
      { 'Proxy-Tokenizer': hmacToken(), ...goodAuth },
      { method: 'POST', body: 'foo' },
    );
    expect(injected(response.echoed).authorization).toBe(
      'Bearer d3ac69dec42b3b896fbde93c8e15b2ab997a947703558deb5ae44a70d76c4e12',
    );
    expect(response.echoed?.body).toBe('foo');
  });

  it('signs the msg param instead of the body', async () => {
    const response = await send({ 'Proxy-Tokenizer': `${hmacToken()}; {"msg":"my payload"}`, ...goodAuth });
    expect(injected(response.echoed).authorization).toBe(
      'Bearer af081a4fb8f0b77b53c01f3230c13e7553dec7813235fcc2921ebd11fe3e925f',
    );
  });

  it('honours dst and %X', async () => {
    const response = await send(
      { 'Proxy-Tokenizer': `${hmacToken()}; {"dst":"Foo","fmt":"%X"}`, ...goodAuth },
      { method: 'POST', body: 'foo' },
    );
    expect(injected(response.echoed)).toEqual({
      foo: 'D3AC69DEC42B3B896FBDE93C8E15B2AB997A947703558DEB5AE44A70D76C4E12',
    });
  });

  it('400 for a string fmt on a binary secret, 502 for a missing hash', async () => {
    expect((await send({ 'Proxy-Tokenizer': `${hmacToken()}; {"fmt":"%s"}`, ...goodAuth })).status).toBe(400);
    const noHash = sealSecret({ processor: { type: 'inject_hmac', key: 'k', hash: '' }, auth }, SEAL_KEY);
    const response = await send({ 'Proxy-Tokenizer': noHash, ...goodAuth });
    expect(response.status).toBe(502);
    expect(response.body).toBe('unsupported hash function: ');
  });
});

describe('§5.5 oauth2_processor', () => {
  const oauth = () => seal({ type: 'oauth2', token: { accessToken: 'ACCESS', refreshToken: 'REFRESH' } });
  it.each([
    ['', 'ACCESS'],
    ['; {"st":"access"}', 'ACCESS'],
    ['; {"st":"refresh"}', 'REFRESH'],
  ])('params %j → %s', async (params, expected) => {
    const response = await send({ 'Proxy-Tokenizer': `${oauth()}${params}`, ...goodAuth });
    expect(injected(response.echoed)).toEqual({ authorization: `Bearer ${expected}` });
  });

  it('body mode with a placeholder sets no header', async () => {
    const response = await send(
      { 'Proxy-Tokenizer': `${oauth()}; {"placeholder":"@T@"}`, ...goodAuth, 'Content-Type': 'text/plain' },
      { method: 'POST', body: 'a=@T@&b=@T@' },
    );
    expect(response.echoed?.body).toBe('a=ACCESS&b=ACCESS');
    expect(injected(response.echoed).authorization).toBeUndefined();
  });

  it('502 missing token when the token object is absent (Go would crash)', async () => {
    const { seal: rawSeal } = await import('../src/sealed-box.js');
    const json = `{"oauth2_processor":{},"bearer_auth":{"digest":"${auth.digest}"}}`;
    const response = await send({ 'Proxy-Tokenizer': rawSeal(json, SEAL_KEY), ...goodAuth });
    expect(response.status).toBe(502);
    expect(response.body).toBe('missing token');
  });
});

describe('§5.6–5.7 host validators', () => {
  it('allowed_hosts with the exact host:port passes; another name is refused', async () => {
    const token = seal({ type: 'inject', token: SECRET_TOKEN }, { allowedHosts: [upstream] });
    expect((await send({ 'Proxy-Tokenizer': token, ...goodAuth })).status).toBe(200);
    const other = await send(
      { 'Proxy-Tokenizer': token, ...goodAuth },
      { target: `http://localhost:${echo.port}/echo` },
    );
    expect(other.status).toBe(400);
    expect(other.body).toBe(
      `request validator failed: bad request: secret not valid for localhost:${echo.port}`,
    );
  });

  it('the host comparison includes the port', async () => {
    const token = seal({ type: 'inject', token: SECRET_TOKEN }, { allowedHosts: ['127.0.0.1'] });
    expect((await send({ 'Proxy-Tokenizer': token, ...goodAuth })).status).toBe(400);
  });

  it('allowed_host_pattern ^host:port$ passes; another host is refused', async () => {
    const pattern = `^127\\.0\\.0\\.1:${echo.port}$`;
    const token = seal({ type: 'inject', token: SECRET_TOKEN }, { allowedHostPattern: pattern });
    expect((await send({ 'Proxy-Tokenizer': token, ...goodAuth })).status).toBe(200);
    expect(
      (
        await send(
          { 'Proxy-Tokenizer': token, ...goodAuth },
          { target: `http://localhost:${echo.port}/echo` },
        )
      ).status,
    ).toBe(400);
  });

  it('an empty allowed_hosts denies everything', async () => {
    const token = seal({ type: 'inject', token: SECRET_TOKEN }, { allowedHosts: [] });
    expect((await send({ 'Proxy-Tokenizer': token, ...goodAuth })).status).toBe(400);
  });

  it('hosts and pattern are ANDed', async () => {
    const token = seal(
      { type: 'inject', token: SECRET_TOKEN },
      { allowedHosts: [upstream], allowedHostPattern: '^nope$' },
    );
    expect((await send({ 'Proxy-Tokenizer': token, ...goodAuth })).status).toBe(400);
  });

  it('an invalid RE2 pattern is bad secret json (502)', async () => {
    const token = seal({ type: 'inject', token: SECRET_TOKEN }, { allowedHostPattern: '*.fly.dev' });
    const response = await send({ 'Proxy-Tokenizer': token, ...goodAuth });
    expect(response.status).toBe(502);
    expect(response.body).toMatch(/^bad secret json: error parsing regexp/);
  });
});

describe('§5.8 dst allowlist', () => {
  const token = () => seal({ type: 'inject', token: SECRET_TOKEN, allowedDst: ['asdf', 'qwer'] });
  it('defaults to the first entry, canonicalised', async () => {
    const response = await send({ 'Proxy-Tokenizer': token(), ...goodAuth });
    expect(injected(response.echoed)).toEqual({ asdf: `Bearer ${SECRET_TOKEN}` });
    expect(response.echoed?.headers).not.toHaveProperty('authorization');
  });
  it('matches params case-insensitively', async () => {
    const response = await send({ 'Proxy-Tokenizer': `${token()}; {"dst":"qWeR"}`, ...goodAuth });
    expect(injected(response.echoed)).toEqual({ qwer: `Bearer ${SECRET_TOKEN}` });
  });
  it('refuses another header with 400 bad request', async () => {
    const response = await send({ 'Proxy-Tokenizer': `${token()}; {"dst":"zxcv"}`, ...goodAuth });
    expect(response.status).toBe(400);
    expect(response.body).toBe('bad request');
  });
  it.each(['Host', 'connection', 'Transfer-Encoding', 'Content-Length', 'Proxy-Authorization'])(
    'refuses the reserved dst %s with 400',
    async (dst) => {
      const response = await send({ 'Proxy-Tokenizer': `${injectToken()}; {"dst":"${dst}"}`, ...goodAuth });
      expect(response.status).toBe(400);
      expect(response.body).toBe('bad request');
    },
  );
  it('refuses a credential that would smuggle CR/LF into a header with 502', async () => {
    const token = seal({ type: 'inject', token: 'abc\r\nX-Evil: 1', fmt: '%s' });
    const response = await send({ 'Proxy-Tokenizer': token, ...goodAuth });
    expect(response.status).toBe(502);
    expect(response.body).not.toContain('abc');
  });
  it('refuses a fmt outside the config with 502 bad fmt', async () => {
    const fixed = seal({ type: 'inject', token: SECRET_TOKEN, fmt: 'Bearer %s' });
    const response = await send({ 'Proxy-Tokenizer': `${fixed}; {"fmt":"%s"}`, ...goodAuth });
    expect(response.status).toBe(502);
    expect(response.body).toBe('bad fmt');
  });
});

describe('§5.9 macaroon auth', () => {
  const key = 'macaroon-root-key';
  const token = () =>
    sealSecret(
      { processor: { type: 'inject', token: SECRET_TOKEN }, auth: { type: 'macaroon', key } },
      SEAL_KEY,
    );
  const flyV1 = (macaroon: string) => ({ 'Proxy-Authorization': `FlyV1 ${macaroon}` });

  it('an empty-caveat macaroon passes', async () => {
    const response = await send({ 'Proxy-Tokenizer': token(), ...flyV1(createTokenizerMacaroon(key)) });
    expect(response.status).toBe(200);
    expect(injected(response.echoed)).toEqual({ authorization: `Bearer ${SECRET_TOKEN}` });
  });

  it('method POST, host and path /foo caveats pass for a matching request', async () => {
    const macaroon = createTokenizerMacaroon(key, { methods: ['POST'], hosts: [upstream], paths: ['/foo'] });
    const response = await send(
      { 'Proxy-Tokenizer': token(), ...flyV1(macaroon) },
      { method: 'POST', path: '/foo', body: '' },
    );
    expect(response.status).toBe(200);
  });

  it.each([[{ methods: ['GET'] }], [{ hosts: ['other.example:1'] }], [{ paths: ['/bar'] }]])(
    'mismatched caveats %j → 407',
    async (caveats) => {
      const macaroon = createTokenizerMacaroon(key, {
        methods: ['POST'],
        hosts: [upstream],
        paths: ['/foo'],
        ...caveats,
      });
      const response = await send(
        { 'Proxy-Tokenizer': token(), ...flyV1(macaroon) },
        { method: 'POST', path: '/foo', body: '' },
      );
      expect(response.status).toBe(407);
    },
  );

  it('a macaroon for another key → 407', async () => {
    const response = await send({
      'Proxy-Tokenizer': token(),
      ...flyV1(createTokenizerMacaroon('other-key')),
    });
    expect(response.status).toBe(407);
  });
});

describe('§5.10 auths that only work inside Fly.io', () => {
  it.each([
    [{ type: 'flyio_macaroon' as const, access: { action: 'r' } }, 'only works inside Fly.io'],
    [{ type: 'fly_src' as const, allowedOrgs: ['foo'] }, 'no flysrc parser'],
  ])('%j is refused with 407 and a clear message', async (authDefinition, message) => {
    const token = sealSecret(
      { processor: { type: 'inject', token: SECRET_TOKEN }, auth: authDefinition },
      SEAL_KEY,
    );
    const response = await send({ 'Proxy-Tokenizer': token, 'Proxy-Authorization': 'FlyV1 fm2_abc' });
    expect(response.status).toBe(407);
    expect(response.body).toContain(message);
  });
});

describe('§5.11 jwt two-step and other token exchanges', () => {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

  it('exchanges a JWT assertion for a sealed token that then injects the access token', async () => {
    echo.routes.set('/token', (request) => {
      const form = new URLSearchParams(request.body);
      const ok =
        form.get('grant_type') === 'urn:ietf:params:oauth:grant-type:jwt-bearer' && form.get('assertion');
      return ok
        ? {
            status: 200,
            body: JSON.stringify({
              access_token: 'ya29.test-access-token',
              expires_in: 3600,
              token_type: 'Bearer',
            }),
          }
        : { status: 400, body: 'bad form' };
    });
    const jwtToken = seal(
      {
        type: 'jwt',
        privateKey: pem,
        email: 'sa@example.iam',
        scopes: 'cloud',
        tokenUrl: `https://${upstream}/token`,
      },
      { allowedHosts: [upstream] },
    );
    const exchange = await send(
      { 'Proxy-Tokenizer': jwtToken, ...goodAuth },
      { path: '/token', method: 'POST' },
    );
    expect(exchange.status).toBe(200);
    const answer = JSON.parse(exchange.body) as {
      sealed_token: string;
      expires_in: number;
      token_type: string;
    };
    expect(answer.token_type).toBe('sealed');
    expect(answer.expires_in).toBe(3540);
    expect(exchange.body).not.toContain('ya29');
    const opened = openSecret(answer.sealed_token, OPEN_KEY);
    expect(opened).toEqual({
      processor: { type: 'inject', token: 'ya29.test-access-token' },
      auth,
      allowedHosts: [upstream],
    });
    const used = await send({ 'Proxy-Tokenizer': answer.sealed_token, ...goodAuth });
    expect(injected(used.echoed)).toEqual({ authorization: 'Bearer ya29.test-access-token' });
    expect(
      (await send({ 'Proxy-Tokenizer': answer.sealed_token, 'Proxy-Authorization': 'Bearer x' })).status,
    ).toBe(407);
  });

  it('passes a non-200 token response through untouched', async () => {
    echo.routes.set('/denied', () => ({ status: 401, body: '{"error":"invalid_grant"}' }));
    const token = seal({
      type: 'client_credentials',
      clientId: 'id',
      clientSecret: 'cs-secret',
      tokenUrl: 'https://x/t',
    });
    const response = await send(
      { 'Proxy-Tokenizer': token, ...goodAuth },
      { path: '/denied', method: 'POST' },
    );
    expect(response.status).toBe(401);
    expect(response.body).toBe('{"error":"invalid_grant"}');
  });

  it('client_credentials sends the form and seals the answer', async () => {
    let received = '';
    echo.routes.set('/cc', (request) => {
      received = request.body;
      return { status: 200, body: JSON.stringify({ access_token: 'cc-access', expires_in: 30 }) };
    });
    const token = seal({
      type: 'client_credentials',
      clientId: 'id 1',
      clientSecret: 'cs-secret',
      tokenUrl: 'https://x/t',
      scopes: 'a b',
    });
    const response = await send(
      { 'Proxy-Tokenizer': token, ...goodAuth },
      { path: '/cc', method: 'POST', body: 'ignored' },
    );
    expect(received).toBe('client_id=id+1&client_secret=cs-secret&grant_type=client_credentials&scope=a+b');
    const answer = JSON.parse(response.body) as { sealed_token: string; expires_in: number };
    expect(answer.expires_in).toBe(30);
    expect(openSecret(answer.sealed_token, OPEN_KEY).processor).toEqual({
      type: 'inject',
      token: 'cc-access',
    });
  });

  it('github_app rewrites the path, signs a JWT and pins the answer to api.github.com', async () => {
    let seen: EchoedRequest | undefined;
    echo.routes.set('/app/installations/789012/access_tokens', (request) => {
      seen = request;
      return {
        status: 201,
        body: JSON.stringify({
          token: 'ghs_abc',
          expires_at: new Date(Date.now() + 3_600_000).toISOString(),
        }),
      };
    });
    const token = seal({ type: 'github_app', privateKey: pem, appId: '123', installationId: '789012' });
    const response = await send(
      { 'Proxy-Tokenizer': token, ...goodAuth },
      { path: '/anything?x=1', method: 'POST', body: 'drop me' },
    );
    expect(response.status).toBe(201);
    expect(seen?.path).toBe('/app/installations/789012/access_tokens?x=1');
    expect(seen?.body).toBe('');
    expect(seen?.headers['x-github-api-version']).toBe('2022-11-28');
    const jwt = String(seen?.headers.authorization).replace('Bearer ', '').split('.');
    expect(JSON.parse(Buffer.from(jwt[0] as string, 'base64url').toString())).toEqual({
      alg: 'RS256',
      typ: 'JWT',
    });
    const claims = JSON.parse(Buffer.from(jwt[1] as string, 'base64url').toString()) as Record<
      string,
      number | string
    >;
    expect(claims.iss).toBe('123');
    expect(Number(claims.exp) - Number(claims.iat)).toBe(600);
    const answer = JSON.parse(response.body) as { sealed_token: string; expires_in: number };
    expect(openSecret(answer.sealed_token, OPEN_KEY)).toEqual({
      processor: { type: 'inject', token: 'ghs_abc', fmt: 'token %s' },
      auth,
      allowedHosts: ['api.github.com'],
    });
    expect(answer.expires_in).toBeGreaterThan(3400);
  });
});

describe('§5.12 multi_processor', () => {
  const multi = () =>
    seal({
      type: 'multi',
      processors: [
        { type: 'inject', token: 'A', dst: 'X-A', fmt: '%s' },
        { type: 'inject', token: 'B', dst: 'X-B', fmt: '%s' },
      ],
    });
  it('407 without or with bad auth', async () => {
    expect((await send({ 'Proxy-Tokenizer': multi() })).status).toBe(407);
    expect((await send({ 'Proxy-Tokenizer': multi(), 'Proxy-Authorization': 'Bearer no' })).status).toBe(407);
  });
  it('applies both members', async () => {
    const response = await send({ 'Proxy-Tokenizer': multi(), ...goodAuth });
    expect(injected(response.echoed)).toEqual({ 'x-a': 'A', 'x-b': 'B' });
  });
  it('an empty multi still counts as a processor', async () => {
    const response = await send({ 'Proxy-Tokenizer': seal({ type: 'multi', processors: [] }), ...goodAuth });
    expect(response.status).toBe(200);
    expect(injected(response.echoed)).toEqual({});
  });
});

describe('body injection, sigv4', () => {
  it('inject_body replaces every placeholder, streamed and chunked', async () => {
    const token = seal({ type: 'inject_body', token: 'BODYTOKEN' });
    const body = `${'{{ACCESS_TOKEN}}-'.repeat(10_000)}end`;
    const response = await send({ 'Proxy-Tokenizer': token, ...goodAuth }, { method: 'POST', body });
    expect(response.echoed?.body).toBe(`${'BODYTOKEN-'.repeat(10_000)}end`);
    expect(response.echoed?.headers['transfer-encoding']).toBe('chunked');
  });

  it('sigv4 re-signs with region and service swapped unless no_swap', async () => {
    const signed = (noSwap: boolean) =>
      send(
        {
          'Proxy-Tokenizer': seal({ type: 'sigv4', accessKey: 'AKIDREAL', secretKey: 'secret-key', noSwap }),
          ...goodAuth,
          Authorization:
            'AWS4-HMAC-SHA256 Credential=AKIDFAKE/20240101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=x',
          'X-Amz-Date': '20240101T120000Z',
          'X-Amz-Content-Sha256': 'UNSIGNED-PAYLOAD',
        },
        { path: '/bucket/key' },
      );
    const swapped = String((await signed(false)).echoed?.headers.authorization);
    expect(swapped).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDREAL\/20240101\/s3\/us-east-1\/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=[0-9a-f]{64}$/,
    );
    const kept = String((await signed(true)).echoed?.headers.authorization);
    expect(kept).toContain('Credential=AKIDREAL/20240101/us-east-1/s3/aws4_request');
    const missing = await send({
      'Proxy-Tokenizer': seal({ type: 'sigv4', accessKey: 'A', secretKey: 'S' }),
      ...goodAuth,
    });
    expect(missing.status).toBe(400);
  });
});

describe('header parsing and the 400/502 split', () => {
  it('400 for an empty secret part', async () => {
    const response = await send({ 'Proxy-Tokenizer': ' ; {"dst":"x"}', ...goodAuth });
    expect(response.status).toBe(400);
    expect(response.body).toBe('bad request: bad tokenizer header');
  });
  it('null params are fine; non-string params are 400', async () => {
    expect((await send({ 'Proxy-Tokenizer': `${injectToken()}; null`, ...goodAuth })).status).toBe(200);
    const response = await send({ 'Proxy-Tokenizer': `${injectToken()}; {"dst":1}`, ...goodAuth });
    expect(response.status).toBe(400);
    expect(response.body).toBe('bad request: json: cannot unmarshal number into Go value of type string');
  });
  it('a comma-joined header breaks base64 (502)', async () => {
    const response = await send({ 'Proxy-Tokenizer': `${injectToken()}, ${injectToken()}`, ...goodAuth });
    expect(response.status).toBe(502);
    expect(response.body).toMatch(/^bad Proxy-Tokenizer encoding: illegal base64 data at input byte \d+$/);
  });
  it('502 for URL-safe base64, decryption failure and bad JSON', async () => {
    let token = injectToken();
    while (!token.includes('/') && !token.includes('+')) token = injectToken();
    const urlSafe = await send({
      'Proxy-Tokenizer': token.replaceAll('/', '_').replaceAll('+', '-'),
      ...goodAuth,
    });
    expect(urlSafe.status).toBe(502);
    expect(urlSafe.body).toMatch(/^bad Proxy-Tokenizer encoding: illegal base64 data at input byte \d+$/);
    const otherKey = sealSecret(
      { processor: { type: 'inject', token: 'x' }, auth },
      sealKeyFromOpenKey(generateOpenKey()),
    );
    const undecryptable = await send({ 'Proxy-Tokenizer': otherKey, ...goodAuth });
    expect(undecryptable.status).toBe(502);
    expect(undecryptable.body).toBe('failed Proxy-Tokenizer decryption');
    const { seal: rawSeal } = await import('../src/sealed-box.js');
    const badJson = await send({
      'Proxy-Tokenizer': rawSeal('{"inject_processor":{"token":"x"}}', SEAL_KEY),
      ...goodAuth,
    });
    expect(badJson.status).toBe(502);
    expect(badJson.body).toBe('bad secret json: bad auth config');
  });
  it('Basic proxy auth with a URL-encoded password', async () => {
    const token = sealSecret(
      {
        processor: { type: 'inject', token: SECRET_TOKEN },
        auth: { type: 'bearer', digest: bearerDigest('p@ss word') },
      },
      SEAL_KEY,
    );
    const basic = (password: string) => `Basic ${Buffer.from(`x:${password}`).toString('base64')}`;
    expect(
      (await send({ 'Proxy-Tokenizer': token, 'Proxy-Authorization': basic('p%40ss+word') })).status,
    ).toBe(200);
    expect((await send({ 'Proxy-Tokenizer': token, 'Proxy-Authorization': basic('p@ss word') })).status).toBe(
      200,
    );
    expect(
      (await send({ 'Proxy-Tokenizer': injectToken(), 'Proxy-Authorization': 'Basic eDp0cnVzdG5vMQ==' }))
        .status,
    ).toBe(200);
    expect(
      (await send({ 'Proxy-Tokenizer': injectToken(), 'Proxy-Authorization': 'bearer trustno1' })).status,
    ).toBe(407);
  });
});

describe('routing and secure defaults', () => {
  it('port 443 in the target is refused', async () => {
    const response = await send(
      { 'Proxy-Tokenizer': injectToken(), ...goodAuth },
      { target: 'http://127.0.0.1:443/x' },
    );
    expect(response.status).toBe(400);
    expect(response.body).toBe('bad request: proxied request must be HTTP');
  });
  it('https:// absolute URLs are refused (no silent downgrade)', async () => {
    const response = await send(
      { 'Proxy-Tokenizer': injectToken(), ...goodAuth },
      { target: `https://${upstream}/echo` },
    );
    expect(response.status).toBe(400);
  });
  it('a Host header that disagrees with the target is refused', async () => {
    const response = await send({ 'Proxy-Tokenizer': injectToken(), ...goodAuth, Host: 'evil.example' });
    expect(response.status).toBe(400);
    expect(response.body).toContain('Host header does not match');
  });
  it('loopback upstreams are refused by default, after DNS too', async () => {
    const literal = await send({ 'Proxy-Tokenizer': injectToken(), ...goodAuth }, { via: strictProxy });
    expect(literal.status).toBe(400);
    expect(literal.body).toBe('bad request: dialing 127.0.0.1 denied');
    const named = await send(
      { 'Proxy-Tokenizer': injectToken(), ...goodAuth },
      { via: strictProxy, target: `http://localhost:${echo.port}/echo` },
    );
    expect(named.status).toBe(400);
    expect(named.body).toBe('bad request: dialing localhost denied');
    const metadata = await send(
      { 'Proxy-Tokenizer': injectToken(), ...goodAuth },
      { via: strictProxy, target: 'http://169.254.169.254:8443/' },
    );
    expect(metadata.status).toBe(400);
  });
  it('origin-form requests without TOKENIZER_HOSTNAMES get the reference text answer', async () => {
    const response = await proxyRequest(proxy.url, '/echo', { headers: { Host: upstream, ...goodAuth } });
    expect(response.status).toBe(400);
    expect(response.body).toBe("I'm not that kind of server\n");
    expect(response.headers['x-content-type-options']).toBe('nosniff');
  });
  it('transparent mode forwards origin-form requests and refuses circular ones', async () => {
    const ok = await proxyRequest(transparentProxy.url, '/echo', {
      headers: { Host: upstream, 'Proxy-Tokenizer': injectToken(), ...goodAuth },
    });
    expect(ok.status).toBe(200);
    expect((JSON.parse(ok.body) as EchoedRequest).headers.authorization).toBe(`Bearer ${SECRET_TOKEN}`);
    const circular = await proxyRequest(transparentProxy.url, '/echo', {
      headers: { Host: 'tokenizer.internal:8080' },
    });
    expect(circular.status).toBe(400);
    expect(circular.body).toBe('circular request\n');
  });
  it('never follows redirects', async () => {
    echo.routes.set('/redirect', () => ({
      status: 302,
      headers: { location: 'https://elsewhere.example/' },
      body: '',
    }));
    const response = await send({ 'Proxy-Tokenizer': injectToken(), ...goodAuth }, { path: '/redirect' });
    expect(response.status).toBe(302);
    expect(response.headers.location).toBe('https://elsewhere.example/');
  });
  it('strips FILTERED_HEADERS, even as a dst', async () => {
    const response = await send({
      'Proxy-Tokenizer': `${injectToken()}; {"dst":"X-Filtered"}`,
      ...goodAuth,
      'Fly-Client-Ip': '1.2.3.4',
      'X-Kept': 'yes',
    });
    expect(injected(response.echoed)).toEqual({ 'x-kept': 'yes' });
  });
  it('keeps client connections alive across requests', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const sockets = new Set<unknown>();
    agent.on('free', (socket) => sockets.add(socket));
    for (let index = 0; index < 3; index++) {
      const response = await proxyRequest(proxy.url, `http://${upstream}/echo`, {
        headers: { 'Proxy-Tokenizer': injectToken(), ...goodAuth },
        agent,
      });
      expect(response.status).toBe(200);
    }
    agent.destroy();
    expect(sockets.size).toBe(1);
  });
});

describe('size limits', () => {
  it('refuses a declared body over the limit with 413', async () => {
    const response = await send(
      { 'Proxy-Tokenizer': injectToken(), ...goodAuth, 'Content-Length': String(2 * 1024 * 1024) },
      { method: 'POST', body: '' },
    ).catch((error: Error) => ({ status: -1, body: error.message }));
    expect(response.status).toBe(413);
  });

  it('stops a streamed (chunked) body over the limit', async () => {
    const { request } = await import('node:http');
    const proxyUrl = new URL(proxy.url);
    const status = await new Promise<number>((resolve) => {
      const outgoing = request(
        {
          host: proxyUrl.hostname,
          port: proxyUrl.port,
          method: 'POST',
          path: `http://${upstream}/echo`,
          headers: {
            Host: upstream,
            'Proxy-Tokenizer': injectToken(),
            ...goodAuth,
            'Transfer-Encoding': 'chunked',
          },
          agent: false,
        },
        (response) => {
          response.resume();
          resolve(response.statusCode ?? 0);
        },
      );
      outgoing.on('error', () => resolve(-1));
      const chunk = Buffer.alloc(64 * 1024, 'a');
      let sent = 0;
      const pump = () => {
        while (sent < 40) {
          sent++;
          if (!outgoing.write(chunk)) return outgoing.once('drain', pump);
        }
        outgoing.end();
      };
      pump();
    });
    // Either a 413 before the upstream answered, or the connection was cut: never a 200.
    expect([413, -1]).toContain(status);
  });

  it('answers 431 to a request head over the limit', async () => {
    const response = await send({
      'Proxy-Tokenizer': injectToken(),
      ...goodAuth,
      'X-Big': 'a'.repeat(70 * 1024),
    }).catch((error: Error) => ({ status: -1, body: error.message }));
    expect(response.status).toBe(431);
  });
});

describe('operations', () => {
  it('serves /health and Prometheus /metrics on the admin listener', async () => {
    const health = await fetch(`${proxy.adminUrl}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'ok', sealKey: SEAL_KEY });
    const metrics = await (await fetch(`${proxy.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/keyward_tokenizer_requests_total\{decision="forwarded",status="200"\} \d+/);
    expect(metrics).toMatch(/keyward_tokenizer_secret_cache_hits_total [1-9]\d*/);
  });

  it('writes audit lines with fingerprints and never a secret value', async () => {
    expect(audit.length).toBeGreaterThan(20);
    const forwarded = audit.find((entry) => entry.decision === 'forwarded' && entry.credentials.length === 1);
    expect(forwarded).toMatchObject({ method: 'GET', host: upstream, path: '/echo', status: 200 });
    expect(forwarded?.credentials[0]).toMatch(/^[0-9a-f]{16}$/);
    const everything = JSON.stringify(audit) + operationalLog.join('\n');
    for (const secret of [
      SECRET_TOKEN,
      PROXY_TOKEN,
      OPEN_KEY,
      'cs-secret',
      'ya29.test',
      'ghs_abc',
      'BODYTOKEN',
      'secret-key',
    ]) {
      expect(everything).not.toContain(secret);
    }
    expect(operationalLog.join('\n')).toContain(SEAL_KEY);
  });
});
