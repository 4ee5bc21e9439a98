import { createPublicKey, generateKeyPairSync, randomBytes, verify } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { Agent, type IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningTokenizerServer, startTokenizerServer } from '../src/proxy-server.js';
import { generateOpenKey, open, seal, sealKeyFromOpenKey } from '../src/sealed-box.js';
import { bearerDigest } from '../src/secret.js';
import { marshalSecret, parseSecret } from '../src/secret-json.js';
import { proxyRequest } from './proxy-client.js';
import {
  buildReferenceTokenizer,
  type ReferenceMacaroonCaveats,
  type ReferenceTokenizer,
  type RunningReferenceTokenizer,
} from './reference-tokenizer.js';
import { createLoopbackCertificates, type EchoServer, startEchoServer } from './tls-fixtures.js';

// Differential tests against Fly.io's tokenizer itself (Go, at the commit pinned in
// scripts/reference-tokenizer/build.sh, built once per machine into a cache outside the checkout).
// Both proxies share one open key and one recording HTTPS upstream on loopback. Every case goes
// through both, each proxy getting the tokens the *other* implementation sealed; what the upstream
// received (method, target, headers, body) and what the client got back (status, body, headers)
// are compared. Every difference is either fixed or one of DELIBERATE below (each listed in
// docs/tokenizer-users.md with its reason), and each case names the ones it shows: a new
// difference, or a listed one that went away, fails.

const OPEN_KEY = generateOpenKey();
const SEAL_KEY = sealKeyFromOpenKey(OPEN_KEY);
const PROXY_TOKEN = 'trustno1';
const BEARER = { bearer_auth: { digest: bearerDigest(PROXY_TOKEN) } };
const GOOD_AUTH = { 'Proxy-Authorization': `Bearer ${PROXY_TOKEN}` };
const MACAROON_KEY = randomBytes(32);
const RSA = generateKeyPairSync('rsa', { modulusLength: 2048 });
const EC = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const pemBase64 = (key: typeof RSA.privateKey) =>
  Buffer.from(key.export({ type: 'pkcs8', format: 'pem' }) as string).toString('base64');

let reference: ReferenceTokenizer;
let referenceProxy: RunningReferenceTokenizer;
let keywardProxy: RunningTokenizerServer;
let strictKeywardProxy: RunningTokenizerServer;
let echo: EchoServer;
let otherCaEcho: EchoServer;
let upstream: string;
let caFile: string;
let upstreamCa: string;
const received: Recorded[] = [];
// Clients that keep connections alive, as real ones do (the reference closes them anyway).
const agents = new Map<string, Agent>();
const agentFor = (proxyUrl: string) => {
  if (!agents.has(proxyUrl)) agents.set(proxyUrl, new Agent({ keepAlive: true, maxSockets: 1 }));
  return agents.get(proxyUrl) as Agent;
};

interface Recorded {
  method: string;
  target: string;
  headers: [string, string][];
  body: string;
}

interface Observation {
  status: number | string;
  body: string;
  headers: Record<string, string>;
  upstream: Recorded[];
}

function record(request: IncomingMessage) {
  const chunks: Buffer[] = [];
  request.on('data', (chunk: Buffer) => chunks.push(chunk));
  request.on('end', () => {
    const headers: [string, string][] = [];
    for (let index = 0; index < request.rawHeaders.length; index += 2)
      headers.push([
        (request.rawHeaders[index] as string).toLowerCase(),
        request.rawHeaders[index + 1] as string,
      ]);
    received.push({
      method: request.method ?? '',
      target: request.url ?? '',
      headers,
      body: Buffer.concat(chunks).toString('utf8'),
    });
  });
}

const sealOurs = (json: string) => seal(marshalSecret(parseSecret(json)), SEAL_KEY);
const openOurs = (token: string) => marshalSecret(parseSecret(open(token, OPEN_KEY) as Uint8Array));
const secretJson = (processor: object, extra: object = {}, auth: object = BEARER) =>
  JSON.stringify({ ...processor, ...auth, ...extra });

interface Request {
  method?: string;
  path?: string;
  /** Absolute-form target; `HOST` is replaced by the upstream's host:port. */
  target?: string;
  body?: string;
  /** Headers, given the tokens to send (sealed by the implementation other than the proxy's). */
  headers?: (tokens: string[]) => Record<string, string | string[]>;
  /** Headers Node adds on its own that this request must not carry. */
  omitHeaders?: string[];
  /** Turns values that legitimately vary per run (JWT times, sealed tokens) into comparable ones. */
  normalize?: (observation: Observation) => void;
}

interface Case extends Request {
  name: string;
  /** Secret JSON (`HOST` is replaced by the upstream's host:port). */
  secrets: string[];
  /** Seal the JSON as it is for both proxies (for secrets a sealer refuses, see the sealing tests). */
  sealedAsIs?: boolean;
  /** Deliberate differences this case shows (keys of DELIBERATE), besides the keep-alive ones. */
  differences?: (keyof typeof DELIBERATE)[];
}

/** One request through one proxy, and what the upstream received because of it. */
async function observe(proxyUrl: string, request: Request, tokens: string[]): Promise<Observation> {
  received.length = 0;
  const headers = { 'User-Agent': 'keyward-differential', ...request.headers?.(tokens) };
  let observation: Observation;
  try {
    const response = await proxyRequest(
      proxyUrl,
      (request.target ?? `http://HOST${request.path ?? '/echo'}`).replaceAll('HOST', upstream),
      {
        method: request.method ?? 'GET',
        headers,
        agent: agentFor(proxyUrl),
        ...(request.body !== undefined ? { body: request.body } : {}),
        ...(request.omitHeaders ? { omitHeaders: request.omitHeaders } : {}),
      },
    );
    const kept: Record<string, string> = {};
    for (const [name, value] of Object.entries(response.headers))
      if (!['date', 'content-length', 'transfer-encoding'].includes(name) && value !== undefined)
        kept[name] = Array.isArray(value) ? value.join('\n') : value;
    // The echo's body repeats the upstream request, which is compared on its own.
    const body = response.body.startsWith('{"method"') ? '(echo)' : response.body;
    observation = { status: response.status, body, headers: kept, upstream: [] };
  } catch (error) {
    observation = {
      status: `no response (${(error as Error).message})`,
      body: '',
      headers: {},
      upstream: [],
    };
  }
  await new Promise((resolve) => setTimeout(resolve, 20));
  observation.upstream = received.splice(0);
  request.normalize?.(observation);
  return observation;
}

/** Every difference between the two observations, as `where: reference → keyward`. */
function compare(ours: Observation, theirs: Observation): string[] {
  const differences: string[] = [];
  const show = (value: unknown) => (value === undefined ? 'absent' : JSON.stringify(value));
  const note = (where: string, a: unknown, b: unknown) => {
    if (JSON.stringify(a) !== JSON.stringify(b)) differences.push(`${where}: ${show(a)} → ${show(b)}`);
  };
  note('status', theirs.status, ours.status);
  note('body', theirs.body, ours.body);
  for (const name of new Set([...Object.keys(theirs.headers), ...Object.keys(ours.headers)]))
    note(`response ${name}`, theirs.headers[name], ours.headers[name]);
  note('upstream requests', theirs.upstream.length, ours.upstream.length);
  const [a, b] = [theirs.upstream[0], ours.upstream[0]];
  if (a && b) {
    note('upstream method', a.method, b.method);
    note('upstream target', a.target, b.target);
    note('upstream body', a.body, b.body);
    const values = (request: Recorded, name: string) => {
      const found = request.headers.filter(([key]) => key === name).map(([, value]) => value);
      return found.length === 0 ? undefined : found.length === 1 ? found[0] : found;
    };
    const names = new Set([...a.headers.map(([name]) => name), ...b.headers.map(([name]) => name)]);
    for (const name of names) note(`upstream ${name}`, values(a, name), values(b, name));
  }
  return differences;
}

// ----- The differences we keep. Each is listed in docs/tokenizer-users.md with its reason. -----

/** Keep-alive on both sides: the reference closes every client and upstream connection. */
const KEEP_ALIVE = ['response connection: "close" → absent'];
const KEEP_ALIVE_UPSTREAM = ['upstream connection: "close" → absent'];
/** The reference replaces the client's Accept-Encoding with its own gzip (and decompresses). */
const ACCEPT_ENCODING = ['upstream accept-encoding: "gzip" → absent'];

const DELIBERATE = {
  /** The reference adds Go's User-Agent when the client sent none; we add nothing. */
  userAgent: ['upstream user-agent: "Go-http-client/1.1" → absent'],
  /** Compressed bodies pass through; the reference asks for gzip itself and decompresses. */
  acceptEncoding: [/^body: "compressed hello" → ".*"$/, 'response content-encoding: absent → "gzip"'],
  /** A Host header that disagrees with the absolute-form target is refused (the reference ignores it). */
  hostMismatch: [
    'status: 200 → 400',
    'body: "(echo)" → "bad request: Host header does not match the request target"',
    'response content-type: "application/json" → "text/plain; charset=utf-8"',
    'upstream requests: 1 → 0',
  ],
  /** `https://` targets are refused up front (the reference wraps TLS in TLS and fails with 502). */
  httpsTarget: [
    'status: 502 → 400',
    'body: "tls: first record does not look like a TLS handshake" → "bad request: proxied request must be HTTP"',
  ],
  /** Loopback/private upstreams are refused unless TOKENIZER_ALLOW_PRIVATE_UPSTREAMS (the reference allows them). */
  privateUpstream: [
    'status: 200 → 400',
    'body: "(echo)" → "bad request: dialing 127.0.0.1 denied"',
    'response content-type: "application/json" → "text/plain; charset=utf-8"',
    'upstream requests: 1 → 0',
  ],
  /** Upstream failures answer 502 without quoting Go's (or Node's) error text. */
  upstreamErrorText: [
    /^body: "tls: failed to verify certificate: x509: certificate signed by unknown authority.*" → "upstream request failed: unable to verify the first certificate \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\)"$/,
  ],
  /** flyio_macaroon_auth and fly_src_auth say why they cannot work outside Fly.io (same 407). */
  flyOnlyAuthMessage: [
    /^body: "unauthorized to use secret: not authorized: .*" → ".*only works inside Fly\.io.*"$/,
  ],
  /** A missing oauth2 token object answers 502 `missing token`; the reference's Go code panics. */
  oauth2MissingToken: [
    /^status: "no response \(.*\)" → 502$/,
    'body: "" → "missing token"',
    'response content-type: absent → "text/plain; charset=utf-8"',
  ],
  /**
   * sigv4 never signs the hop-by-hop Connection header. The reference signs the client's
   * Connection header when there is one (and then sends its own `Connection: close`).
   */
  sigv4Connection: [
    /^upstream authorization: "AWS4-HMAC-SHA256 Credential=[^"]*, SignedHeaders=connection;host;x-amz-content-sha256;x-amz-date, Signature=[0-9a-f]{64}" → "AWS4-HMAC-SHA256 Credential=[^"]*, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=[0-9a-f]{64}"$/,
  ],
  /**
   * sigv4 forwards the query as the client wrote it; the reference's signer rewrites it into the
   * canonical (sorted) order. Both sign the canonical form, so the signatures are equal.
   */
  sigv4QueryOrder: ['upstream target: "/echo?Action=ListQueues&a=1&b=2" → "/echo?Action=ListQueues&b=2&a=1"'],
  /** The proxy answers `Expect: 100-continue` itself and does not forward it; the reference forwards it. */
  expectContinue: ['upstream expect: "100-continue" → absent'],
} satisfies Record<string, (string | RegExp)[]>;

/** The differences not explained by `expected`, and the expected ones that did not show. */
function unexplained(differences: string[], expected: (string | RegExp)[]) {
  const left = [...differences];
  const missing: string[] = [];
  for (const pattern of expected) {
    const index = left.findIndex((line) =>
      typeof pattern === 'string' ? line === pattern : pattern.test(line),
    );
    if (index === -1) missing.push(String(pattern));
    else left.splice(index, 1);
  }
  return { unexplained: left, missing };
}

const withTokens =
  (params: (string | undefined)[] = [], extra: Record<string, string | string[]> = GOOD_AUTH) =>
  (tokens: string[]) => ({
    'Proxy-Tokenizer': tokens.map((token, index) => (params[index] ? `${token}; ${params[index]}` : token)),
    ...extra,
  });

beforeAll(async () => {
  reference = buildReferenceTokenizer();
  const certificates = createLoopbackCertificates();
  echo = await startEchoServer(certificates);
  echo.server.on('request', record);
  for (const [path, route] of upstreamRoutes()) echo.routes.set(path, route);
  otherCaEcho = await startEchoServer(createLoopbackCertificates());
  upstream = `127.0.0.1:${echo.port}`;
  caFile = join(mkdtempSync(join(tmpdir(), 'keyward-reference-ca-')), 'ca.pem');
  upstreamCa = certificates.caCertificatePem;
  writeFileSync(caFile, upstreamCa);
  referenceProxy = await reference.serve({
    OPEN_KEY,
    // Go reads its trusted roots from SSL_CERT_FILE instead of the system's.
    SSL_CERT_FILE: caFile,
    FILTERED_HEADERS: 'X-Filtered',
  });
  const common = {
    openKey: OPEN_KEY,
    listenAddress: '127.0.0.1:0',
    upstreamCa: certificates.caCertificatePem,
    filteredHeaders: ['X-Filtered'],
    auditLog: false as const,
    log: () => {},
  };
  keywardProxy = await startTokenizerServer({ ...common, allowPrivateUpstreams: true });
  strictKeywardProxy = await startTokenizerServer(common);
}, 600_000);

afterAll(async () => {
  for (const agent of agents.values()) agent.destroy();
  await Promise.all([referenceProxy?.close(), keywardProxy?.close(), strictKeywardProxy?.close()]);
  await Promise.all([echo?.close(), otherCaEcho?.close()]);
});

function upstreamRoutes(): [string, EchoServer['routes'] extends Map<string, infer R> ? R : never][] {
  const json = { 'content-type': 'application/json' };
  return [
    [
      '/token',
      () => ({
        status: 200,
        headers: json,
        body: '{"access_token":"ya29.stand-in","expires_in":3600,"token_type":"Bearer"}',
      }),
    ],
    ['/token-denied', () => ({ status: 401, headers: json, body: '{"error":"invalid_grant"}' })],
    ['/token-without-access-token', () => ({ status: 200, headers: json, body: '{"expires_in":3600}' })],
    [
      '/app/installations/4242/access_tokens',
      () => ({
        status: 201,
        headers: json,
        body: JSON.stringify({
          token: 'ghs_standin',
          expires_at: new Date(Date.now() + 3_600_000).toISOString().replace(/\.\d+Z$/, 'Z'),
        }),
      }),
    ],
    [
      '/created',
      () => ({
        status: 201,
        headers: {
          'content-type': 'text/plain',
          'x-upstream': 'yes',
          location: 'https://elsewhere.example/',
        },
        body: 'created',
      }),
    ],
    ['/missing', () => ({ status: 404, headers: { 'content-type': 'text/plain' }, body: 'no such thing' })],
    [
      '/gzip',
      (request): { status: number; headers: Record<string, string>; body: string | Buffer } =>
        String(request.headers['accept-encoding'] ?? '').includes('gzip')
          ? {
              status: 200,
              headers: { 'content-type': 'text/plain', 'content-encoding': 'gzip' },
              body: gzipSync('compressed hello'),
            }
          : { status: 200, headers: { 'content-type': 'text/plain' }, body: 'compressed hello' },
    ],
  ];
}

// ----- Token exchanges: JWTs and sealed answers differ per run; compare what they say. -----

function decodeJwt(jwt: string) {
  const [header, payload, signature] = jwt.split('.') as [string, string, string];
  const decoded = {
    header: JSON.parse(Buffer.from(header, 'base64url').toString()) as { alg: string },
    claims: JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>,
  };
  const { iat, exp, ...claims } = decoded.claims as { iat: number; exp: number };
  const publicKey = createPublicKey(decoded.header.alg === 'RS256' ? RSA.privateKey : EC.privateKey);
  const valid = verify(
    'sha256',
    Buffer.from(`${header}.${payload}`),
    decoded.header.alg === 'RS256' ? publicKey : { key: publicKey, dsaEncoding: 'ieee-p1363' },
    Buffer.from(signature, 'base64url'),
  );
  return { header: decoded.header, claims, lifetime: exp - iat, signatureValid: valid };
}

/** The JWT in the upstream request (form `assertion` or `Authorization: Bearer`), decoded. */
function normalizeExchange(observation: Observation) {
  for (const request of observation.upstream) {
    if (request.body.includes('assertion=')) {
      const form = new URLSearchParams(request.body);
      const assertion = form.get('assertion') as string;
      request.body = request.body.replace(
        encodeURIComponent(assertion).replaceAll('%20', '+'),
        JSON.stringify(decodeJwt(assertion)),
      );
    }
    request.headers = request.headers.map(([name, value]) =>
      name === 'authorization' && /^Bearer ey/.test(value)
        ? [name, `Bearer ${JSON.stringify(decodeJwt(value.slice(7)))}`]
        : [name, value],
    );
  }
  if (observation.body.startsWith('{"sealed_token"')) {
    const answer = JSON.parse(observation.body) as { sealed_token: string };
    observation.body = JSON.stringify({ ...answer, sealed_token: openOurs(answer.sealed_token) });
  }
}

// ----- The cases. -----

const inject = (extra: object = {}, processor: object = {}) =>
  secretJson({ inject_processor: { token: 'supersecret', ...processor } }, extra);
const hmacKey = Buffer.from('trustno2').toString('base64');
const macaroonSecret = secretJson(
  { inject_processor: { token: 'macaroon-protected' } },
  {},
  { macaroon_auth: { key: MACAROON_KEY.toString('base64') } },
);
const withMacaroon =
  (caveats: ReferenceMacaroonCaveats | (() => ReferenceMacaroonCaveats), key = MACAROON_KEY) =>
  (tokens: string[]) => ({
    'Proxy-Tokenizer': tokens,
    'Proxy-Authorization': reference.mintMacaroon(
      key.toString('hex'),
      typeof caveats === 'function' ? caveats() : caveats,
    ),
  });
const now = () => Math.floor(Date.now() / 1000);

const cases: Case[] = [
  { name: 'no secret, only proxy auth', secrets: [], headers: () => GOOD_AUTH },
  { name: 'inject, bearer auth', secrets: [inject()], headers: withTokens() },
  { name: 'inject, no proxy auth', secrets: [inject()], headers: withTokens([], {}) },
  {
    name: 'inject, wrong proxy token',
    secrets: [inject()],
    headers: withTokens([], { 'Proxy-Authorization': 'Bearer nope' }),
  },
  {
    name: 'inject, Basic auth with the token as password',
    secrets: [inject()],
    headers: withTokens([], {
      'Proxy-Authorization': `Basic ${Buffer.from(`x:${PROXY_TOKEN}`).toString('base64')}`,
    }),
  },
  {
    name: 'inject, Basic auth with a URL-encoded password',
    secrets: [
      secretJson(
        { inject_processor: { token: 's' } },
        {},
        { bearer_auth: { digest: bearerDigest('a b/c') } },
      ),
    ],
    headers: withTokens([], {
      'Proxy-Authorization': `Basic ${Buffer.from('x:a+b%2Fc').toString('base64')}`,
    }),
  },
  {
    name: 'inject, a bogus and a good Proxy-Authorization',
    secrets: [inject()],
    headers: withTokens([], { 'Proxy-Authorization': ['Bearer bogus', `Bearer ${PROXY_TOKEN}`] }),
  },
  { name: 'inject, dst param', secrets: [inject()], headers: withTokens(['{"dst":"x-api-key"}']) },
  { name: 'inject, fmt param', secrets: [inject()], headers: withTokens(['{"fmt":"Other %s"}']) },
  { name: 'inject, bad fmt param', secrets: [inject()], headers: withTokens(['{"fmt":"%d"}']) },
  {
    name: 'inject, config fmt and dst',
    secrets: [inject({}, { fmt: 'token %s', dst: 'X-Api-Key' })],
    headers: withTokens(),
  },
  {
    name: 'inject, fmt param other than the config fmt',
    secrets: [inject({}, { fmt: 'token %s' })],
    headers: withTokens(['{"fmt":"Bearer %s"}']),
  },
  {
    name: 'inject, dst param other than the config dst',
    secrets: [inject({}, { dst: 'X-Api-Key' })],
    headers: withTokens(['{"dst":"Authorization"}']),
  },
  {
    name: 'inject, allowed_dst: first entry by default',
    secrets: [inject({}, { allowed_dst: ['asdf', 'qwer'] })],
    headers: withTokens(),
  },
  {
    name: 'inject, allowed_dst: a listed param in another case',
    secrets: [inject({}, { allowed_dst: ['asdf', 'qwer'] })],
    headers: withTokens(['{"dst":"qWeR"}']),
  },
  {
    name: 'inject, allowed_dst: an unlisted param',
    secrets: [inject({}, { allowed_dst: ['asdf', 'qwer'] })],
    headers: withTokens(['{"dst":"zxcv"}']),
  },
  {
    name: 'inject, allowed_fmt',
    secrets: [inject({}, { allowed_fmt: ['token %s', 'Bearer %s'] })],
    headers: withTokens(['{"fmt":"Bearer %s"}']),
  },
  {
    name: 'inject, allowed_fmt: an unlisted param',
    secrets: [inject({}, { allowed_fmt: ['token %s'] })],
    headers: withTokens(['{"fmt":"Bearer %s"}']),
  },
  {
    name: 'inject, POST body forwarded',
    secrets: [inject()],
    headers: withTokens(),
    method: 'POST',
    body: '{"a":1}',
  },
  {
    name: 'inject, filtered header removed',
    secrets: [inject()],
    headers: (tokens) => ({ ...withTokens()(tokens), 'X-Filtered': 'drop me', 'X-Kept': 'keep me' }),
  },
  {
    name: 'two secrets in order, dst params',
    secrets: [inject(), secretJson({ inject_processor: { token: 'second' } })],
    headers: withTokens(['{"dst":"X-First"}', '{"dst":"X-Second"}']),
  },
  {
    name: 'two secrets, one with an unmet bearer',
    secrets: [
      inject(),
      secretJson(
        { inject_processor: { token: 'B' } },
        {},
        { bearer_auth: { digest: bearerDigest('other') } },
      ),
    ],
    headers: withTokens([undefined, '{"dst":"X-B"}']),
  },
  {
    name: 'no_auth',
    secrets: [secretJson({ inject_processor: { token: 'open' } }, {}, { no_auth: {} })],
    headers: withTokens([], {}),
  },
  {
    name: 'inject_hmac over the body',
    secrets: [secretJson({ inject_hmac_processor: { key: hmacKey, hash: 'sha256' } })],
    headers: withTokens(),
    method: 'POST',
    body: 'foo',
  },
  {
    name: 'inject_hmac over msg, dst and %X',
    secrets: [secretJson({ inject_hmac_processor: { key: hmacKey, hash: 'sha256' } })],
    headers: withTokens(['{"msg":"my payload","dst":"Foo","fmt":"%X"}']),
  },
  {
    name: 'inject_hmac with a string fmt',
    secrets: [secretJson({ inject_hmac_processor: { key: hmacKey, hash: 'sha256' } })],
    headers: withTokens(['{"fmt":"%s"}']),
  },
  {
    name: 'inject_hmac without hash',
    secrets: [secretJson({ inject_hmac_processor: { key: hmacKey } })],
    headers: withTokens(),
  },
  {
    name: 'inject_body, default placeholder',
    secrets: [secretJson({ inject_body_processor: { token: 'BODYSECRET' } })],
    headers: withTokens(),
    method: 'POST',
    body: 'a={{ACCESS_TOKEN}}&b={{ACCESS_TOKEN}}',
  },
  {
    name: 'inject_body, config placeholder',
    secrets: [secretJson({ inject_body_processor: { token: 'BODYSECRET', placeholder: '@@' } })],
    headers: withTokens(),
    method: 'POST',
    body: 'a=@@',
  },
  {
    name: 'inject_body, placeholder param',
    secrets: [secretJson({ inject_body_processor: { token: 'BODYSECRET', placeholder: '@@' } })],
    headers: withTokens(['{"placeholder":"%%"}']),
    method: 'POST',
    body: 'a=%%&b=@@',
  },
  ...['', '{"st":"access"}', '{"st":"refresh"}'].map((params) => ({
    name: `oauth2 ${params || 'default'}`,
    secrets: [
      secretJson({ oauth2_processor: { token: { access_token: 'ACCESS', refresh_token: 'REFRESH' } } }),
    ],
    headers: withTokens([params || undefined]),
  })),
  {
    name: 'oauth2, placeholder param: body mode',
    secrets: [
      secretJson({ oauth2_processor: { token: { access_token: 'ACCESS', refresh_token: 'REFRESH' } } }),
    ],
    headers: withTokens(['{"placeholder":"@T@"}']),
    method: 'POST',
    body: 'a=@T@&b=@T@',
  },
  {
    name: 'oauth2_body, st=refresh',
    secrets: [
      secretJson({
        oauth2_body_processor: {
          token: { access_token: 'ACCESS', refresh_token: 'REFRESH' },
          placeholder: '@T@',
        },
      }),
    ],
    headers: withTokens(['{"st":"refresh"}']),
    method: 'POST',
    body: 'x=@T@',
  },
  {
    name: 'oauth2 without a token object',
    secrets: [secretJson({ oauth2_processor: {} })],
    sealedAsIs: true,
    headers: withTokens(),
    differences: ['oauth2MissingToken'],
  },
  ...[false, true].flatMap((noSwap) => {
    const sigv4 = {
      secrets: [
        secretJson({
          sigv4_processor: {
            access_key: 'AKIDEXAMPLE',
            secret_key: 'wJalrXUtnFEMI/K7MDENG',
            no_swap: noSwap,
          },
        }),
      ],
      headers: (tokens: string[]) => ({
        ...withTokens()(tokens),
        Authorization:
          'AWS4-HMAC-SHA256 Credential=AKIDCLIENT/20260101/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=00',
        'X-Amz-Date': '20260101T000000Z',
        'X-Amz-Content-Sha256': 'UNSIGNED-PAYLOAD',
      }),
    };
    return [
      { name: `sigv4, no_swap ${noSwap}`, ...sigv4, omitHeaders: ['connection'] },
      {
        name: `sigv4, no_swap ${noSwap}, client sends Connection`,
        ...sigv4,
        differences: ['sigv4Connection' as const],
      },
    ];
  }),
  {
    name: 'sigv4 without X-Amz-Content-Sha256',
    secrets: [
      secretJson({ sigv4_processor: { access_key: 'AKIDEXAMPLE', secret_key: 'SK', no_swap: true } }),
    ],
    headers: (tokens: string[]) => ({
      ...withTokens()(tokens),
      Authorization:
        'AWS4-HMAC-SHA256 Credential=AKIDCLIENT/20260101/eu-west-1/sqs/aws4_request, SignedHeaders=host, Signature=00',
      'X-Amz-Date': '20260101T120000Z',
    }),
    method: 'POST',
    path: '/echo?Action=ListQueues&b=2&a=1',
    body: 'payload',
    omitHeaders: ['connection'],
    differences: ['sigv4QueryOrder'],
  },
  {
    name: 'sigv4 without Authorization',
    secrets: [secretJson({ sigv4_processor: { access_key: 'AK', secret_key: 'SK', no_swap: false } })],
    headers: withTokens(),
  },
  {
    name: 'multi_processor',
    secrets: [
      secretJson({
        multi_processor: [
          { inject_processor: { token: 'A', dst: 'X-A' } },
          { inject_processor: { token: 'B', dst: 'X-B' } },
        ],
      }),
    ],
    headers: withTokens(),
  },
  { name: 'empty multi_processor', secrets: [secretJson({ multi_processor: [] })], headers: withTokens() },
  {
    name: 'allowed_hosts exact host:port',
    secrets: [inject({ allowed_hosts: ['HOST'] })],
    headers: withTokens(),
  },
  {
    name: 'allowed_hosts without the port',
    secrets: [inject({ allowed_hosts: ['127.0.0.1'] })],
    headers: withTokens(),
  },
  {
    name: 'allowed_host_pattern anchored',
    secrets: [inject({ allowed_host_pattern: '^127\\.0\\.0\\.1:\\d+$' })],
    headers: withTokens(),
  },
  {
    name: 'allowed_host_pattern not matching',
    secrets: [inject({ allowed_host_pattern: '^api\\.example\\.com$' })],
    headers: withTokens(),
  },
  {
    name: 'allowed_hosts and a pattern are ANDed',
    secrets: [inject({ allowed_hosts: ['HOST'], allowed_host_pattern: '^localhost' })],
    headers: withTokens(),
  },
  {
    name: 'bad base64 token',
    secrets: [],
    headers: () => ({ 'Proxy-Tokenizer': 'not base64!', ...GOOD_AUTH }),
  },
  {
    name: 'token sealed to another key',
    secrets: [],
    headers: () => ({ 'Proxy-Tokenizer': seal('{}', sealKeyFromOpenKey(generateOpenKey())), ...GOOD_AUTH }),
  },
  {
    name: 'two processors in one secret',
    secrets: [],
    headers: () => ({
      'Proxy-Tokenizer': seal(
        secretJson({ inject_processor: { token: 'a' }, oauth2_processor: { token: { access_token: 'b' } } }),
        SEAL_KEY,
      ),
      ...GOOD_AUTH,
    }),
  },
  {
    name: 'bad allowed_host_pattern (sealed raw: both sealers refuse it)',
    secrets: [],
    headers: () => ({
      'Proxy-Tokenizer': seal(inject({ allowed_host_pattern: '(' }), SEAL_KEY),
      ...GOOD_AUTH,
    }),
  },
  { name: 'params that are not a string map', secrets: [inject()], headers: withTokens(['{"dst":1}']) },
  {
    name: 'empty secret part',
    secrets: [],
    headers: () => ({ 'Proxy-Tokenizer': '; {"dst":"x"}', ...GOOD_AUTH }),
  },
  {
    name: 'flyio_macaroon_auth with a bearer token',
    secrets: [
      secretJson(
        { inject_processor: { token: 's' } },
        {},
        { flyio_macaroon_auth: { access: { action: 'r', orgid: 1 } } },
      ),
    ],
    headers: withTokens(),
    differences: ['flyOnlyAuthMessage'],
  },
  {
    name: 'fly_src_auth without Fly-Src',
    secrets: [
      secretJson(
        { inject_processor: { token: 's' } },
        {},
        { fly_src_auth: { allowed_orgs: ['o'], allowed_apps: null, allowed_instances: null } },
      ),
    ],
    headers: withTokens(),
    differences: ['flyOnlyAuthMessage'],
  },
  { name: 'macaroon_auth, no caveats', secrets: [macaroonSecret], headers: withMacaroon({}) },
  {
    name: 'macaroon_auth, method, host and path caveats met',
    secrets: [macaroonSecret],
    headers: withMacaroon(() => ({ method: ['GET'], host: [upstream], path: ['/echo'] })),
  },
  {
    name: 'macaroon_auth, method caveat unmet',
    secrets: [macaroonSecret],
    headers: withMacaroon({ method: ['POST'] }),
  },
  {
    name: 'macaroon_auth, host caveat unmet',
    secrets: [macaroonSecret],
    headers: withMacaroon({ host: ['fly.io'] }),
  },
  {
    name: 'macaroon_auth, path caveat unmet',
    secrets: [macaroonSecret],
    headers: withMacaroon({ path: ['/bar'] }),
  },
  {
    name: 'macaroon_auth, path prefix met',
    secrets: [macaroonSecret],
    headers: withMacaroon({ prefix: ['/ec'] }),
  },
  {
    name: 'macaroon_auth, path prefix unmet',
    secrets: [macaroonSecret],
    headers: withMacaroon({ prefix: ['/x'] }),
  },
  {
    name: 'macaroon_auth, path pattern met',
    secrets: [macaroonSecret],
    headers: withMacaroon({ pattern: ['c.o$'] }),
  },
  {
    name: 'macaroon_auth, path pattern unmet',
    secrets: [macaroonSecret],
    headers: withMacaroon({ pattern: ['^/x'] }),
  },
  {
    name: 'macaroon_auth, validity window open',
    secrets: [macaroonSecret],
    headers: withMacaroon(() => ({ notBefore: now() - 60, notAfter: now() + 3600 })),
  },
  {
    name: 'macaroon_auth, validity window over',
    secrets: [macaroonSecret],
    headers: withMacaroon(() => ({ notBefore: now() - 7200, notAfter: now() - 3600 })),
  },
  {
    name: 'macaroon_auth, minted with another key',
    secrets: [macaroonSecret],
    headers: withMacaroon({}, randomBytes(32)),
  },
  {
    name: 'port 443 refused',
    secrets: [inject()],
    headers: withTokens(),
    target: 'http://127.0.0.1:443/echo',
  },
  { name: 'upstream 201 with headers', secrets: [inject()], headers: withTokens(), path: '/created' },
  { name: 'HEAD request', secrets: [inject()], headers: withTokens(), method: 'HEAD' },
  {
    name: 'client sends a chunked body',
    secrets: [inject()],
    headers: (tokens) => ({ ...withTokens()(tokens), 'Transfer-Encoding': 'chunked' }),
    method: 'PUT',
    body: 'chunked payload',
  },
  {
    name: 'client sends Expect: 100-continue',
    secrets: [inject()],
    headers: (tokens) => ({ ...withTokens()(tokens), Expect: '100-continue', 'Content-Length': '4' }),
    method: 'POST',
    body: 'body',
    differences: ['expectContinue'],
  },
  { name: 'upstream 404', secrets: [inject()], headers: withTokens(), path: '/missing' },
  {
    name: 'query string and escaped path kept',
    secrets: [inject()],
    headers: withTokens(),
    path: '/echo/a%2Fb?x=1&y=%20',
  },
  {
    name: 'client without User-Agent',
    secrets: [inject()],
    headers: (tokens) => ({ ...withTokens()(tokens), 'User-Agent': [] }),
    differences: ['userAgent'],
  },
  {
    name: 'client accepts gzip, upstream compresses',
    secrets: [inject()],
    headers: (tokens) => ({ ...withTokens()(tokens), 'Accept-Encoding': 'gzip' }),
    path: '/gzip',
    differences: ['acceptEncoding'],
  },
  {
    name: 'Host header other than the target',
    secrets: [inject()],
    headers: (tokens) => ({ ...withTokens()(tokens), Host: 'elsewhere.example' }),
    differences: ['hostMismatch'],
  },
  {
    name: 'https:// absolute-form target',
    secrets: [inject()],
    headers: withTokens(),
    target: 'https://HOST/echo',
    differences: ['httpsTarget'],
  },
  ...(['RS256', 'ES256'] as const).map((alg) => ({
    name: `jwt (${alg}) against a stand-in token endpoint`,
    secrets: [
      secretJson(
        {
          jwt_processor: {
            private_key: pemBase64(alg === 'RS256' ? RSA.privateKey : EC.privateKey),
            email: 'robot@example.iam.gserviceaccount.com',
            sub: 'user@example.com',
            scopes: 'https://www.googleapis.com/auth/cloud-platform',
            token_url: 'https://oauth2.example/token',
          },
        },
        { allowed_hosts: ['HOST'] },
      ),
    ],
    headers: withTokens(),
    method: 'POST',
    path: '/token',
    body: 'ignored=1',
    normalize: normalizeExchange,
  })),
  {
    name: 'jwt, sub and scopes params',
    secrets: [
      secretJson({
        jwt_processor: {
          private_key: pemBase64(RSA.privateKey),
          email: 'robot@example',
          sub: '',
          scopes: '',
          token_url: '',
        },
      }),
    ],
    headers: withTokens(['{"scopes":"a b","sub":"someone"}']),
    method: 'POST',
    path: '/token',
    normalize: normalizeExchange,
  },
  {
    name: 'jwt, the token endpoint refuses: passed through',
    secrets: [
      secretJson({
        jwt_processor: {
          private_key: pemBase64(RSA.privateKey),
          email: 'robot@example',
          sub: '',
          scopes: 's',
          token_url: '',
        },
      }),
    ],
    headers: withTokens(),
    method: 'POST',
    path: '/token-denied',
    normalize: normalizeExchange,
  },
  {
    name: 'jwt, the answer has no access_token',
    secrets: [
      secretJson({
        jwt_processor: {
          private_key: pemBase64(RSA.privateKey),
          email: 'robot@example',
          sub: '',
          scopes: 's',
          token_url: '',
        },
      }),
    ],
    headers: withTokens(),
    method: 'POST',
    path: '/token-without-access-token',
    normalize: normalizeExchange,
  },
  {
    name: 'jwt without email',
    secrets: [secretJson({ jwt_processor: { private_key: pemBase64(RSA.privateKey), email: '' } })],
    headers: withTokens(),
    method: 'POST',
    path: '/token',
  },
  ...['', 'read write'].map((scopes) => ({
    name: `client_credentials${scopes ? ' with scopes' : ''}`,
    secrets: [
      secretJson(
        {
          client_credentials_processor: {
            client_id: 'client-id',
            client_secret: 'client s&cret',
            token_url: 'https://auth.example/token',
            ...(scopes ? { scopes } : {}),
          },
        },
        { allowed_host_pattern: '^127\\.0\\.0\\.1:' },
      ),
    ],
    headers: withTokens(),
    method: 'POST',
    path: '/token',
    body: 'replaced',
    normalize: normalizeExchange,
  })),
  {
    name: 'client_credentials without token_url',
    secrets: [
      secretJson({ client_credentials_processor: { client_id: 'a', client_secret: 'b', token_url: '' } }),
    ],
    headers: withTokens(),
    method: 'POST',
    path: '/token',
  },
  {
    name: 'github_app against a stand-in installation token endpoint',
    secrets: [
      secretJson({
        github_app_processor: {
          private_key: pemBase64(RSA.privateKey),
          app_id: '123',
          installation_id: '4242',
        },
      }),
    ],
    headers: (tokens) => ({ ...withTokens()(tokens), 'Content-Type': 'application/json' }),
    method: 'POST',
    path: '/anything?page=1',
    body: '{"ignored":true}',
    normalize: normalizeExchange,
  },
  {
    name: 'github_app with an EC key',
    secrets: [
      secretJson({
        github_app_processor: { private_key: pemBase64(EC.privateKey), app_id: '1', installation_id: '2' },
      }),
    ],
    headers: withTokens(),
    method: 'POST',
  },
];

describe('sealing: each side opens the other side’s tokens to the same Secret JSON', () => {
  const secrets = [
    ...new Set(cases.filter((entry) => !entry.sealedAsIs).flatMap((entry) => entry.secrets)),
    // Go's omitempty drops empty lists and strings; a round trip through either sealer agrees.
    inject({ allowed_host_pattern: '' }, { fmt: '', dst: '' }),
  ];
  it.each(secrets.map((json) => [json.slice(0, 90), json] as const))('%s', (_label, template) => {
    const json = template.replaceAll('HOST', '127.0.0.1:8443');
    const theirs = reference.seal(json, SEAL_KEY);
    const ours = sealOurs(json);
    const canonical = reference.unseal(theirs, OPEN_KEY);
    // Go opens ours to exactly the JSON its own sealer wrote, and we open Go's to the same.
    expect(reference.unseal(ours, OPEN_KEY)).toBe(canonical);
    expect(openOurs(theirs)).toBe(canonical);
    expect(new TextDecoder().decode(open(ours, OPEN_KEY))).toBe(canonical);
  });

  it('empty allow-lists: we seal them as [] (deny all, in both proxies); Go’s omitempty drops them (allow all)', () => {
    const json = inject({ allowed_hosts: [] }, { allowed_fmt: [], allowed_dst: [] });
    expect(reference.unseal(reference.seal(json, SEAL_KEY), OPEN_KEY)).toBe(
      `{"inject_processor":{"token":"supersecret"},"bearer_auth":${JSON.stringify(BEARER.bearer_auth)}}`,
    );
    expect(reference.unseal(sealOurs(json), OPEN_KEY)).toBe(
      `{"inject_processor":{"token":"supersecret","allowed_fmt":[],"allowed_dst":[]},"bearer_auth":${JSON.stringify(BEARER.bearer_auth)},"allowed_hosts":[]}`,
    );
  });

  it('an oauth2 secret without its token object: Go seals it (and panics when it is used), we refuse to seal it', () => {
    const json = secretJson({ oauth2_processor: {} });
    expect(reference.unseal(reference.seal(json, SEAL_KEY), OPEN_KEY)).toBe(
      `{"oauth2_processor":{"token":null},"bearer_auth":${JSON.stringify(BEARER.bearer_auth)}}`,
    );
    expect(() => sealOurs(json)).toThrow('oauth2 token must be an object');
  });

  it('empty allow-lists deny in both proxies', async () => {
    for (const json of [
      inject({ allowed_hosts: [] }),
      inject({}, { allowed_dst: [] }),
      inject({}, { allowed_fmt: [] }),
    ]) {
      const token = sealOurs(json);
      const entry = { headers: withTokens() };
      const [theirs, ours] = [
        await observe(referenceProxy.url, entry, [token]),
        await observe(keywardProxy.url, entry, [token]),
      ];
      expect([theirs.status, theirs.upstream.length]).toEqual([ours.status, 0]);
      expect(unexplained(compare(ours, theirs), KEEP_ALIVE)).toEqual({ unexplained: [], missing: [] });
    }
  });
});

describe('the same requests through both proxies', () => {
  it.each(cases.map((entry) => [entry.name, entry] as const))('%s', async (_name, entry) => {
    const secrets = entry.secrets.map((json) => json.replaceAll('HOST', upstream));
    // Each proxy gets the tokens the other implementation sealed.
    const asIs = (json: string) => seal(json, SEAL_KEY);
    const theirs = await observe(referenceProxy.url, entry, secrets.map(entry.sealedAsIs ? asIs : sealOurs));
    const ours = await observe(
      keywardProxy.url,
      entry,
      secrets.map(entry.sealedAsIs ? asIs : (json) => reference.seal(json, SEAL_KEY)),
    );
    const expected: (string | RegExp)[] = [
      // The reference sets Connection: close on every answer except its transport errors.
      ...(theirs.headers.connection === 'close' ? KEEP_ALIVE : []),
      ...(theirs.upstream.length > 0 && ours.upstream.length > 0 ? KEEP_ALIVE_UPSTREAM : []),
      // (Go's transport asks for gzip on everything but HEAD.)
      ...(theirs.upstream.length > 0 &&
      ours.upstream.length > 0 &&
      entry.method !== 'HEAD' &&
      !entry.differences?.includes('acceptEncoding')
        ? ACCEPT_ENCODING
        : []),
      ...(entry.differences ?? []).flatMap((name) => DELIBERATE[name]),
    ];
    expect(unexplained(compare(ours, theirs), expected), JSON.stringify(theirs).slice(0, 600)).toEqual({
      unexplained: [],
      missing: [],
    });
  });

  it('token exchanges: the sealed answer works in both proxies', async () => {
    const jwtSecret = secretJson(
      {
        jwt_processor: {
          private_key: pemBase64(RSA.privateKey),
          email: 'robot@example',
          sub: '',
          scopes: 's',
          token_url: '',
        },
      },
      { allowed_hosts: [upstream] },
    );
    for (const [proxyUrl, token] of [
      [referenceProxy.url, sealOurs(jwtSecret)],
      [keywardProxy.url, reference.seal(jwtSecret, SEAL_KEY)],
    ] as const) {
      const exchange = await proxyRequest(proxyUrl, `http://${upstream}/token`, {
        method: 'POST',
        headers: { 'Proxy-Tokenizer': token, ...GOOD_AUTH },
      });
      const answer = JSON.parse(exchange.body) as {
        sealed_token: string;
        expires_in: number;
        token_type: string;
      };
      expect(answer.token_type).toBe('sealed');
      expect(answer.expires_in).toBe(3540);
      // Used through the other proxy: the access token is injected there too.
      for (const via of [referenceProxy.url, keywardProxy.url]) {
        const used = await proxyRequest(via, `http://${upstream}/echo`, {
          headers: { 'Proxy-Tokenizer': answer.sealed_token, ...GOOD_AUTH },
        });
        expect(JSON.parse(used.body).headers.authorization).toBe('Bearer ya29.stand-in');
      }
    }
  });
});

describe('refusals only one side makes (deliberate, see docs/tokenizer-users.md)', () => {
  async function rawConnect(port: number, token: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.write(
          `CONNECT ${upstream} HTTP/1.1\r\nHost: ${upstream}\r\nProxy-Tokenizer: ${token}\r\n${Object.entries(
            GOOD_AUTH,
          )
            .map(([name, value]) => `${name}: ${value}`)
            .join('\r\n')}\r\n\r\n`,
        );
      });
      let data = '';
      socket.on('data', (chunk: Buffer) => {
        data += chunk.toString();
        if (data.includes('\r\n\r\n')) {
          socket.destroy();
          resolve(data.split('\r\n')[0] as string);
        }
      });
      socket.on('error', reject);
    });
  }

  it('CONNECT: the reference opens a tunnel (and MITMs it); we refuse it (upstream #56)', async () => {
    const token = sealOurs(inject());
    expect(await rawConnect(referenceProxy.port, token)).toBe('HTTP/1.0 200 OK');
    expect(await rawConnect(Number(new URL(keywardProxy.url).port), token)).toBe('HTTP/1.1 400 Bad Request');
  });

  it('loopback upstreams: the reference dials them; we refuse them by default', async () => {
    const entry = { secrets: [], headers: withTokens() };
    const token = sealOurs(inject());
    const theirs = await observe(referenceProxy.url, entry, [token]);
    const ours = await observe(strictKeywardProxy.url, entry, [token]);
    expect(unexplained(compare(ours, theirs), [...KEEP_ALIVE, ...DELIBERATE.privateUpstream])).toEqual({
      unexplained: [],
      missing: [],
    });
  });

  it('an untrusted upstream certificate: 502 from both, without quoting the TLS error', async () => {
    const entry = { secrets: [], headers: withTokens(), target: `http://127.0.0.1:${otherCaEcho.port}/echo` };
    const token = sealOurs(inject());
    const theirs = await observe(referenceProxy.url, entry, [token]);
    const ours = await observe(keywardProxy.url, entry, [token]);
    expect(theirs.status).toBe(502);
    expect(
      // A transport error is the one answer the reference does not mark Connection: close.
      unexplained(compare(ours, theirs), DELIBERATE.upstreamErrorText),
    ).toEqual({ unexplained: [], missing: [] });
  });
});

describe('transparent mode and OPEN_PROXY (TOKENIZER_HOSTNAMES=tokenizer.internal, OPEN_PROXY=true)', () => {
  let theirsProxy: RunningReferenceTokenizer;
  let oursProxy: RunningTokenizerServer;
  beforeAll(async () => {
    theirsProxy = await reference.serve({
      OPEN_KEY,
      SSL_CERT_FILE: caFile,
      TOKENIZER_HOSTNAMES: 'tokenizer.internal',
      OPEN_PROXY: 'true',
    });
    oursProxy = await startTokenizerServer({
      openKey: OPEN_KEY,
      listenAddress: '127.0.0.1:0',
      upstreamCa,
      allowPrivateUpstreams: true,
      tokenizerHostnames: ['tokenizer.internal'],
      openProxy: true,
      auditLog: false,
      log: () => {},
    });
  });
  afterAll(async () => {
    await Promise.all([theirsProxy?.close(), oursProxy?.close()]);
  });

  const transparentCases: (Request & { name: string; secret?: boolean })[] = [
    {
      name: 'origin-form request with the upstream as Host',
      target: '/echo?x=1',
      secret: true,
      headers: (tokens) => ({ ...withTokens()(tokens), Host: 'HOST' }),
    },
    {
      name: 'origin-form request to the proxy itself',
      target: '/echo',
      secret: true,
      headers: (tokens) => ({ ...withTokens()(tokens), Host: 'tokenizer.internal' }),
    },
    {
      name: 'origin-form request to the proxy itself, with a port',
      target: '/echo',
      headers: () => ({ Host: 'tokenizer.internal:8080' }),
    },
    { name: 'open proxy: absolute-form request without a secret', headers: () => ({}) },
    {
      name: 'open proxy: origin-form request without a secret',
      target: '/echo',
      headers: () => ({ Host: 'HOST' }),
    },
  ];
  it.each(transparentCases.map((entry) => [entry.name, entry] as const))('%s', async (_name, entry) => {
    const request: Request = {
      ...entry,
      headers: (tokens) =>
        Object.fromEntries(
          Object.entries(entry.headers?.(tokens) ?? {}).map(([name, value]) => [
            name,
            typeof value === 'string' ? value.replaceAll('HOST', upstream) : value,
          ]),
        ),
    };
    const json = inject();
    const theirs = await observe(theirsProxy.url, request, entry.secret ? [sealOurs(json)] : []);
    const ours = await observe(oursProxy.url, request, entry.secret ? [reference.seal(json, SEAL_KEY)] : []);
    const forwarded = theirs.upstream.length > 0 && ours.upstream.length > 0;
    expect(
      unexplained(compare(ours, theirs), [
        ...(theirs.headers.connection === 'close' ? KEEP_ALIVE : []),
        ...(forwarded ? [...KEEP_ALIVE_UPSTREAM, ...ACCEPT_ENCODING] : []),
      ]),
      JSON.stringify(theirs).slice(0, 600),
    ).toEqual({ unexplained: [], missing: [] });
  });
});
