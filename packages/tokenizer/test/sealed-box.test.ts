import { describe, expect, it } from 'vitest';
import { decodeBase64Go, encodeHex } from '../src/encoding.js';
import { DecryptionError, EncodingError, InvalidKeyError, type TokenizerError } from '../src/errors.js';
import {
  generateOpenKey,
  OpenKey,
  open,
  parseSealKey,
  seal,
  sealKeyFromOpenKey,
  sealWithEphemeralKey,
} from '../src/sealed-box.js';

// Protocol §1.5: vectors that Go's box.OpenAnonymous and libsodium opened.
const OPEN_KEY = '0d88a36d5c41d5c3d97b929fdebf0bea57e5fb4616da88121ba972431a161cab';
const SEAL_KEY = 'a29dcbaa824af8f0a8d435df6ca1f27cfbf1d5aaa03f3f87fa0a58f8a34d8f67';
const EPHEMERAL_SECRET = '0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20';
const EPHEMERAL_PUBLIC = '07a37cbc142093c8b755dc1b10e86cb426374ad16aa853ed0bdfc0b2b86d1c7c';
const PLAINTEXT =
  '{"inject_processor":{"token":"supersecret"},"bearer_auth":{"digest":"IDtwta6IOTIWG70L3tk1fnY+Y6/OmLFiML4z8LlMLMU="}}';
const SEALED =
  'B6N8vBQgk8i3VdwbEOhstCY3StFqqFPtC9/AsrhtHHxyFne2twYvY9Fg0royPUhtPBDOLwuSpm+rXgh/i/0HVWELmelccyvU8gL9H4JSxjmm3QGtCYrU6wwNajHISZ2jVIY7lFnkkeZpx6Goy+0Z3CZfB8PWBUU6H/D89D3xVTTk+m0OSrkinuDUTKoLFyh7yzUWVF0j4ojRo3QrzpG5zo5ybRc=';

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

function expectEncodingError(token: string, offset: number) {
  try {
    open(token, OPEN_KEY);
  } catch (error) {
    expect(error).toBeInstanceOf(EncodingError);
    expect((error as EncodingError).message).toBe(
      `bad Proxy-Tokenizer encoding: illegal base64 data at input byte ${offset}`,
    );
    expect((error as TokenizerError).status).toBe(502);
    return;
  }
  throw new Error('expected an encoding error');
}

describe('keys (§1.1)', () => {
  it('derives the shipped seal key from the shipped open key', () => {
    expect(sealKeyFromOpenKey(OPEN_KEY)).toBe(SEAL_KEY);
    expect(sealKeyFromOpenKey(OPEN_KEY.toUpperCase())).toBe(SEAL_KEY);
  });

  it('generates 64 lowercase hex chars whose seal key round-trips', () => {
    const key = generateOpenKey();
    expect(key).toMatch(/^[0-9a-f]{64}$/);
    expect(sealKeyFromOpenKey(key)).toMatch(/^[0-9a-f]{64}$/);
    expect(generateOpenKey()).not.toBe(key);
  });

  it.each([
    [`${OPEN_KEY}\n`, 'bad private key: not hex'],
    [`0x${OPEN_KEY}`, 'bad private key: not hex'],
    [OPEN_KEY.slice(0, 62), 'bad private key size: 31'],
    ['', 'bad private key size: 0'],
  ])('rejects open key %j', (key, message) => {
    expect(() => sealKeyFromOpenKey(key)).toThrow(InvalidKeyError);
    expect(() => sealKeyFromOpenKey(key)).toThrow(message);
  });

  it('rejects bad seal keys with INVALID_SEAL_KEY', () => {
    expect(() => seal('x', SEAL_KEY.slice(2))).toThrow('bad public key size: 31');
    try {
      parseSealKey('zz');
    } catch (error) {
      expect((error as TokenizerError).code).toBe('INVALID_SEAL_KEY');
      return;
    }
    throw new Error('expected failure');
  });
});

describe('sealed box (§1.2, §1.5)', () => {
  it('reproduces the fixed-ephemeral vector byte for byte', () => {
    const sealed = sealWithEphemeralKey(
      PLAINTEXT,
      parseSealKey(SEAL_KEY),
      Buffer.from(EPHEMERAL_SECRET, 'hex'),
    );
    expect(encodeHex(sealed.subarray(0, 32))).toBe(EPHEMERAL_PUBLIC);
    expect(sealed.length).toBe(164);
    expect(Buffer.from(sealed).toString('base64')).toBe(SEALED);
  });

  it('opens the vector', () => {
    expect(text(open(SEALED, OPEN_KEY))).toBe(PLAINTEXT);
    expect(text(open(SEALED, OpenKey.fromHex(OPEN_KEY)))).toBe(PLAINTEXT);
  });

  it('round-trips random seals, which differ every time', () => {
    const first = seal(PLAINTEXT, SEAL_KEY);
    const second = seal(new TextEncoder().encode(PLAINTEXT), SEAL_KEY);
    expect(first).not.toBe(second);
    expect(first.length).toBe(4 * Math.ceil((116 + 48) / 3));
    expect(text(open(first, OPEN_KEY))).toBe(PLAINTEXT);
    expect(text(open(second, OPEN_KEY))).toBe(PLAINTEXT);
    expect(text(open(seal('', SEAL_KEY), OPEN_KEY))).toBe('');
  });

  it('fails decryption when the last byte is flipped', () => {
    const bytes = Buffer.from(SEALED, 'base64');
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 1;
    const flipped = bytes.toString('base64');
    expect(flipped.endsWith('4ojRo3QrzpG5zo5ybRY=')).toBe(true);
    expect(() => open(flipped, OPEN_KEY)).toThrow(DecryptionError);
    expect(() => open(flipped, OPEN_KEY)).toThrow('failed Proxy-Tokenizer decryption');
  });

  it('fails decryption for the first 47 bytes only', () => {
    const short = Buffer.from(SEALED, 'base64').subarray(0, 47).toString('base64');
    expect(() => open(short, OPEN_KEY)).toThrow(DecryptionError);
  });

  it('fails decryption with another open key', () => {
    expect(() => open(SEALED, generateOpenKey())).toThrow(DecryptionError);
  });

  it('rejects URL-safe base64 at byte 34', () => {
    const urlSafe = SEALED.replaceAll('+', '-').replaceAll('/', '_');
    expectEncodingError(urlSafe, 34);
  });

  it('rejects missing padding at byte 216', () => {
    expectEncodingError(SEALED.slice(0, -1), 216);
  });

  it('rejects an inner space at byte 10', () => {
    expectEncodingError(`${SEALED.slice(0, 10)} ${SEALED.slice(10)}`, 10);
  });

  it.each(['\n', '\r\n'])('ignores an embedded %j', (newline) => {
    expect(text(open(`${SEALED.slice(0, 60)}${newline}${SEALED.slice(60)}`, OPEN_KEY))).toBe(PLAINTEXT);
  });

  it('trims outer whitespace', () => {
    expect(text(open(`  ${SEALED}\t\n`, OPEN_KEY))).toBe(PLAINTEXT);
  });
});

describe('Go base64 decoding', () => {
  it.each([
    ['', ''],
    ['Zg==', 'f'],
    ['Zm8=', 'fo'],
    ['Zm9v', 'foo'],
    ['Zm\r\n9v', 'foo'],
    ['Zg=\n=', 'f'],
  ])('decodes %j', (input, expected) => {
    expect(text(decodeBase64Go(input))).toBe(expected);
  });

  it.each([
    ['Zg', 0],
    ['Zg=', 3],
    ['Z===', 1],
    ['Zg==Zg==', 4],
    ['Zm9v!', 4],
  ])('rejects %j at byte %i', (input, offset) => {
    expect(() => decodeBase64Go(input)).toThrow(`illegal base64 data at input byte ${offset}`);
  });
});
