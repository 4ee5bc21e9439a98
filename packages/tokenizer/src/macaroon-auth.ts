import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { RE2JS } from 're2js';
import { decodeBase64Go } from './encoding.js';
import { decodeMsgpack, encodeMsgpack, MsgpackError, type Packable, type PackValue } from './msgpack.js';

/**
 * `macaroon_auth` (protocol §2.2.1): Fly.io-format macaroons (superfly/macaroon) with location
 * `tokenizer`, key id = first 16 bytes of SHA-256(key), an HMAC-SHA256 chain over the nonce and
 * each caveat's wire bytes, and the tokenizer's request caveats. Third-party caveats (which need
 * discharge tokens) are not supported and fail closed.
 */
export const MACAROON_LOCATION = 'tokenizer';

const CAVEAT_VALIDITY_WINDOW = 4n;
const CAVEAT_THIRD_PARTY = 11n;
const CAVEAT_BIND_TO_PARENT = 12n;
const USER_DEFINED = 1n << 48n;
export const MacaroonCaveatType = {
  requestMethod: USER_DEFINED,
  requestPath: USER_DEFINED + 1n,
  requestPathPrefix: USER_DEFINED + 2n,
  requestPathPattern: USER_DEFINED + 3n,
  requestHost: USER_DEFINED + 4n,
} as const;

/** What a macaroon's caveats are checked against. */
export interface MacaroonAccess {
  method: string;
  /** Escaped path, without the query. */
  path: string;
  /** The request authority (`host[:port]`), as host validators see it. */
  host: string;
  /** Unix seconds; defaults to now. */
  now?: number;
}

interface ParsedMacaroon {
  location: string;
  kid: Uint8Array;
  proof: boolean;
  nonceBytes: Uint8Array;
  caveats: { type: bigint; body: PackValue; signed: Uint8Array }[];
  tail: Uint8Array;
}

const hmac = (key: Uint8Array, data: Uint8Array) => createHmac('sha256', key).update(data).digest();

export function macaroonKeyId(key: Uint8Array): Uint8Array {
  return createHash('sha256').update(key).digest().subarray(0, 16);
}

function parseMacaroon(raw: Uint8Array): ParsedMacaroon {
  const value = decodeMsgpack(raw);
  if (value.kind !== 'array' || value.items.length < 4) throw new MsgpackError('not a macaroon');
  const [nonce, location, caveatSet, tail] = value.items as [PackValue, PackValue, PackValue, PackValue];
  if (nonce.kind !== 'array' || (nonce.items.length !== 2 && nonce.items.length !== 3)) {
    throw new MsgpackError('bad nonce');
  }
  const [kid, , proof] = nonce.items;
  if (kid?.kind !== 'bytes' || nonce.items[1]?.kind !== 'bytes') throw new MsgpackError('bad nonce');
  if (location.kind !== 'string' || caveatSet.kind !== 'array' || tail.kind !== 'bytes') {
    throw new MsgpackError('not a macaroon');
  }
  if (caveatSet.items.length % 2 !== 0) throw new MsgpackError('bad caveat container');
  const caveats: ParsedMacaroon['caveats'] = [];
  for (let index = 0; index < caveatSet.items.length; index += 2) {
    const type = caveatSet.items[index] as PackValue;
    const body = caveatSet.items[index + 1] as PackValue;
    if (type.kind !== 'int') throw new MsgpackError('bad caveat type');
    // Each caveat is signed as a one-caveat set: [type, body] (0x92 = array of 2).
    const signed = new Uint8Array(1 + (body.end - type.start));
    signed[0] = 0x92;
    signed.set(raw.subarray(type.start, body.end), 1);
    caveats.push({ type: type.value, body, signed });
  }
  return {
    location: location.value,
    kid: kid.value,
    proof: proof?.kind === 'bool' && proof.value,
    nonceBytes: raw.subarray(nonce.start, nonce.end),
    caveats,
    tail: tail.value,
  };
}

function verifySignature(macaroon: ParsedMacaroon, key: Uint8Array): boolean {
  let mac = hmac(key, macaroon.nonceBytes);
  for (const caveat of macaroon.caveats) mac = hmac(mac, caveat.signed);
  if (macaroon.proof) mac = hmac(new TextEncoder().encode('proof-signature-finalization'), mac);
  return macaroon.tail.length === mac.length && timingSafeEqual(mac, macaroon.tail);
}

function stringList(body: PackValue): string[] | undefined {
  if (body.kind !== 'array') return undefined;
  const values: string[] = [];
  for (const item of body.items) {
    if (item.kind !== 'string') return undefined;
    values.push(item.value);
  }
  return values;
}

/** Returns undefined when the caveat allows the access, otherwise why not. */
function checkCaveat(type: bigint, body: PackValue, access: MacaroonAccess): string | undefined {
  if (type === CAVEAT_VALIDITY_WINDOW) {
    if (body.kind !== 'array' || body.items.length < 2) return 'bad validity window';
    const [notBefore, notAfter] = body.items as [PackValue, PackValue];
    if (notBefore.kind !== 'int' || notAfter.kind !== 'int') return 'bad validity window';
    const now = BigInt(Math.floor(access.now ?? Date.now() / 1000));
    if (now > notAfter.value) return 'token expired';
    if (now < notBefore.value) return 'token not yet valid';
    return undefined;
  }
  if (type === CAVEAT_THIRD_PARTY) return 'third-party caveats are not supported';
  if (type === CAVEAT_BIND_TO_PARENT) return 'bind-to-parent caveat in a permission token';
  const values = stringList(body);
  switch (type) {
    case MacaroonCaveatType.requestMethod:
      return values?.includes(access.method) ? undefined : `method ${access.method} not allowed`;
    case MacaroonCaveatType.requestPath:
      return values?.includes(access.path) ? undefined : `path ${access.path} not allowed`;
    case MacaroonCaveatType.requestPathPrefix:
      return values?.some((prefix) => access.path.startsWith(prefix))
        ? undefined
        : `path ${access.path} not allowed`;
    case MacaroonCaveatType.requestPathPattern:
      return values?.some((pattern) => {
        try {
          return RE2JS.compile(pattern).test(access.path);
        } catch {
          return false;
        }
      })
        ? undefined
        : `path ${access.path} not allowed`;
    case MacaroonCaveatType.requestHost:
      return values?.includes(access.host) ? undefined : `host ${access.host} not allowed`;
    default:
      return `unsupported caveat type ${type}`;
  }
}

/**
 * Checks a `FlyV1` proxy token (`fm2_…,fm2_…`, the scheme word already removed) against a
 * macaroon_auth key. Every permission macaroon for this key must verify and allow the access,
 * and there must be at least one.
 */
export function verifyMacaroonToken(token: string, key: Uint8Array, access: MacaroonAccess): boolean {
  const expectedKid = macaroonKeyId(key);
  let matched = 0;
  for (const item of token.split(',')) {
    const trimmed = item.trim();
    const underscore = trimmed.indexOf('_');
    const label = trimmed.slice(0, underscore);
    if (underscore < 0 || !['fm2', 'fm1r', 'fm1a'].includes(label)) continue;
    let macaroon: ParsedMacaroon;
    try {
      macaroon = parseMacaroon(decodeBase64Go(trimmed.slice(underscore + 1)));
    } catch {
      continue;
    }
    if (macaroon.location !== MACAROON_LOCATION) continue; // a discharge token
    if (macaroon.kid.length !== expectedKid.length || !timingSafeEqual(macaroon.kid, expectedKid)) continue;
    if (!verifySignature(macaroon, key)) return false;
    for (const caveat of macaroon.caveats) {
      if (checkCaveat(caveat.type, caveat.body, access) !== undefined) return false;
    }
    matched++;
  }
  return matched > 0;
}

/**
 * Key id and signature chain only, whatever the location and caveats: for checking this
 * implementation against macaroons minted by superfly/macaroon (test vectors). Not an auth check.
 */
export function macaroonSignatureMatches(macaroonText: string, key: Uint8Array): boolean {
  const underscore = macaroonText.indexOf('_');
  if (underscore < 0) return false;
  let macaroon: ParsedMacaroon;
  try {
    macaroon = parseMacaroon(decodeBase64Go(macaroonText.slice(underscore + 1)));
  } catch {
    return false;
  }
  const expectedKid = macaroonKeyId(key);
  if (macaroon.kid.length !== expectedKid.length || !timingSafeEqual(macaroon.kid, expectedKid)) return false;
  return verifySignature(macaroon, key);
}

export interface TokenizerMacaroonCaveats {
  methods?: string[];
  paths?: string[];
  pathPrefixes?: string[];
  pathPatterns?: string[];
  hosts?: string[];
  /** Unix seconds. */
  notBefore?: number;
  notAfter?: number;
}

/**
 * Mints a macaroon for a macaroon_auth key, like the reference's `MacaroonAuthConfig.Macaroon`.
 * Send it as `Proxy-Authorization: FlyV1 <returned token>`.
 */
export function createTokenizerMacaroon(
  key: Uint8Array | string,
  caveats: TokenizerMacaroonCaveats = {},
): string {
  const keyBytes = typeof key === 'string' ? new TextEncoder().encode(key) : key;
  const nonce = encodeMsgpack([macaroonKeyId(keyBytes), new Uint8Array(randomBytes(16)), false]);
  const list: [bigint, Packable][] = [];
  if (caveats.notBefore !== undefined || caveats.notAfter !== undefined) {
    list.push([
      CAVEAT_VALIDITY_WINDOW,
      [caveats.notBefore ?? 0, caveats.notAfter ?? Number.MAX_SAFE_INTEGER],
    ]);
  }
  const add = (type: bigint, values: string[] | undefined) => {
    if (values) list.push([type, values]);
  };
  add(MacaroonCaveatType.requestMethod, caveats.methods);
  add(MacaroonCaveatType.requestPath, caveats.paths);
  add(MacaroonCaveatType.requestPathPrefix, caveats.pathPrefixes);
  add(MacaroonCaveatType.requestPathPattern, caveats.pathPatterns);
  add(MacaroonCaveatType.requestHost, caveats.hosts);
  let tail = hmac(keyBytes, nonce);
  const setItems: Packable[] = [];
  for (const [type, body] of list) {
    tail = hmac(tail, encodeMsgpack([type, body]));
    setItems.push(type, body);
  }
  const macaroon = concat([
    new Uint8Array([0x94]),
    nonce,
    encodeMsgpack(MACAROON_LOCATION),
    encodeMsgpack(setItems),
    encodeMsgpack(new Uint8Array(tail)),
  ]);
  return `fm2_${Buffer.from(macaroon).toString('base64')}`;
}

function concat(parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}
