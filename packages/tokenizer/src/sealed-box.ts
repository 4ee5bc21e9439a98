import {
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
} from 'node:crypto';
import { blake2b } from '@noble/hashes/blake2.js';
import nacl from 'tweetnacl';
import { decodeBase64Go, decodeHex, encodeBase64, encodeHex } from './encoding.js';
import { DecryptionError, InvalidKeyError } from './errors.js';

/**
 * libsodium `crypto_box_seal` (protocol §1.2): epk(32) ‖ tag(16) ‖ ciphertext.
 * X25519 runs in node:crypto (≈20× faster than tweetnacl's pure-JS scalar multiplication);
 * HSalsa20 and XSalsa20-Poly1305 come from tweetnacl, the 24-byte nonce from BLAKE2b.
 */
export const SEALED_BOX_OVERHEAD = 48;

const PKCS8_X25519_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SIGMA = new Uint8Array(Buffer.from('expand 32-byte k', 'ascii'));
const ZERO_16 = new Uint8Array(16);

type LowLevel = {
  crypto_core_hsalsa20(out: Uint8Array, input: Uint8Array, key: Uint8Array, constant: Uint8Array): void;
};
const lowLevel = (nacl as unknown as { lowlevel: LowLevel }).lowlevel;

function privateKeyObject(secretKey: Uint8Array): KeyObject {
  return createPrivateKey({
    key: Buffer.concat([PKCS8_X25519_PREFIX, secretKey]),
    format: 'der',
    type: 'pkcs8',
  });
}

// JWK import/export of raw X25519 keys is ~10x cheaper than going through DER in Node 20
// (OpenSSL 3's decoder path), and this runs once per seal and per cache miss.
function publicKeyObject(publicKey: Uint8Array): KeyObject {
  const x = Buffer.from(publicKey.buffer, publicKey.byteOffset, publicKey.byteLength).toString('base64url');
  return createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x }, format: 'jwk' });
}

function rawPublicKey(key: KeyObject): Uint8Array {
  const jwk = key.export({ format: 'jwk' });
  return new Uint8Array(Buffer.from(jwk.x as string, 'base64url'));
}

/** crypto_box_beforenm: HSalsa20 over the X25519 shared secret. */
function sharedKey(privateKey: KeyObject, publicKey: Uint8Array): Uint8Array {
  let shared: Buffer;
  try {
    shared = diffieHellman({ privateKey, publicKey: publicKeyObject(publicKey) });
  } catch {
    // Low-order points: OpenSSL refuses an all-zero shared secret. Go would accept it,
    // but such a box can only come from a dishonest sender.
    throw new DecryptionError();
  }
  const key = new Uint8Array(32);
  lowLevel.crypto_core_hsalsa20(key, ZERO_16, new Uint8Array(shared), SIGMA);
  return key;
}

function sealNonce(ephemeralPublicKey: Uint8Array, recipientPublicKey: Uint8Array): Uint8Array {
  const input = new Uint8Array(64);
  input.set(ephemeralPublicKey, 0);
  input.set(recipientPublicKey, 32);
  return blake2b(input, { dkLen: 24 });
}

/** A parsed open (private) key, with the X25519 key object cached for repeated opens. */
export class OpenKey {
  readonly bytes: Uint8Array;
  readonly sealKey: Uint8Array;
  readonly keyObject: KeyObject;

  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    this.keyObject = privateKeyObject(bytes);
    this.sealKey = rawPublicKey(createPublicKey(this.keyObject));
  }

  /** Go `ParseOpenKey`: 64 hex chars, no trimming. */
  static fromHex(openKeyHex: string): OpenKey {
    if (typeof openKeyHex !== 'string') throw new InvalidKeyError('INVALID_OPEN_KEY', 'bad private key');
    const bytes = decodeHex(openKeyHex);
    if (!bytes) throw new InvalidKeyError('INVALID_OPEN_KEY', 'bad private key: not hex');
    if (bytes.length !== 32)
      throw new InvalidKeyError('INVALID_OPEN_KEY', `bad private key size: ${bytes.length}`);
    return new OpenKey(bytes);
  }

  get sealKeyHex(): string {
    return encodeHex(this.sealKey);
  }
}

export function parseSealKey(sealKeyHex: string): Uint8Array {
  if (typeof sealKeyHex !== 'string') throw new InvalidKeyError('INVALID_SEAL_KEY', 'bad public key');
  const bytes = decodeHex(sealKeyHex);
  if (!bytes) throw new InvalidKeyError('INVALID_SEAL_KEY', 'bad public key: not hex');
  if (bytes.length !== 32)
    throw new InvalidKeyError('INVALID_SEAL_KEY', `bad public key size: ${bytes.length}`);
  return bytes;
}

/** A fresh random open key, 64 lowercase hex chars (same as `openssl rand -hex 32`). */
export function generateOpenKey(): string {
  return randomBytes(32).toString('hex');
}

/** The seal (public) key of an open key, 64 lowercase hex chars. */
export function sealKeyFromOpenKey(openKeyHex: string): string {
  return OpenKey.fromHex(openKeyHex).sealKeyHex;
}

function toBytes(plaintext: string | Uint8Array): Uint8Array {
  return typeof plaintext === 'string' ? new TextEncoder().encode(plaintext) : plaintext;
}

/**
 * Seal with a caller-chosen ephemeral secret key. Only for deterministic test vectors:
 * reusing an ephemeral key breaks the scheme.
 */
export function sealWithEphemeralKey(
  plaintext: string | Uint8Array,
  recipientPublicKey: Uint8Array,
  ephemeralSecretKey: Uint8Array,
): Uint8Array {
  const ephemeral = privateKeyObject(ephemeralSecretKey);
  return sealWithKeyObject(
    toBytes(plaintext),
    recipientPublicKey,
    ephemeral,
    rawPublicKey(createPublicKey(ephemeral)),
  );
}

function sealWithKeyObject(
  message: Uint8Array,
  recipientPublicKey: Uint8Array,
  ephemeralPrivate: KeyObject,
  ephemeralPublic: Uint8Array,
): Uint8Array {
  const key = sharedKey(ephemeralPrivate, recipientPublicKey);
  const boxed = nacl.secretbox(message, sealNonce(ephemeralPublic, recipientPublicKey), key);
  const output = new Uint8Array(32 + boxed.length);
  output.set(ephemeralPublic, 0);
  output.set(boxed, 32);
  return output;
}

/** Raw sealed box bytes for a 32-byte recipient public key. */
export function sealBytes(plaintext: string | Uint8Array, recipientPublicKey: Uint8Array): Uint8Array {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  return sealWithKeyObject(toBytes(plaintext), recipientPublicKey, privateKey, rawPublicKey(publicKey));
}

/** Opens raw sealed box bytes; throws DecryptionError. */
export function openBytes(sealed: Uint8Array, openKey: OpenKey): Uint8Array {
  if (sealed.length < SEALED_BOX_OVERHEAD) throw new DecryptionError();
  const ephemeralPublic = sealed.subarray(0, 32);
  const key = sharedKey(openKey.keyObject, ephemeralPublic);
  const opened = nacl.secretbox.open(sealed.subarray(32), sealNonce(ephemeralPublic, openKey.sealKey), key);
  if (!opened) throw new DecryptionError();
  return opened;
}

/** libsodium-compatible sealed box, as standard padded base64. */
export function seal(plaintext: string | Uint8Array, sealKeyHex: string): string {
  return encodeBase64(sealBytes(plaintext, parseSealKey(sealKeyHex)));
}

/** Accepts an OpenKey or hex; caches nothing (the proxy keeps its own OpenKey). */
export function toOpenKey(openKey: string | OpenKey): OpenKey {
  return openKey instanceof OpenKey ? openKey : OpenKey.fromHex(openKey);
}

/**
 * Opens a base64 token the way the reference proxy does: outer whitespace trimmed,
 * embedded CR/LF ignored, otherwise strict standard base64.
 */
export function open(tokenBase64: string, openKeyHex: string | OpenKey): Uint8Array {
  const key = toOpenKey(openKeyHex);
  return openBytes(decodeBase64Go(tokenBase64.trim()), key);
}
