import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { isPrivateAddress } from '../src/address-policy.js';
import { applyFmt, canonicalHeaderKey, checkFmt, selectDst, selectFmt } from '../src/header-rules.js';
import { LruCache } from '../src/lru-cache.js';
import { OutgoingBody, placeholderTransform } from '../src/outgoing-request.js';
import { detachedCopy, ProxyCredentials, queryUnescape } from '../src/proxy-auth.js';
import { splitAuthority } from '../src/proxy-server.js';
import { ConnectionCredentials } from '../src/request-preparation.js';
import { bearerDigest } from '../src/secret.js';
import { tokenDigest } from '../src/secret-resolver.js';

describe('fmt rules (§2.4, TestFmtProcessor)', () => {
  it('defaults by secret kind', () => {
    expect(selectFmt({}, {}, false)).toBe('Bearer %s');
    expect(selectFmt({}, {}, true)).toBe('Bearer %x');
    expect(selectFmt({ allowedFmt: ['a %s', 'b %s'] }, {}, false)).toBe('a %s');
    expect(selectFmt({ fmt: 'c %s', allowedFmt: ['a %s'] }, {}, false)).toBe('c %s');
    expect(selectFmt({ fmt: 'c %s' }, { fmt: '' }, false)).toBe('');
  });
  it.each(['%d', '%.3s', '%s%s', 'asdf%', 'asdf', '%%s', ''])('rejects %j', (format) => {
    expect(checkFmt({}, format, false)).toBeUndefined();
  });
  it('accepts %s for strings and %x/%X for bytes only', () => {
    expect(checkFmt({}, 'Bearer %s', false)).toBe('s');
    expect(checkFmt({}, 'Bearer %s', true)).toBeUndefined();
    expect(checkFmt({}, '%X', true)).toBe('X');
    expect(checkFmt({}, '%x', false)).toBeUndefined();
  });
  it('enforces config fmt and allowlists, case-sensitively', () => {
    expect(checkFmt({ fmt: 'Bearer %s' }, 'Bearer %s', false)).toBe('s');
    expect(checkFmt({ fmt: 'Bearer %s' }, 'bearer %s', false)).toBeUndefined();
    expect(checkFmt({ allowedFmt: ['Token %s'] }, 'Token %s', false)).toBe('s');
    expect(checkFmt({ allowedFmt: [] }, 'Bearer %s', false)).toBeUndefined();
    expect(checkFmt({ fmt: 'A %s', allowedFmt: ['B %s'] }, 'A %s', false)).toBeUndefined();
    expect(applyFmt('Other %s!', 'x')).toBe('Other x!');
  });
});

describe('dst rules (§2.4, TestDstProcessor)', () => {
  it.each([
    [{}, {}, 'Authorization'],
    [{}, { dst: 'AuThOriZaTiOn' }, 'Authorization'],
    [{ dst: 'x-api-key' }, {}, 'X-Api-Key'],
    [{ dst: 'X-Api-Key' }, { dst: 'x-API-key' }, 'X-Api-Key'],
    [{ allowedDst: ['asdf', 'qwer'] }, {}, 'Asdf'],
    [{ allowedDst: ['asdf', 'qwer'] }, { dst: 'qWeR' }, 'Qwer'],
    [{ dst: 'foo', allowedDst: ['foo'] }, {}, 'Foo'],
    [{}, { dst: 'www-authenticate' }, 'Www-Authenticate'],
    [{ allowedDst: ['a'] }, { dst: 'A' }, 'A'],
  ])('config %j params %j → %s', (config, params, expected) => {
    expect(selectDst(config, params)).toBe(expected);
  });
  it.each([
    [{ dst: 'Foo' }, { dst: 'Bar' }],
    [{ allowedDst: ['asdf'] }, { dst: 'zxcv' }],
    [{ allowedDst: [] }, {}],
    [{ dst: 'foo', allowedDst: ['bar'] }, {}],
  ])('refuses config %j params %j with 400', (config, params) => {
    expect(() => selectDst(config, params)).toThrow('bad request');
  });
  it('canonicalises like Go', () => {
    expect(canonicalHeaderKey('x-auth-token')).toBe('X-Auth-Token');
    expect(canonicalHeaderKey('bad header')).toBe('bad header');
  });
});

describe('body placeholder streaming (TestInjectBodyProcessorConfig)', () => {
  async function run(chunks: string[], placeholder: string, token: string) {
    const body = new OutgoingBody(Readable.from(chunks.map((chunk) => Buffer.from(chunk))), 1 << 20);
    body.addTransform(placeholderTransform(placeholder, token));
    return (await body.readAll()).toString();
  }
  it('replaces across chunk boundaries', async () => {
    expect(await run(['a{{ACC', 'ESS_TO', 'KEN}}b{{ACCESS_TOKEN}}'], '{{ACCESS_TOKEN}}', 'T')).toBe('aTbT');
  });
  it('leaves non-matching and empty bodies unchanged', async () => {
    expect(await run(['{{ACCESS_TOK', 'EN'], '{{ACCESS_TOKEN}}', 'T')).toBe('{{ACCESS_TOKEN');
    expect(await run([], 'X', 'T')).toBe('');
  });
  it('enforces the body limit', async () => {
    const body = new OutgoingBody(Readable.from([Buffer.alloc(10), Buffer.alloc(10)]), 15);
    await expect(body.readAll()).rejects.toThrow('request body exceeds 15 bytes');
  });
});

describe('proxy authorization candidates (§3.4)', () => {
  it('Bearer verbatim, Basic raw and unescaped, FlyV1, unknown schemes ignored', () => {
    const basic = `Basic ${Buffer.from('user:a%20b+c').toString('base64')}`;
    const credentials = new ProxyCredentials(['Bearer  two', basic, 'FlyV1 fm2_x', 'Digest x', 'nospace']);
    expect(credentials.tokens).toEqual([' two', 'a%20b+c', 'a b c', 'fm2_x']);
    expect(credentials.matchesDigest(Buffer.from(bearerDigest('a b c'), 'base64'))).toBe(true);
    expect(credentials.matchesDigest(Buffer.from(bearerDigest('two'), 'base64'))).toBe(false);
    expect(credentials.matchesDigest(new Uint8Array(31))).toBe(false);
  });
  it('a kept-alive connection reuses the digests of the same lines, and only of the same lines', () => {
    const first = ProxyCredentials.reuse(['Bearer one'], undefined);
    expect(first.matchesDigest(Buffer.from(bearerDigest('one'), 'base64'))).toBe(true);
    expect(ProxyCredentials.reuse(['Bearer one'], first)).toBe(first);
    const changed = ProxyCredentials.reuse(['Bearer two'], first);
    expect(changed).not.toBe(first);
    expect(changed.matchesDigest(Buffer.from(bearerDigest('one'), 'base64'))).toBe(false);
    expect(changed.matchesDigest(Buffer.from(bearerDigest('two'), 'base64'))).toBe(true);
    expect(ProxyCredentials.reuse(['Bearer one', 'Bearer two'], first)).not.toBe(first);
    expect(ProxyCredentials.reuse([], first).matchesDigest(Buffer.from(bearerDigest('one'), 'base64'))).toBe(
      false,
    );
  });
  it('a digest that matched once is matched again without hashing, and no other digest is', () => {
    const credentials = ProxyCredentials.reuse(['Bearer one'], undefined);
    const one = Buffer.from(bearerDigest('one'), 'base64');
    const two = Buffer.from(bearerDigest('two'), 'base64');
    expect(credentials.matchesDigest(two)).toBe(false);
    expect(credentials.matchesDigest(one)).toBe(true);
    expect(credentials.matchesDigest(one)).toBe(true);
    expect(credentials.matchesDigest(two)).toBe(false);
    expect(credentials.matchesDigest(Buffer.from(one))).toBe(true);
    expect(credentials.matchesDigest(new Uint8Array(32))).toBe(false);
  });
  it('what a connection remembers is a copy, equal to the text it came from', () => {
    const head = `GET / HTTP/1.1\r\nproxy-authorization: Bearer ${'x'.repeat(40)}\r\n`;
    const line = head.slice(head.indexOf('Bearer'), head.length - 2);
    const remembered = ProxyCredentials.reuse([line], undefined);
    expect(remembered.lines).toEqual([line]);
    expect(remembered.tokens).toEqual(['x'.repeat(40)]);
    expect(ProxyCredentials.reuse([line], remembered)).toBe(remembered);
    expect(detachedCopy('caf\xe9 \t')).toBe('caf\xe9 \t');
  });
  it('a connection remembers token digests by exact text and position', () => {
    const remembered = new ConnectionCredentials();
    const token = 'sealed-token-text';
    expect(remembered.digestOf(token, 0)).toBe(tokenDigest(token));
    expect(remembered.digestOf(token, 0)).toBe(tokenDigest(token));
    expect(remembered.digestOf(`${token} `, 0)).toBe(tokenDigest(`${token} `));
    expect(remembered.digestOf(token, 1)).toBe(tokenDigest(token));
    expect(remembered.digestOf('other', 1)).toBe(tokenDigest('other'));
    expect(remembered.digestOf(token, 9)).toBe(tokenDigest(token));
  });
  it('URL-unescapes like Go QueryUnescape', () => {
    expect(queryUnescape('%E2%9C%93+x')).toBe('✓ x');
    expect(queryUnescape('100%')).toBeUndefined();
  });
});

describe('targets and address policy', () => {
  it('splits authorities', () => {
    expect(splitAuthority('API.example.com:8443')).toEqual({ hostname: 'api.example.com', port: 8443 });
    expect(splitAuthority('[::1]:80')).toEqual({ hostname: '::1', port: 80 });
    expect(splitAuthority('example.com')).toEqual({ hostname: 'example.com', port: undefined });
    for (const bad of ['a:b', 'a:0', 'a:70000', '[zz]:1', 'a b', 'a@b'])
      expect(splitAuthority(bad)).toBeUndefined();
  });
  it('denies private, loopback, link-local and metadata addresses', () => {
    for (const address of [
      '127.0.0.1',
      '10.1.2.3',
      '172.16.0.1',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '0.0.0.0',
      '::1',
      '::',
      'fd00::1',
      'fdaa::3',
      'fe80::1',
      '::ffff:127.0.0.1',
    ]) {
      expect(isPrivateAddress(address), address).toBe(true);
    }
    for (const address of ['1.1.1.1', '8.8.8.8', '2606:4700::1111'])
      expect(isPrivateAddress(address), address).toBe(false);
  });
  it('LRU evicts the least recently used entry', () => {
    const cache = new LruCache<string, number>(2);
    cache.set('a', 1);
    cache.set('b', 2);
    cache.get('a');
    cache.set('c', 3);
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('a')).toBe(1);
    expect(cache.size).toBe(2);
  });
});

describe('JWT claims (token exchanges)', () => {
  it('writes claims as Go marshals jwt.MapClaims: sorted keys, HTML-escaped (checked against the reference)', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const { signJwt } = await import('../src/token-exchange-processors.js');
    const { privateKey } = generateKeyPairSync('ed25519');
    const jwt = signJwt(
      { algorithm: 'EdDSA', key: privateKey },
      { iss: 'a<b', scope: 's&t', aud: 'u', iat: 1, exp: 2 },
    );
    expect(Buffer.from(jwt.split('.')[1] as string, 'base64url').toString()).toBe(
      '{"aud":"u","exp":2,"iat":1,"iss":"a\\u003cb","scope":"s\\u0026t"}',
    );
  });
});
