import { decodeBase64Field, encodeBase64 } from './encoding.js';
import { SecretJsonError, TokenizerError } from './errors.js';
import { goJsonString, JsonSyntaxError, type JsonValue, jsonKindName, parseJsonTree } from './go-json.js';

/** Byte fields: raw bytes, or a string taken as its UTF-8 bytes (for example PEM text). */
export type BytesInput = Uint8Array | string;

export interface InjectProcessorDefinition {
  type: 'inject';
  token: string;
  fmt?: string;
  allowedFmt?: string[];
  dst?: string;
  allowedDst?: string[];
}
export interface InjectHmacProcessorDefinition {
  type: 'inject_hmac';
  key: BytesInput;
  /** Must be `sha256` (the reference refuses anything else); defaulted when sealing. */
  hash?: string;
  fmt?: string;
  allowedFmt?: string[];
  dst?: string;
  allowedDst?: string[];
}
export interface InjectBodyProcessorDefinition {
  type: 'inject_body';
  token: string;
  placeholder?: string;
}
export interface OAuth2Token {
  accessToken: string;
  refreshToken?: string;
}
export interface OAuth2ProcessorDefinition {
  type: 'oauth2';
  token?: OAuth2Token;
}
export interface OAuth2BodyProcessorDefinition {
  type: 'oauth2_body';
  token?: OAuth2Token;
  placeholder?: string;
}
export interface Sigv4ProcessorDefinition {
  type: 'sigv4';
  accessKey: string;
  secretKey: string;
  noSwap?: boolean;
}
export interface JwtProcessorDefinition {
  type: 'jwt';
  /** PEM text (or its bytes) of an RSA, ECDSA or Ed25519 private key. */
  privateKey: BytesInput;
  email: string;
  sub?: string;
  scopes?: string;
  tokenUrl?: string;
}
export interface ClientCredentialsProcessorDefinition {
  type: 'client_credentials';
  clientId: string;
  clientSecret: string;
  tokenUrl: string;
  scopes?: string;
}
export interface GithubAppProcessorDefinition {
  type: 'github_app';
  /** PEM text (or its bytes) of an RSA private key. */
  privateKey: BytesInput;
  appId: string;
  installationId: string;
  tokenUrl?: string;
}
export interface MultiProcessorDefinition {
  type: 'multi';
  processors: ProcessorDefinition[];
}
export type ProcessorDefinition =
  | InjectProcessorDefinition
  | InjectHmacProcessorDefinition
  | InjectBodyProcessorDefinition
  | OAuth2ProcessorDefinition
  | OAuth2BodyProcessorDefinition
  | Sigv4ProcessorDefinition
  | JwtProcessorDefinition
  | ClientCredentialsProcessorDefinition
  | GithubAppProcessorDefinition
  | MultiProcessorDefinition;

export interface BearerAuthDefinition {
  type: 'bearer';
  /** base64(SHA-256(proxy token)); see bearerDigest(). */
  digest: string;
}
export interface MacaroonAuthDefinition {
  type: 'macaroon';
  key: BytesInput;
}
export interface FlyioMacaroonAuthDefinition {
  type: 'flyio_macaroon';
  /** Opaque Fly.io access object, kept as plain JSON data. */
  access: unknown;
}
export interface FlySrcAuthDefinition {
  type: 'fly_src';
  allowedOrgs?: string[];
  allowedApps?: string[];
  allowedInstances?: string[];
}
export interface NoAuthDefinition {
  type: 'none';
}
export type AuthDefinition =
  | BearerAuthDefinition
  | MacaroonAuthDefinition
  | FlyioMacaroonAuthDefinition
  | FlySrcAuthDefinition
  | NoAuthDefinition;

/** A Secret: what lives inside a sealed token. */
export interface SecretDefinition {
  processor: ProcessorDefinition;
  auth: AuthDefinition;
  /** Exact, case-sensitive `host[:port]` list. An empty list denies every host. */
  allowedHosts?: string[];
  /** RE2 pattern matched unanchored against `host[:port]`: anchor it yourself. */
  allowedHostPattern?: string;
}

/** A parsed Secret: byte fields are always Uint8Array. */
export type Secret = SecretDefinition;

// ---------------------------------------------------------------------------------------
// Decoding with Go encoding/json rules (protocol §2.1).

type FieldKind = 'string' | 'bool' | 'bytes' | 'strings' | 'raw' | 'oauthToken' | 'processors';
type Schema = Record<string, FieldKind>;

const PROCESSOR_SCHEMAS: Record<string, Schema> = {
  inject_processor: {
    token: 'string',
    fmt: 'string',
    allowed_fmt: 'strings',
    dst: 'string',
    allowed_dst: 'strings',
  },
  inject_hmac_processor: {
    key: 'bytes',
    hash: 'string',
    fmt: 'string',
    allowed_fmt: 'strings',
    dst: 'string',
    allowed_dst: 'strings',
  },
  inject_body_processor: { token: 'string', placeholder: 'string' },
  oauth2_processor: { token: 'oauthToken' },
  oauth2_body_processor: { token: 'oauthToken', placeholder: 'string' },
  sigv4_processor: { access_key: 'string', secret_key: 'string', no_swap: 'bool' },
  jwt_processor: {
    private_key: 'bytes',
    email: 'string',
    sub: 'string',
    scopes: 'string',
    token_url: 'string',
  },
  client_credentials_processor: {
    client_id: 'string',
    client_secret: 'string',
    token_url: 'string',
    scopes: 'string',
  },
  github_app_processor: {
    private_key: 'bytes',
    app_id: 'string',
    installation_id: 'string',
    token_url: 'string',
  },
  multi_processor: {},
};
const AUTH_SCHEMAS: Record<string, Schema> = {
  bearer_auth: { digest: 'bytes' },
  macaroon_auth: { key: 'bytes' },
  flyio_macaroon_auth: { access: 'raw' },
  fly_src_auth: { allowed_orgs: 'strings', allowed_apps: 'strings', allowed_instances: 'strings' },
  no_auth: {},
};
const OAUTH_TOKEN_SCHEMA: Schema = { access_token: 'string', refresh_token: 'string' };
const PROCESSOR_KEYS = Object.keys(PROCESSOR_SCHEMAS);
const AUTH_KEYS = Object.keys(AUTH_SCHEMAS);
const TOP_LEVEL_SCHEMA: Schema = { allowed_hosts: 'strings', allowed_host_pattern: 'string' };

/** A decoded Go struct: field name → value; `undefined` = zero value / nil. */
type Struct = Record<string, unknown>;

class TypeMismatch extends Error {}

/** Go's field lookup: exact name first, then case-insensitive. */
function matchField(key: string, names: readonly string[]): string | undefined {
  if (names.includes(key)) return key;
  const lower = key.toLowerCase();
  return names.find((name) => name === lower);
}

function typeError(value: JsonValue, goType: string, field: string): never {
  throw new TypeMismatch(
    `json: cannot unmarshal ${jsonKindName(value)} into Go struct field ${field} of type ${goType}`,
  );
}

function decodeField(kind: FieldKind, value: JsonValue, existing: unknown, field: string): unknown {
  switch (kind) {
    case 'string':
      if (value.kind === 'null') return existing;
      if (value.kind !== 'string') typeError(value, 'string', field);
      return value.value;
    case 'bool':
      if (value.kind === 'null') return existing;
      if (value.kind !== 'bool') typeError(value, 'bool', field);
      return value.value;
    case 'bytes':
      if (value.kind === 'null') return undefined;
      if (value.kind === 'string') return decodeBase64Field(value.value, field);
      if (value.kind === 'array') {
        return new Uint8Array(
          value.items.map((item) => {
            const number = item.kind === 'number' ? Number(item.text) : Number.NaN;
            if (!Number.isInteger(number) || number < 0 || number > 255) typeError(item, 'uint8', field);
            return number;
          }),
        );
      }
      return typeError(value, '[]uint8', field);
    case 'strings':
      if (value.kind === 'null') return undefined;
      if (value.kind !== 'array') typeError(value, '[]string', field);
      // Go decodes null elements of []string as "".
      return value.items.map((item) => {
        if (item.kind === 'null') return '';
        if (item.kind !== 'string') typeError(item, 'string', field);
        return item.value;
      });
    case 'raw':
      return value.kind === 'null' ? undefined : toPlain(value);
    case 'oauthToken':
      if (value.kind === 'null') return undefined;
      return decodeStruct(value, OAUTH_TOKEN_SCHEMA, (existing as Struct | undefined) ?? {}, field);
    case 'processors':
      if (value.kind === 'null') return undefined;
      if (value.kind !== 'array') typeError(value, '[]tokenizer.wireProcessor', field);
      return value.items.map((item) => decodeWrapper(item, field));
  }
}

function toPlain(value: JsonValue): unknown {
  switch (value.kind) {
    case 'null':
      return null;
    case 'bool':
    case 'string':
      return value.value;
    case 'number':
      return Number(value.text);
    case 'array':
      return value.items.map(toPlain);
    case 'object':
      return Object.fromEntries(value.entries.map(([key, item]) => [key, toPlain(item)]));
  }
}

function decodeStruct(value: JsonValue, schema: Schema, target: Struct, path: string): Struct {
  if (value.kind !== 'object') typeError(value, 'struct', path);
  const names = Object.keys(schema);
  for (const [key, item] of value.entries) {
    const name = matchField(key, names);
    if (name === undefined) continue;
    target[name] = decodeField(schema[name] as FieldKind, item, target[name], `${path}.${name}`);
  }
  return target;
}

/** Struct pointers: null → nil, object → merge into the existing struct. */
function decodePointer(
  value: JsonValue,
  schema: Schema,
  existing: unknown,
  path: string,
): Struct | undefined {
  if (value.kind === 'null') return undefined;
  return decodeStruct(value, schema, (existing as Struct | undefined) ?? {}, path);
}

interface ProcessorSlots {
  [key: string]: Struct | Struct[] | undefined;
}

function decodeProcessorEntry(slots: ProcessorSlots, key: string, value: JsonValue, path: string): boolean {
  const name = matchField(key, PROCESSOR_KEYS);
  if (name === undefined) return false;
  if (name === 'multi_processor') {
    slots[name] = decodeField('processors', value, slots[name], `${path}.${name}`) as Struct[] | undefined;
  } else {
    slots[name] = decodePointer(value, PROCESSOR_SCHEMAS[name] as Schema, slots[name], `${path}.${name}`);
  }
  return true;
}

function decodeWrapper(value: JsonValue, path: string): ProcessorSlots {
  if (value.kind === 'null') return {};
  if (value.kind !== 'object') typeError(value, 'tokenizer.wireProcessor', path);
  const slots: ProcessorSlots = {};
  for (const [key, item] of value.entries) decodeProcessorEntry(slots, key, item, path);
  return slots;
}

function present(slots: ProcessorSlots | Record<string, unknown>): string[] {
  return Object.keys(slots).filter((key) => slots[key] !== undefined);
}

const bytesOf = (value: unknown): Uint8Array => (value as Uint8Array | undefined) ?? new Uint8Array(0);
const stringOf = (value: unknown): string => (value as string | undefined) ?? '';
const optionalString = (value: unknown): string | undefined =>
  value === undefined ? undefined : (value as string);
const optionalStrings = (value: unknown): string[] | undefined => value as string[] | undefined;

function withOptionals<T extends object>(base: T, optionals: Record<string, unknown>): T {
  for (const [key, value] of Object.entries(optionals)) {
    if (value !== undefined) (base as Record<string, unknown>)[key] = value;
  }
  return base;
}

function buildProcessor(slots: ProcessorSlots): ProcessorDefinition {
  const keys = present(slots);
  if (keys.length !== 1) throw new SecretJsonError('bad processor config');
  const key = keys[0] as string;
  const value = slots[key] as Struct;
  switch (key) {
    case 'inject_processor':
      return withOptionals(
        { type: 'inject', token: stringOf(value.token) },
        { fmt: value.fmt, allowedFmt: value.allowed_fmt, dst: value.dst, allowedDst: value.allowed_dst },
      );
    case 'inject_hmac_processor':
      return withOptionals(
        { type: 'inject_hmac', key: bytesOf(value.key), hash: stringOf(value.hash) },
        { fmt: value.fmt, allowedFmt: value.allowed_fmt, dst: value.dst, allowedDst: value.allowed_dst },
      );
    case 'inject_body_processor':
      return withOptionals(
        { type: 'inject_body', token: stringOf(value.token) },
        { placeholder: value.placeholder },
      );
    case 'oauth2_processor':
      return withOptionals({ type: 'oauth2' }, { token: oauthToken(value.token) });
    case 'oauth2_body_processor':
      return withOptionals(
        { type: 'oauth2_body' },
        { token: oauthToken(value.token), placeholder: value.placeholder },
      );
    case 'sigv4_processor':
      return {
        type: 'sigv4',
        accessKey: stringOf(value.access_key),
        secretKey: stringOf(value.secret_key),
        noSwap: value.no_swap === true,
      };
    case 'jwt_processor':
      return withOptionals(
        { type: 'jwt', privateKey: bytesOf(value.private_key), email: stringOf(value.email) },
        { sub: value.sub, scopes: value.scopes, tokenUrl: value.token_url },
      );
    case 'client_credentials_processor':
      return withOptionals(
        {
          type: 'client_credentials',
          clientId: stringOf(value.client_id),
          clientSecret: stringOf(value.client_secret),
          tokenUrl: stringOf(value.token_url),
        },
        { scopes: value.scopes },
      );
    case 'github_app_processor':
      return withOptionals(
        {
          type: 'github_app',
          privateKey: bytesOf(value.private_key),
          appId: stringOf(value.app_id),
          installationId: stringOf(value.installation_id),
        },
        { tokenUrl: value.token_url },
      );
    default:
      return { type: 'multi', processors: (slots[key] as unknown as ProcessorSlots[]).map(buildProcessor) };
  }
}

function oauthToken(value: unknown): OAuth2Token | undefined {
  if (value === undefined) return undefined;
  const token = value as Struct;
  return withOptionals({ accessToken: stringOf(token.access_token) }, { refreshToken: token.refresh_token });
}

function buildAuth(slots: Record<string, Struct | undefined>): AuthDefinition {
  const keys = present(slots);
  if (keys.length !== 1) throw new SecretJsonError('bad auth config');
  const key = keys[0] as string;
  const value = slots[key] as Struct;
  switch (key) {
    case 'bearer_auth':
      return { type: 'bearer', digest: encodeBase64(bytesOf(value.digest)) };
    case 'macaroon_auth':
      return { type: 'macaroon', key: bytesOf(value.key) };
    case 'flyio_macaroon_auth':
      return { type: 'flyio_macaroon', access: value.access ?? null };
    case 'fly_src_auth':
      return withOptionals(
        { type: 'fly_src' },
        {
          allowedOrgs: optionalStrings(value.allowed_orgs),
          allowedApps: optionalStrings(value.allowed_apps),
          allowedInstances: optionalStrings(value.allowed_instances),
        },
      );
    default:
      return { type: 'none' };
  }
}

/**
 * Parses Secret JSON with Go's encoding/json rules: case-insensitive keys, last duplicate
 * wins (nested objects merge), unknown keys ignored, null = absent, an empty array is not
 * absent, byte fields are padded standard base64. Exactly one processor and one auth.
 * Throws SecretJsonError (`bad secret json: …`).
 */
export function parseSecret(json: string | Uint8Array): Secret {
  const text = typeof json === 'string' ? json : new TextDecoder().decode(json);
  let tree: JsonValue;
  try {
    tree = parseJsonTree(text);
  } catch (error) {
    if (error instanceof JsonSyntaxError) throw new SecretJsonError(error.message);
    throw error;
  }
  try {
    if (tree.kind !== 'object') typeError(tree, 'tokenizer.wireSecret', 'Secret');
    const processorSlots: ProcessorSlots = {};
    const authSlots: Record<string, Struct | undefined> = {};
    const topLevel: Struct = {};
    for (const [key, value] of tree.entries) {
      if (decodeProcessorEntry(processorSlots, key, value, 'Secret')) continue;
      const authName = matchField(key, AUTH_KEYS);
      if (authName !== undefined) {
        authSlots[authName] = decodePointer(
          value,
          AUTH_SCHEMAS[authName] as Schema,
          authSlots[authName],
          authName,
        );
        continue;
      }
      const name = matchField(key, Object.keys(TOP_LEVEL_SCHEMA));
      if (name !== undefined) {
        topLevel[name] = decodeField(TOP_LEVEL_SCHEMA[name] as FieldKind, value, topLevel[name], name);
      }
    }
    const processor = buildProcessor(processorSlots);
    const auth = buildAuth(authSlots);
    return withOptionals(
      { processor, auth },
      {
        allowedHosts: topLevel.allowed_hosts,
        allowedHostPattern: optionalString(topLevel.allowed_host_pattern),
      },
    );
  } catch (error) {
    if (error instanceof TypeMismatch) throw new SecretJsonError(error.message);
    throw error;
  }
}

// ---------------------------------------------------------------------------------------
// Marshalling in Go's key order and escaping (protocol §2.1), for interop with Go tooling.

const PROCESSOR_WIRE_NAMES: Record<ProcessorDefinition['type'], string> = {
  inject: 'inject_processor',
  inject_hmac: 'inject_hmac_processor',
  inject_body: 'inject_body_processor',
  oauth2: 'oauth2_processor',
  oauth2_body: 'oauth2_body_processor',
  sigv4: 'sigv4_processor',
  jwt: 'jwt_processor',
  client_credentials: 'client_credentials_processor',
  github_app: 'github_app_processor',
  multi: 'multi_processor',
};

function invalid(message: string): never {
  throw new TokenizerError('BAD_SECRET_DEFINITION', message, 500);
}

function requireString(value: unknown, field: string): string {
  if (typeof value !== 'string') invalid(`${field} must be a string`);
  return value;
}

function bytesInput(value: unknown, field: string): Uint8Array {
  if (typeof value === 'string') return new TextEncoder().encode(value);
  if (value instanceof Uint8Array) return value;
  return invalid(`${field} must be a Uint8Array or a string`);
}

class JsonObjectWriter {
  private readonly parts: string[] = [];
  add(key: string, encoded: string): this {
    this.parts.push(`${goJsonString(key)}:${encoded}`);
    return this;
  }
  string(key: string, value: unknown, field: string, omitEmpty = false): this {
    if (omitEmpty && (value === undefined || value === '')) return this;
    return this.add(key, goJsonString(value === undefined ? '' : requireString(value, field)));
  }
  strings(key: string, value: unknown, field: string): this {
    if (value === undefined) return this;
    if (!Array.isArray(value)) invalid(`${field} must be an array of strings`);
    return this.add(
      key,
      `[${value.map((item, index) => goJsonString(requireString(item, `${field}[${index}]`))).join(',')}]`,
    );
  }
  bytes(key: string, value: unknown, field: string): this {
    return this.add(key, goJsonString(encodeBase64(bytesInput(value, field))));
  }
  toString(): string {
    return `{${this.parts.join(',')}}`;
  }
}

function fmtDstFields(
  writer: JsonObjectWriter,
  processor: InjectProcessorDefinition | InjectHmacProcessorDefinition,
) {
  return writer
    .string('fmt', processor.fmt, 'fmt', true)
    .strings('allowed_fmt', processor.allowedFmt, 'allowedFmt')
    .string('dst', processor.dst, 'dst', true)
    .strings('allowed_dst', processor.allowedDst, 'allowedDst');
}

function marshalOAuthToken(token: OAuth2Token | undefined): string {
  if (!token || typeof token !== 'object') return invalid('oauth2 token must be an object');
  return new JsonObjectWriter()
    .string('access_token', token.accessToken, 'token.accessToken')
    .string('refresh_token', token.refreshToken, 'token.refreshToken', true)
    .toString();
}

function marshalProcessor(processor: ProcessorDefinition): string {
  const writer = new JsonObjectWriter();
  switch (processor.type) {
    case 'inject':
      return fmtDstFields(writer.string('token', processor.token, 'token'), processor).toString();
    case 'inject_hmac':
      return fmtDstFields(
        writer.bytes('key', processor.key, 'key').string('hash', processor.hash ?? 'sha256', 'hash'),
        processor,
      ).toString();
    case 'inject_body':
      return writer
        .string('token', processor.token, 'token')
        .string('placeholder', processor.placeholder, 'placeholder', true)
        .toString();
    case 'oauth2':
      return writer.add('token', marshalOAuthToken(processor.token)).toString();
    case 'oauth2_body':
      return writer
        .add('token', marshalOAuthToken(processor.token))
        .string('placeholder', processor.placeholder, 'placeholder', true)
        .toString();
    case 'sigv4':
      return writer
        .string('access_key', processor.accessKey, 'accessKey')
        .string('secret_key', processor.secretKey, 'secretKey')
        .add('no_swap', processor.noSwap === true ? 'true' : 'false')
        .toString();
    case 'jwt':
      return writer
        .bytes('private_key', processor.privateKey, 'privateKey')
        .string('email', processor.email, 'email')
        .string('sub', processor.sub, 'sub')
        .string('scopes', processor.scopes, 'scopes')
        .string('token_url', processor.tokenUrl, 'tokenUrl')
        .toString();
    case 'client_credentials':
      return writer
        .string('client_id', processor.clientId, 'clientId')
        .string('client_secret', processor.clientSecret, 'clientSecret')
        .string('token_url', processor.tokenUrl, 'tokenUrl')
        .string('scopes', processor.scopes, 'scopes', true)
        .toString();
    case 'github_app':
      return writer
        .bytes('private_key', processor.privateKey, 'privateKey')
        .string('app_id', processor.appId, 'appId')
        .string('installation_id', processor.installationId, 'installationId')
        .string('token_url', processor.tokenUrl, 'tokenUrl')
        .toString();
    case 'multi':
      if (!Array.isArray(processor.processors)) invalid('multi processors must be an array');
      return `[${processor.processors.map((member) => `{${goJsonString(wireProcessorName(member))}:${marshalProcessor(member)}}`).join(',')}]`;
    default:
      return invalid(`unknown processor type ${JSON.stringify((processor as { type?: unknown }).type)}`);
  }
}

function wireProcessorName(processor: ProcessorDefinition): string {
  const name = PROCESSOR_WIRE_NAMES[processor?.type];
  if (!name) invalid(`unknown processor type ${JSON.stringify((processor as { type?: unknown })?.type)}`);
  return name;
}

function marshalAuth(auth: AuthDefinition): [string, string] {
  switch (auth?.type) {
    case 'bearer':
      return ['bearer_auth', new JsonObjectWriter().string('digest', auth.digest, 'digest').toString()];
    case 'macaroon':
      return ['macaroon_auth', new JsonObjectWriter().bytes('key', auth.key, 'key').toString()];
    case 'flyio_macaroon':
      return ['flyio_macaroon_auth', `{"access":${marshalPlain(auth.access ?? null)}}`];
    case 'fly_src': {
      const list = (value: string[] | undefined, field: string) =>
        value === undefined
          ? 'null'
          : new JsonObjectWriter().strings('x', value, field).toString().slice(5, -1);
      return [
        'fly_src_auth',
        `{"allowed_orgs":${list(auth.allowedOrgs, 'allowedOrgs')},"allowed_apps":${list(auth.allowedApps, 'allowedApps')},"allowed_instances":${list(auth.allowedInstances, 'allowedInstances')}}`,
      ];
    }
    case 'none':
      return ['no_auth', '{}'];
    default:
      return invalid(`unknown auth type ${JSON.stringify((auth as { type?: unknown })?.type)}`);
  }
}

function marshalPlain(value: unknown): string {
  if (value === null || typeof value === 'number' || typeof value === 'boolean') return JSON.stringify(value);
  if (typeof value === 'string') return goJsonString(value);
  if (Array.isArray(value)) return `[${value.map(marshalPlain).join(',')}]`;
  if (typeof value === 'object') {
    // Go marshals maps with sorted keys.
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) =>
      a < b ? -1 : a > b ? 1 : 0,
    );
    return `{${entries.map(([key, item]) => `${goJsonString(key)}:${marshalPlain(item)}`).join(',')}}`;
  }
  return invalid('access must be plain JSON data');
}

/** Secret JSON exactly as Go's json.Marshal would write it (key order, HTML escaping). */
export function marshalSecret(secret: SecretDefinition): string {
  if (!secret || typeof secret !== 'object') invalid('secret must be an object');
  if (secret.auth?.type === 'bearer') {
    // Catch the common mistake of passing the password instead of its digest.
    const digest = Buffer.from(requireString(secret.auth.digest, 'auth.digest'), 'base64');
    if (digest.length !== 32 || digest.toString('base64') !== secret.auth.digest) {
      invalid('auth.digest must be base64(SHA-256(token)); use bearerDigest(token)');
    }
  }
  const writer = new JsonObjectWriter();
  writer.add(wireProcessorName(secret.processor), marshalProcessor(secret.processor));
  writer.add(...marshalAuth(secret.auth));
  writer.strings('allowed_hosts', secret.allowedHosts, 'allowedHosts');
  // omitempty in Go: an empty pattern is not written (it would match every host anyway).
  writer.string('allowed_host_pattern', secret.allowedHostPattern, 'allowedHostPattern', true);
  return writer.toString();
}
