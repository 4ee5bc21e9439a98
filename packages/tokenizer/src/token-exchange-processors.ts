import { createPrivateKey, type KeyObject, sign } from 'node:crypto';
import { TokenizerError } from './errors.js';
import { goJsonString } from './go-json.js';
import { configError, type Params, runtimeError } from './header-rules.js';
import type { OutgoingRequest } from './outgoing-request.js';
import type { ProcessorContext, RequestProcessor, ResponseProcessor } from './processors.js';
import { sealSecret } from './secret.js';
import type {
  ClientCredentialsProcessorDefinition,
  GithubAppProcessorDefinition,
  JwtProcessorDefinition,
  SecretDefinition,
} from './secret-json.js';

const GOOGLE_TOKEN_URL = 'https://oauth2.googleapis.com/token';
const GITHUB_TOKEN_URL = 'https://api.github.com/app/installations/{installation_id}/access_tokens';
const JWT_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

/** Go url.QueryEscape: only A–Z a–z 0–9 - _ . ~ stay, space becomes `+`. */
export function goQueryEscape(text: string): string {
  let result = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    const character = String.fromCharCode(byte);
    if (/[A-Za-z0-9\-_.~]/.test(character)) result += character;
    else if (byte === 0x20) result += '+';
    else result += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return result;
}

/** Go url.Values.Encode: keys sorted. */
function encodeForm(values: Record<string, string>): string {
  return Object.keys(values)
    .sort()
    .map((key) => `${goQueryEscape(key)}=${goQueryEscape(values[key] as string)}`)
    .join('&');
}

interface SigningKey {
  key: KeyObject;
  algorithm: 'RS256' | 'ES256' | 'ES384' | 'ES512' | 'EdDSA';
}

function parseSigningKey(pem: Uint8Array, memo: Map<string, unknown>): SigningKey {
  const cached = memo.get('signingKey') as SigningKey | undefined;
  if (cached) return cached;
  if (pem.length === 0) throw configError('missing private key');
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: Buffer.from(pem), format: 'pem' });
  } catch {
    throw configError('failed to parse private key');
  }
  let algorithm: SigningKey['algorithm'];
  if (key.asymmetricKeyType === 'rsa') algorithm = 'RS256';
  else if (key.asymmetricKeyType === 'ed25519') algorithm = 'EdDSA';
  else if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1') algorithm = 'ES256';
    else if (curve === 'secp384r1') algorithm = 'ES384';
    else if (curve === 'secp521r1') algorithm = 'ES512';
    else throw configError(`unsupported curve: ${curve ?? 'unknown'}`);
  } else throw configError(`unsupported key type: ${key.asymmetricKeyType ?? 'unknown'}`);
  const result = { key, algorithm };
  memo.set('signingKey', result);
  return result;
}

const base64Url = (data: Buffer | string) => Buffer.from(data).toString('base64url');

export function signJwt(signingKey: SigningKey, claims: Record<string, unknown>): string {
  const header = base64Url(JSON.stringify({ alg: signingKey.algorithm, typ: 'JWT' }));
  // Claims as Go's json.Marshal writes the reference's jwt.MapClaims: sorted keys, HTML-escaped
  // strings, so the same claims sign to the same bytes.
  const payload = base64Url(
    `{${Object.keys(claims)
      .sort()
      .map((name) => {
        const value = claims[name];
        return `${goJsonString(name)}:${typeof value === 'string' ? goJsonString(value) : JSON.stringify(value)}`;
      })
      .join(',')}}`,
  );
  const input = `${header}.${payload}`;
  const hash = signingKey.algorithm === 'EdDSA' ? null : `sha${signingKey.algorithm.slice(2)}`;
  let signature: Buffer;
  try {
    signature = sign(hash, Buffer.from(input), { key: signingKey.key, dsaEncoding: 'ieee-p1363' });
  } catch {
    throw runtimeError('jwt signing failed');
  }
  return `${input}.${base64Url(signature)}`;
}

function replaceBodyWithForm(request: OutgoingRequest, form: string): void {
  const bytes = Buffer.from(form);
  request.body.replace(bytes);
  request.headers['content-type'] = 'application/x-www-form-urlencoded';
  request.headers['content-length'] = String(bytes.length);
  delete request.headers['transfer-encoding'];
}

function responseError(message: string): TokenizerError {
  return new TokenizerError('RESPONSE_PROCESSOR', message, 502);
}

function parseJsonObject(body: Buffer): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    throw responseError('failed to parse token response');
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed))
    throw responseError('failed to parse token response');
  return parsed as Record<string, unknown>;
}

function sealedTokenBody(sealed: string, expiresIn: number): Buffer {
  const remaining = expiresIn > 60 ? expiresIn - 60 : expiresIn;
  return Buffer.from(JSON.stringify({ sealed_token: sealed, expires_in: remaining, token_type: 'sealed' }));
}

/** Seals an exchanged access token with the same auth and host rules as its parent. */
function oauthResponseProcessor(context: ProcessorContext): ResponseProcessor {
  return {
    statusCode: 200,
    process(body) {
      const response = parseJsonObject(body);
      const accessToken = response.access_token;
      if (typeof accessToken !== 'string' || accessToken === '')
        throw responseError('token response missing access_token');
      const secret: SecretDefinition = {
        processor: { type: 'inject', token: accessToken },
        auth: context.secret.auth,
      };
      if (context.secret.allowedHosts !== undefined) secret.allowedHosts = context.secret.allowedHosts;
      if (context.secret.allowedHostPattern !== undefined)
        secret.allowedHostPattern = context.secret.allowedHostPattern;
      const expiresIn = typeof response.expires_in === 'number' ? Math.floor(response.expires_in) : 0;
      return sealedTokenBody(sealSecret(secret, context.sealKey), expiresIn);
    },
  };
}

/** Google service-account style JWT bearer exchange (RFC 7523). */
export function createJwtProcessor(
  definition: JwtProcessorDefinition,
  params: Params,
  context: ProcessorContext,
): RequestProcessor {
  const signingKey = parseSigningKey(definition.privateKey as Uint8Array, context.memo);
  if (!definition.email) throw configError('missing email');
  const subject = Object.hasOwn(params, 'sub') ? (params.sub as string) : (definition.sub ?? '');
  const scopes = Object.hasOwn(params, 'scopes') ? (params.scopes as string) : (definition.scopes ?? '');
  const audience = definition.tokenUrl || GOOGLE_TOKEN_URL;
  return {
    apply(request) {
      const now = Math.floor(Date.now() / 1000);
      const claims: Record<string, unknown> = {
        iss: definition.email,
        scope: scopes,
        aud: audience,
        iat: now,
        exp: now + 3600,
      };
      if (subject) claims.sub = subject;
      replaceBodyWithForm(
        request,
        encodeForm({ assertion: signJwt(signingKey, claims), grant_type: JWT_BEARER_GRANT }),
      );
    },
    responseProcessor: oauthResponseProcessor(context),
  };
}

/** OAuth2 client credentials grant (RFC 6749 §4.4). */
export function createClientCredentialsProcessor(
  definition: ClientCredentialsProcessorDefinition,
  context: ProcessorContext,
): RequestProcessor {
  if (!definition.clientId) throw configError('missing client_id');
  if (!definition.clientSecret) throw configError('missing client_secret');
  if (!definition.tokenUrl) throw configError('missing token_url');
  const form: Record<string, string> = {
    client_id: definition.clientId,
    client_secret: definition.clientSecret,
    grant_type: 'client_credentials',
  };
  if (definition.scopes) form.scope = definition.scopes;
  const encoded = encodeForm(form);
  return {
    apply: (request) => replaceBodyWithForm(request, encoded),
    responseProcessor: oauthResponseProcessor(context),
  };
}

/** GitHub App installation token exchange. */
export function createGithubAppProcessor(
  definition: GithubAppProcessorDefinition,
  context: ProcessorContext,
): RequestProcessor {
  const signingKey = parseSigningKey(definition.privateKey as Uint8Array, context.memo);
  if (signingKey.algorithm !== 'RS256') throw configError('GitHub App requires an RSA private key');
  if (!definition.appId) throw configError('missing app_id');
  if (!definition.installationId) throw configError('missing installation_id');
  const template = (definition.tokenUrl || GITHUB_TOKEN_URL).replaceAll(
    '{installation_id}',
    definition.installationId,
  );
  let tokenPath: string;
  try {
    tokenPath = new URL(template).pathname;
  } catch {
    throw configError('bad token_url');
  }
  if (!tokenPath || tokenPath === '/') throw configError('token_url has no path');
  return {
    apply(request) {
      const now = Math.floor(Date.now() / 1000);
      const jwt = signJwt(signingKey, { iss: definition.appId, iat: now, exp: now + 600 });
      request.headers.authorization = `Bearer ${jwt}`;
      request.headers.accept = 'application/vnd.github+json';
      request.headers['x-github-api-version'] = '2022-11-28';
      const queryIndex = request.path.indexOf('?');
      request.path = tokenPath + (queryIndex < 0 ? '' : request.path.slice(queryIndex));
      request.body.replace(Buffer.alloc(0));
      request.headers['content-length'] = '0';
      delete request.headers['content-type'];
      delete request.headers['transfer-encoding'];
    },
    responseProcessor: {
      statusCode: 201,
      process(body) {
        const response = parseJsonObject(body);
        const token = response.token;
        if (typeof token !== 'string' || token === '') throw responseError('token response missing token');
        let expiresIn = 3600;
        if (typeof response.expires_at === 'string') {
          const expiresAt = Date.parse(response.expires_at);
          if (!Number.isNaN(expiresAt)) expiresIn = Math.floor((expiresAt - Date.now()) / 1000);
        }
        // The reference pins exchanged GitHub tokens to api.github.com.
        const secret: SecretDefinition = {
          processor: { type: 'inject', token, fmt: 'token %s' },
          auth: context.secret.auth,
          allowedHosts: ['api.github.com'],
        };
        return sealedTokenBody(sealSecret(secret, context.sealKey), expiresIn);
      },
    },
  };
}
