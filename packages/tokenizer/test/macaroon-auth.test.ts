import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  createTokenizerMacaroon,
  macaroonKeyId,
  macaroonSignatureMatches,
  verifyMacaroonToken,
} from '../src/macaroon-auth.js';
import { decodeMsgpack, encodeMsgpack } from '../src/msgpack.js';

const KEY = new TextEncoder().encode('macaroon-root-key');
const access = { method: 'POST', path: '/foo', host: 'api.example.com', now: 1_800_000_000 };

describe('msgpack subset', () => {
  it('encodes compactly like vmihailenco/msgpack (UseCompactInts)', () => {
    expect(Buffer.from(encodeMsgpack([1n << 48n, ['GET']])).toString('hex')).toBe(
      '92cf0001000000000000' + '91a3474554',
    );
    expect(
      Buffer.from(encodeMsgpack([new Uint8Array([1, 2]), false, -1, 200, 70000, -200])).toString('hex'),
    ).toBe('96' + 'c4020102' + 'c2' + 'ff' + 'ccc8' + 'ce00011170' + 'd1ff38');
  });
  it('decodes what it encodes, with byte spans', () => {
    const bytes = encodeMsgpack([1, 'x', [true, null]]);
    const value = decodeMsgpack(bytes);
    expect(value.kind).toBe('array');
    if (value.kind !== 'array') return;
    expect(value.items[2]?.start).toBe(4);
    expect(value.end).toBe(bytes.length);
    expect(() => decodeMsgpack(bytes.subarray(0, 3))).toThrow('truncated');
    expect(() => decodeMsgpack(new Uint8Array([0xc1]))).toThrow('unsupported');
  });
});

describe('macaroon_auth tokens (superfly/macaroon format, location "tokenizer")', () => {
  it('uses the first 16 bytes of SHA-256(key) as key id and signs nonce then caveats', () => {
    const token = createTokenizerMacaroon(KEY, { methods: ['POST'] });
    const raw = Buffer.from(token.slice('fm2_'.length), 'base64');
    const value = decodeMsgpack(raw);
    if (value.kind !== 'array') throw new Error('not an array');
    const [nonce, location, caveats, tail] = value.items;
    expect(location).toMatchObject({ kind: 'string', value: 'tokenizer' });
    if (nonce?.kind !== 'array' || caveats?.kind !== 'array' || tail?.kind !== 'bytes')
      throw new Error('shape');
    expect(nonce.items[0]).toMatchObject({ kind: 'bytes', value: macaroonKeyId(KEY) });
    const first = createHmac('sha256', KEY).update(raw.subarray(nonce.start, nonce.end)).digest();
    const caveatBytes = Buffer.concat([
      Buffer.from([0x92]),
      raw.subarray(caveats.items[0]?.start, caveats.items[1]?.end),
    ]);
    expect(Buffer.from(tail.value)).toEqual(createHmac('sha256', first).update(caveatBytes).digest());
  });

  it('accepts an empty-caveat macaroon and matching request caveats', () => {
    expect(verifyMacaroonToken(createTokenizerMacaroon(KEY), KEY, access)).toBe(true);
    const scoped = createTokenizerMacaroon(KEY, {
      methods: ['POST'],
      hosts: ['api.example.com'],
      paths: ['/foo'],
      pathPrefixes: ['/f'],
      pathPatterns: ['^/fo+$'],
      notBefore: 1_700_000_000,
      notAfter: 1_900_000_000,
    });
    expect(verifyMacaroonToken(scoped, KEY, access)).toBe(true);
  });

  it.each([
    [{ methods: ['GET'] }],
    [{ hosts: ['other.example.com'] }],
    [{ paths: ['/bar'] }],
    [{ pathPrefixes: ['/bar'] }],
    [{ pathPatterns: ['^/bar'] }],
    [{ notAfter: 1_700_000_000 }],
    [{ notBefore: 1_900_000_000 }],
  ])('refuses caveats %j that do not match', (caveats) => {
    expect(verifyMacaroonToken(createTokenizerMacaroon(KEY, caveats), KEY, access)).toBe(false);
  });

  it('refuses another key, tampering, garbage and caveat stripping', () => {
    const token = createTokenizerMacaroon(KEY, { methods: ['POST'] });
    expect(verifyMacaroonToken(token, new TextEncoder().encode('other'), access)).toBe(false);
    const raw = Buffer.from(token.slice(4), 'base64');
    raw[raw.length - 1] = (raw[raw.length - 1] as number) ^ 1;
    expect(verifyMacaroonToken(`fm2_${raw.toString('base64')}`, KEY, access)).toBe(false);
    expect(verifyMacaroonToken('fm2_AAAA', KEY, access)).toBe(false);
    expect(verifyMacaroonToken('not a macaroon', KEY, access)).toBe(false);
    // Re-encode the same macaroon without its caveat but with the old tail: must fail.
    const value = decodeMsgpack(Buffer.from(token.slice(4), 'base64'));
    if (value.kind !== 'array') throw new Error('shape');
    const full = Buffer.from(token.slice(4), 'base64');
    const [nonce, location, , tail] = value.items;
    const stripped = Buffer.concat([
      Buffer.from([0x94]),
      full.subarray(nonce?.start, nonce?.end),
      full.subarray(location?.start, location?.end),
      Buffer.from([0x90]),
      full.subarray(tail?.start, tail?.end),
    ]);
    expect(verifyMacaroonToken(`fm2_${stripped.toString('base64')}`, KEY, { ...access, method: 'GET' })).toBe(
      false,
    );
  });

  it('skips discharge tokens and other labels but needs one permission token', () => {
    const token = createTokenizerMacaroon(KEY);
    expect(verifyMacaroonToken(`fo1_xyz,${token}`, KEY, access)).toBe(true);
    expect(verifyMacaroonToken('fo1_xyz', KEY, access)).toBe(false);
    const other = createTokenizerMacaroon(KEY, { methods: ['GET'] });
    expect(verifyMacaroonToken(`${token},${other}`, KEY, access)).toBe(false);
  });
});

// Macaroons minted by Go's superfly/macaroon: the test vectors superfly/macaroon-elixir checks
// against (test/vectors.json: root key, key id, one macaroon per caveat type). Data, not code.
describe('interoperability with macaroons minted by superfly/macaroon (Go)', () => {
  const goKey = Buffer.from('WBnB6qAvYIliudiPYX5UOqZCVINCG2gxnVD+cRBacPU=', 'base64');
  const goMacaroons = {
    String:
      'fm2_lJPEEC/Apz4NsovS0QyO2mwOwP7EEK1gu4lRqK9nIFAXIiH4x43C2SA0ZjlkMTYwYmZlNzFlMTU3N2JmNTZmODllNGM0YjZmNZLPAAEAAAAAAACjZm9vxCCZh2hLf8B7oZqan8K7W2rF+zCrjgNI88qwAcUWBa6Xnw==',
    Struct:
      'fm2_lJPEEC/Apz4NsovS0QyO2mwOwP7EEDt/8v/cyCVoEOcUm6dpH/nC2SA0ZjlkMTYwYmZlNzFlMTU3N2JmNTZmODllNGM0YjZmNZLPAAEAAAAAAAiYo2Zvb9CFe8QDAQIDgaNmb2+jYmFygXsfgaNmb28fgaNmb28fxCAEKxGtd8/3ioBBINB78uVu0oGX4GfVbb76dyCeOUhSsQ==',
    ConfineUser:
      'fm2_lJPEEC/Apz4NsovS0QyO2mwOwP7EEEIZXyhbehSiciQY9xb7LoLC2SA0ZjlkMTYwYmZlNzFlMTU3N2JmNTZmODllNGM0YjZmNZIIkXvEIAnD/eLaO1crtgj4C+Un0n7V9LsflyKOjvi9zVlQ9orO',
  };

  it('derives the same key id as Go (first 16 bytes of SHA-256 of the key)', () => {
    expect(Buffer.from(macaroonKeyId(goKey)).toString('base64')).toBe('L8CnPg2yi9LRDI7abA7A/g==');
  });

  it.each(Object.entries(goMacaroons))(
    'verifies the signature chain of the Go-minted %s macaroon',
    (_name, text) => {
      expect(macaroonSignatureMatches(text, goKey)).toBe(true);
      const otherKey = Buffer.from(goKey);
      otherKey[0] = (otherKey[0] as number) ^ 1;
      expect(macaroonSignatureMatches(text, otherKey)).toBe(false);
      // One flipped bit in the signed nonce (its random half, after the 16-byte key id) breaks it.
      const raw = Buffer.from(text.slice('fm2_'.length), 'base64');
      raw[30] = (raw[30] as number) ^ 1;
      expect(macaroonSignatureMatches(`fm2_${raw.toString('base64')}`, goKey)).toBe(false);
    },
  );

  it('refuses them as proxy auth: another location and caveat types the tokenizer does not know', () => {
    for (const text of Object.values(goMacaroons)) {
      expect(verifyMacaroonToken(text, goKey, access)).toBe(false);
    }
  });
});
