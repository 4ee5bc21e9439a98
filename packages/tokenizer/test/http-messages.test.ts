import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BODY_UNTIL_CLOSE,
  CHUNKED_BODY,
  ChunkedDecoder,
  HEADER_RULE_EXPRESSIONS,
  HEADER_RULE_LOOPS,
  HttpMessageError,
  isValidHeaderName,
  isValidHeaderValue,
  NO_BODY,
  parseRequestHead,
  parseResponseHead,
} from '../src/http-messages.js';
import { serializeRequestHead } from '../src/upstream-pool.js';

// The strict HTTP/1.1 parsers both sides of the proxy rely on. A head is passed the way the
// connection passes it: latin1 text up to (not including) the blank line's CRLFCRLF.

function head(...lines: string[]): string {
  return lines.join('\r\n');
}

function refusedStatus(parse: () => unknown): number {
  try {
    parse();
  } catch (error) {
    expect(error).toBeInstanceOf(HttpMessageError);
    return (error as HttpMessageError).status;
  }
  throw new Error('the head was accepted');
}

const request = (...fields: string[]) => parseRequestHead(head('POST /submit HTTP/1.1', ...fields));

/** Characters a head is built from in the one-scan properties: the rules' edge cases. */
const headCharacters = [
  'a',
  'B',
  ':',
  ' ',
  '\t',
  '\r',
  '\n',
  '\r\n',
  '\x00',
  '\x7f',
  '\xe9',
  '\x0b',
  '\u0130',
];

describe('parseRequestHead', () => {
  it('parses a GET with lowercase names and trimmed values, keeping order and duplicates', () => {
    const parsed = parseRequestHead(
      head('GET http://example.com/a?b=c HTTP/1.1', 'Host: example.com', 'X-One:  a b \t', 'x-one:\tc'),
    );
    expect(parsed).toEqual({
      method: 'GET',
      target: 'http://example.com/a?b=c',
      minorVersion: 1,
      headers: ['host', 'example.com', 'x-one', 'a b', 'x-one', 'c'],
      bodyLength: NO_BODY,
      keepAlive: true,
      expectContinue: false,
    });
  });

  it('parses a request line without headers', () => {
    expect(parseRequestHead('GET / HTTP/1.1').headers).toEqual([]);
  });

  it('frames a POST by content-length (0 means no body)', () => {
    expect(request('Content-Length: 12').bodyLength).toBe(12);
    expect(request('Content-Length: 0').bodyLength).toBe(NO_BODY);
    expect(request('Content-Length: 007').bodyLength).toBe(7);
    expect(request().bodyLength).toBe(NO_BODY);
  });

  it('frames a chunked POST, whatever the case and OWS of the coding', () => {
    expect(request('Transfer-Encoding: chunked').bodyLength).toBe(CHUNKED_BODY);
    expect(request('transfer-encoding:\tChunked ').bodyLength).toBe(CHUNKED_BODY);
  });

  it('applies the HTTP/1.1 and HTTP/1.0 keep-alive defaults', () => {
    expect(parseRequestHead('GET / HTTP/1.1').keepAlive).toBe(true);
    expect(parseRequestHead(head('GET / HTTP/1.1', 'Connection: keep-alive, Close')).keepAlive).toBe(false);
    expect(parseRequestHead(head('GET / HTTP/1.1', 'Connection: foo', 'Connection: close')).keepAlive).toBe(
      false,
    );
    expect(parseRequestHead('GET / HTTP/1.0').keepAlive).toBe(false);
    const keptAlive = parseRequestHead(head('GET / HTTP/1.0', 'Connection: Keep-Alive'));
    expect(keptAlive.minorVersion).toBe(0);
    expect(keptAlive.keepAlive).toBe(true);
  });

  it('notices Expect: 100-continue (case-insensitive), and only that expectation', () => {
    expect(request('Content-Length: 3', 'Expect: 100-Continue').expectContinue).toBe(true);
    expect(request('Content-Length: 3', 'Expect: something-else').expectContinue).toBe(false);
    expect(request('Content-Length: 3').expectContinue).toBe(false);
  });

  it('ignores Expect: 100-continue in an HTTP/1.0 request (RFC 9110 §10.1.1)', () => {
    const parsed = parseRequestHead(head('POST / HTTP/1.0', 'Content-Length: 3', 'Expect: 100-continue'));
    expect(parsed.expectContinue).toBe(false);
  });

  it.each([
    ['obs-fold (continuation line starting with SP)', head('GET / HTTP/1.1', 'X-A: a', ' folded')],
    ['obs-fold (continuation line starting with HTAB)', head('GET / HTTP/1.1', 'X-A: a', '\tfolded')],
    ['obs-fold of a header line', head('GET / HTTP/1.1', ' Transfer-Encoding: chunked')],
    ['space before the colon', head('GET / HTTP/1.1', 'Transfer-Encoding : chunked')],
    ['tab before the colon', head('GET / HTTP/1.1', 'Content-Length\t: 5')],
    ['a line without a colon', head('GET / HTTP/1.1', 'garbage')],
    ['an empty name', head('GET / HTTP/1.1', ': value')],
    ['a bare LF between header lines', 'GET / HTTP/1.1\r\nHost: a\nX-B: b'],
    ['a bare LF ending the request line', 'GET / HTTP/1.1\nHost: a'],
    ['a bare CR ending the request line', 'GET / HTTP/1.1\rHost: a'],
    ['a bare CR inside a value', head('GET / HTTP/1.1', 'X-A: a\rb')],
    ['a bare CR ending a header line', 'GET / HTTP/1.1\r\nX-A: a\r\rX-B: b'],
    ['a bare LF inside a name', head('GET / HTTP/1.1', 'X-\nA: a')],
    ['NUL in a value', head('GET / HTTP/1.1', 'X-A: a\x00b')],
    ['a vertical tab in a value', head('GET / HTTP/1.1', 'X-A: a\x0bb')],
    ['an escape in a value', head('GET / HTTP/1.1', 'X-A: \x1b[31m')],
    ['DEL in a value', head('GET / HTTP/1.1', 'X-A: a\x7f')],
    ['a non-token name', head('GET / HTTP/1.1', 'X(A): a')],
    ['a non-ASCII name', head('GET / HTTP/1.1', 'X-\xe9: a')],
    ['a non-token method', 'G(T / HTTP/1.1'],
    ['a non-ASCII method', 'G\xc9T / HTTP/1.1'],
    ['a space in the target', 'GET /a b HTTP/1.1'],
    ['two spaces after the method', 'GET  / HTTP/1.1'],
    ['a tab in the target', 'GET /a\tb HTTP/1.1'],
    ['a non-ASCII target', 'GET /caf\xe9 HTTP/1.1'],
    ['a NUL in the target', 'GET /\x00 HTTP/1.1'],
    ['a missing version', 'GET /'],
    ['a lowercase version', 'GET / http/1.1'],
    ['a version with trailing text', 'GET / HTTP/1.1x'],
    ['an empty request line', ''],
  ])('refuses %s with 400', (_name, text) => {
    expect(refusedStatus(() => parseRequestHead(text))).toBe(400);
  });

  it('refuses two Host header lines, even identical ones, with 400', () => {
    expect(refusedStatus(() => parseRequestHead(head('GET / HTTP/1.1', 'Host: a', 'Host: b')))).toBe(400);
    expect(refusedStatus(() => parseRequestHead(head('GET / HTTP/1.1', 'Host: a', 'host: a')))).toBe(400);
    expect(parseRequestHead(head('GET / HTTP/1.1', 'Host: a', 'X-Host: b')).headers).toEqual([
      'host',
      'a',
      'x-host',
      'b',
    ]);
  });

  it.each(['HTTP/2.0', 'HTTP/1.2', 'HTTP/0.9', 'HTTP/3.0'])('refuses %s with 505', (version) => {
    expect(refusedStatus(() => parseRequestHead(`GET / ${version}`))).toBe(505);
  });

  it.each([
    ['transfer-encoding and content-length', ['Transfer-Encoding: chunked', 'Content-Length: 4']],
    ['content-length and transfer-encoding', ['Content-Length: 4', 'Transfer-Encoding: chunked']],
    ['differing content-lengths', ['Content-Length: 4', 'Content-Length: 5']],
    ['a repeated content-length, even with the same value', ['Content-Length: 5', 'Content-Length: 5']],
    ['content-length list', ['Content-Length: 4, 4']],
    ['content-length with a plus sign', ['Content-Length: +4']],
    ['content-length with a minus sign', ['Content-Length: -1']],
    ['content-length with an inner space', ['Content-Length: 4 4']],
    ['content-length in hex', ['Content-Length: 0x10']],
    ['content-length with a fraction', ['Content-Length: 4.0']],
    ['empty content-length', ['Content-Length: ']],
    ['content-length of 16 digits', ['Content-Length: 1000000000000000']],
  ])('refuses %s with 400', (_name, fields) => {
    expect(refusedStatus(() => request(...fields))).toBe(400);
  });

  it('accepts the longest content-length it allows (15 digits)', () => {
    expect(request('Content-Length: 999999999999999').bodyLength).toBe(999_999_999_999_999);
  });

  it.each([
    ['gzip, chunked', ['Transfer-Encoding: gzip, chunked']],
    ['chunked, identity', ['Transfer-Encoding: chunked, identity']],
    ['xchunked', ['Transfer-Encoding: xchunked']],
    ['chunked twice', ['Transfer-Encoding: chunked, chunked']],
    ['chunked then another header', ['Transfer-Encoding: chunked', 'Transfer-Encoding: identity']],
    ['identity', ['Transfer-Encoding: identity']],
    ['an empty coding', ['Transfer-Encoding: ']],
    ['chunked with a parameter', ['Transfer-Encoding: chunked;q=1']],
  ])('refuses transfer-encoding %s with 501', (_name, fields) => {
    expect(refusedStatus(() => request(...fields))).toBe(501);
  });

  it('refuses transfer-encoding in an HTTP/1.0 request with 400', () => {
    expect(refusedStatus(() => parseRequestHead(head('POST / HTTP/1.0', 'Transfer-Encoding: chunked')))).toBe(
      400,
    );
  });

  it('puts no request bytes of a refused value into the error message beyond a short prefix', () => {
    const error = (() => {
      try {
        request(`Content-Length: ${'9'.repeat(500)}`);
      } catch (caught) {
        return caught as HttpMessageError;
      }
      throw new Error('accepted');
    })();
    expect(error.message.length).toBeLessThan(100);
  });
});

describe('parseResponseHead', () => {
  const response = (statusLine: string, ...fields: string[]) => head(statusLine, ...fields);

  it('parses a content-length response keeping the server’s names', () => {
    expect(parseResponseHead(response('HTTP/1.1 200 OK', 'Content-Length: 5', 'X-Up: a'), 'GET')).toEqual({
      status: 200,
      minorVersion: 1,
      headers: ['Content-Length', '5', 'X-Up', 'a'],
      bodyLength: 5,
      keepAlive: true,
    });
  });

  it('accepts status lines without a reason phrase and with an empty one', () => {
    expect(parseResponseHead(response('HTTP/1.1 201', 'Content-Length: 0'), 'GET').status).toBe(201);
    expect(parseResponseHead(response('HTTP/1.1 201 ', 'Content-Length: 0'), 'GET').status).toBe(201);
    expect(
      parseResponseHead(response('HTTP/1.1 418 I\xe9m a teapot', 'Content-Length: 0'), 'GET').status,
    ).toBe(418);
  });

  it.each([
    ['100 Continue', 'HTTP/1.1 100 Continue', 'GET'],
    ['103 Early Hints', 'HTTP/1.1 103 Early Hints', 'GET'],
    ['204', 'HTTP/1.1 204 No Content', 'GET'],
    ['304', 'HTTP/1.1 304 Not Modified', 'GET'],
    ['a HEAD response', 'HTTP/1.1 200 OK', 'HEAD'],
  ])('gives %s no body even with framing headers', (_name, statusLine, method) => {
    for (const framing of ['Content-Length: 10', 'Transfer-Encoding: chunked']) {
      const parsed = parseResponseHead(response(statusLine, framing), method);
      expect(parsed.bodyLength).toBe(NO_BODY);
      expect(parsed.keepAlive).toBe(true);
    }
  });

  it('frames chunked and content-length bodies', () => {
    expect(
      parseResponseHead(response('HTTP/1.1 200 OK', 'Transfer-Encoding: chunked'), 'GET').bodyLength,
    ).toBe(CHUNKED_BODY);
    expect(parseResponseHead(response('HTTP/1.1 200 OK', 'Content-Length: 0'), 'POST').bodyLength).toBe(0);
  });

  it('reads a body without framing until the connection closes, and never reuses that connection', () => {
    const parsed = parseResponseHead(response('HTTP/1.1 200 OK', 'Content-Type: text/plain'), 'GET');
    expect(parsed.bodyLength).toBe(BODY_UNTIL_CLOSE);
    expect(parsed.keepAlive).toBe(false);
    const keptAlive = parseResponseHead(response('HTTP/1.1 200 OK', 'Connection: keep-alive'), 'GET');
    expect(keptAlive.bodyLength).toBe(BODY_UNTIL_CLOSE);
    expect(keptAlive.keepAlive).toBe(false);
  });

  it('honours Connection: close and the HTTP/1.0 default', () => {
    expect(
      parseResponseHead(response('HTTP/1.1 200 OK', 'Content-Length: 1', 'Connection: close'), 'GET')
        .keepAlive,
    ).toBe(false);
    expect(parseResponseHead(response('HTTP/1.0 200 OK', 'Content-Length: 1'), 'GET').keepAlive).toBe(false);
    expect(
      parseResponseHead(response('HTTP/1.0 200 OK', 'Content-Length: 1', 'Connection: keep-alive'), 'GET')
        .keepAlive,
    ).toBe(true);
  });

  it.each([
    [
      'transfer-encoding with content-length',
      ['HTTP/1.1 200 OK', 'Transfer-Encoding: chunked', 'Content-Length: 3'],
    ],
    ['differing content-lengths', ['HTTP/1.1 200 OK', 'Content-Length: 3', 'Content-Length: 4']],
    ['a repeated content-length', ['HTTP/1.1 200 OK', 'Content-Length: 3', 'Content-Length: 3']],
    ['a content-length list', ['HTTP/1.1 200 OK', 'Content-Length: 3, 3']],
    ['a signed content-length', ['HTTP/1.1 200 OK', 'Content-Length: +3']],
    ['a transfer-coding other than chunked', ['HTTP/1.1 200 OK', 'Transfer-Encoding: gzip, chunked']],
    ['chunked not alone', ['HTTP/1.1 200 OK', 'Transfer-Encoding: chunked, gzip']],
    ['a status line with two spaces', ['HTTP/1.1  200 OK']],
    ['a two-digit status', ['HTTP/1.1 20 OK']],
    ['a four-digit status', ['HTTP/1.1 2000 OK']],
    ['status 600', ['HTTP/1.1 600 Nope']],
    ['HTTP/2', ['HTTP/2 200']],
    ['HTTP/1.2', ['HTTP/1.2 200 OK']],
    ['a lowercase protocol', ['http/1.1 200 OK']],
    ['garbage', ['<html>']],
    ['an empty head', ['']],
    ['a control in the reason', ['HTTP/1.1 200 O\x00K']],
    ['a bare LF after the status line', ['HTTP/1.1 200 OK\nContent-Length: 3']],
    ['a bare CR in a value', ['HTTP/1.1 200 OK', 'X-A: a\rb']],
    ['obs-fold', ['HTTP/1.1 200 OK', 'X-A: a', ' b']],
    ['space before the colon', ['HTTP/1.1 200 OK', 'Content-Length : 3']],
  ])('refuses %s with 502', (_name, lines) => {
    expect(refusedStatus(() => parseResponseHead(head(...lines), 'GET'))).toBe(502);
  });

  it('refuses a malformed content-length even where no body follows (it is forwarded as it came)', () => {
    for (const [statusLine, method] of [
      ['HTTP/1.1 200 OK', 'HEAD'],
      ['HTTP/1.1 304 Not Modified', 'GET'],
    ] as const) {
      expect(refusedStatus(() => parseResponseHead(head(statusLine, 'Content-Length: 5, 5'), method))).toBe(
        502,
      );
    }
  });
});

/** Runs a decoder over `pieces`; returns the body and the index where the last piece was left. */
function decodeAll(pieces: Buffer[]): { body: string; stoppedAt: number; done: boolean } {
  const decoder = new ChunkedDecoder('response');
  const body: Buffer[] = [];
  let stoppedAt = -1;
  for (const piece of pieces) {
    stoppedAt = decoder.decode(piece, 0, (data) => body.push(Buffer.from(data)));
    if (decoder.done) break;
  }
  return { body: Buffer.concat(body).toString('latin1'), stoppedAt, done: decoder.done };
}

function bytewise(text: string): Buffer[] {
  return [...Buffer.from(text, 'latin1')].map((byte) => Buffer.from([byte]));
}

describe('ChunkedDecoder', () => {
  const message =
    '5;name=value;quoted="a b"\r\nhello\r\n1A\r\n' +
    'abcdefghijklmnopqrstuvwxyz\r\n' +
    '0000000001 \r\n!\r\n' +
    '0;last\r\nX-Trailer: one\r\nOther: two\r\n\r\n';
  const expected = 'helloabcdefghijklmnopqrstuvwxyz!';

  it('decodes a message in one piece and byte by byte to the same body', () => {
    const whole = decodeAll([Buffer.from(message, 'latin1')]);
    expect(whole).toEqual({ body: expected, stoppedAt: message.length, done: true });
    const bytes = decodeAll(bytewise(message));
    expect(bytes.body).toBe(expected);
    expect(bytes.done).toBe(true);
  });

  it('decodes every split of a message into two pieces the same way', () => {
    const buffer = Buffer.from(message, 'latin1');
    for (let split = 0; split <= buffer.length; split++) {
      const result = decodeAll([buffer.subarray(0, split), buffer.subarray(split)]);
      expect(result.body, `split at ${split}`).toBe(expected);
      expect(result.done).toBe(true);
    }
  });

  it('does not emit trailers as body and stops right after the terminator', () => {
    const next = 'HTTP/1.1 200 OK\r\n\r\n';
    const input = Buffer.from(`3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n${next}`, 'latin1');
    const decoder = new ChunkedDecoder('request');
    const body: string[] = [];
    const stopped = decoder.decode(input, 0, (data) => body.push(data.toString('latin1')));
    expect(decoder.done).toBe(true);
    expect(body.join('')).toBe('abc');
    expect(input.subarray(stopped).toString('latin1')).toBe(next);
  });

  it('starts at the given offset and consumes nothing once done', () => {
    const input = Buffer.from('JUNK0\r\n\r\nNEXT', 'latin1');
    const decoder = new ChunkedDecoder('request');
    const stopped = decoder.decode(input, 4, () => {
      throw new Error('no data expected');
    });
    expect(stopped).toBe(9);
    expect(decoder.decode(input, stopped, () => {})).toBe(stopped);
  });

  it('handles a large chunk split across pieces', () => {
    const data = Buffer.alloc(100_000, 'x');
    const input = Buffer.concat([
      Buffer.from(`${data.length.toString(16)}\r\n`),
      data,
      Buffer.from('\r\n0\r\n\r\n'),
    ]);
    const pieces: Buffer[] = [];
    for (let offset = 0; offset < input.length; offset += 7_919)
      pieces.push(input.subarray(offset, offset + 7_919));
    const result = decodeAll(pieces);
    expect(result.done).toBe(true);
    expect(result.body.length).toBe(data.length);
  });

  function refusal(text: string, side: 'request' | 'response' = 'request'): number {
    const decoder = new ChunkedDecoder(side);
    return refusedStatus(() => decoder.decode(Buffer.from(text, 'latin1'), 0, () => {}));
  }

  it.each([
    ['a missing CRLF after the data', '3\r\nabcd\r\n0\r\n\r\n'],
    ['data longer than its size', '3\r\nabcdef\r\n0\r\n\r\n'],
    ['a missing CRLF before the next size', '3\r\nabc0\r\n\r\n'],
    ['a non-hex size', 'g\r\n'],
    ['an empty size', '\r\n'],
    ['a negative size', '-1\r\n'],
    ['a 0x prefix', '0x3\r\nabc\r\n'],
    ['leading whitespace in the size', ' 3\r\nabc\r\n'],
    ['a size of 13 hex digits', '0000000000003\r\nabc\r\n'],
    ['a size over 2^53', 'fffffffffffffff\r\n'],
    ['a size line ending in a bare LF', '3\nabc\r\n0\r\n\r\n'],
    ['data ending in a bare LF', '3\r\nabc\n0\r\n\r\n'],
    ['a trailer ending in a bare LF', '0\r\nX-T: 1\n\r\n'],
    ['a last line that is a bare LF', '0\r\n\n'],
    ['a bare CR in a size line', '3\r\r\nabc\r\n'],
    ['a control character in an extension', '3;a=\x00\r\nabc\r\n'],
    ['a malformed trailer line', '0\r\nnot a field\r\n\r\n'],
    ['a trailer with a control character', '0\r\nX-T: a\x01\r\n\r\n'],
    ['a size line over 4 KiB', `3;${'a'.repeat(5000)}\r\n`],
  ])('refuses %s', (_name, text) => {
    expect(refusal(text)).toBe(400);
    expect(refusal(text, 'response')).toBe(502);
  });

  it('refuses a size line split into pieces that together pass 4 KiB', () => {
    const decoder = new ChunkedDecoder('request');
    const piece = Buffer.from('a'.repeat(1000), 'latin1');
    decoder.decode(Buffer.from('3;'), 0, () => {});
    expect(() => {
      for (let index = 0; index < 5; index++) decoder.decode(piece, 0, () => {});
    }).toThrow(HttpMessageError);
  });

  it('refuses trailers over 16 KiB in total, even in short lines', () => {
    const line = `X-T: ${'v'.repeat(1000)}\r\n`;
    const decoder = new ChunkedDecoder('request');
    decoder.decode(Buffer.from('0\r\n'), 0, () => {});
    let refused: unknown;
    try {
      for (let index = 0; index < 20; index++) decoder.decode(Buffer.from(line), 0, () => {});
    } catch (error) {
      refused = error;
    }
    expect(refused).toBeInstanceOf(HttpMessageError);
    expect(decoder.done).toBe(false);
    // Just under the limit is fine.
    const accepting = new ChunkedDecoder('request');
    accepting.decode(Buffer.from('0\r\n'), 0, () => {});
    for (let index = 0; index < 15; index++) accepting.decode(Buffer.from(line), 0, () => {});
    accepting.decode(Buffer.from('\r\n'), 0, () => {});
    expect(accepting.done).toBe(true);
  });
});

describe('serializeRequestHead', () => {
  const target = { hostname: 'example.com', port: 443, hostHeader: 'example.com' };
  const serialize = (headers: Record<string, string | string[]>, path = '/p') =>
    serializeRequestHead(target, { method: 'GET', path, headers, body: null }, '');

  it('writes the host, the headers in order, and leaves framing to the caller', () => {
    expect(
      serializeRequestHead(
        target,
        {
          method: 'POST',
          path: '/a?b',
          headers: {
            host: 'ignored',
            'x-a': '1',
            'x-b': ['2', '3'],
            'content-length': '9',
            'transfer-encoding': 'x',
          },
          body: null,
        },
        'content-length: 4\r\n',
      ),
    ).toBe(
      'POST /a?b HTTP/1.1\r\nhost: example.com\r\nx-a: 1\r\nx-b: 2\r\nx-b: 3\r\ncontent-length: 4\r\n\r\n',
    );
  });

  it.each([
    ['a CR LF in a value', { 'x-a': 'a\r\nx-b: b' }],
    ['a bare LF in a repeated value', { 'x-a': ['ok', 'a\nb'] }],
    ['NUL in a value', { 'x-a': 'a\x00' }],
    ['U+010A (a LF once written as latin1)', { 'x-a': 'a\u010ab' }],
    ['U+010D (a CR once written as latin1)', { 'x-a': 'a\u010d' }],
    ['a space in a name', { 'x a': 'b' }],
    ['a colon in a name', { 'x:a': 'b' }],
    ['an empty name', { '': 'b' }],
  ])('refuses %s', (_name, headers) => {
    expect(() => serialize(headers as Record<string, string | string[]>)).toThrow(/invalid header/);
  });

  it.each(['p', '/a b', '/a\r\nx', '/caf\u00e9', ''])('refuses the path %j', (path) => {
    expect(() => serialize({}, path)).toThrow(/invalid header/);
  });

  it('keeps obs-text (bytes 0x80-0xff as latin1) in values', () => {
    expect(serialize({ 'x-a': 'caf\u00e9' })).toContain('x-a: caf\u00e9\r\n');
  });
});

describe('the header rules as loops (the hot path) and as regular expressions', () => {
  const anyText = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 40 }),
    fc.string({
      unit: fc.integer({ min: 0, max: 0x17f }).map((code) => String.fromCharCode(code)),
      maxLength: 40,
    }),
    fc.stringMatching(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,20}$/),
  );

  it('agree on every character up to U+017F, alone and in names and values', () => {
    for (let code = 0; code <= 0x17f; code++) {
      const character = String.fromCharCode(code);
      expect(isValidHeaderName(character)).toBe(HEADER_RULE_EXPRESSIONS.name.test(character));
      expect(isValidHeaderValue(character)).toBe(!HEADER_RULE_EXPRESSIONS.invalidValue.test(character));
    }
    expect(isValidHeaderName('')).toBe(false);
    expect(isValidHeaderValue('')).toBe(true);
    fc.assert(
      fc.property(anyText, (text) => {
        expect(isValidHeaderName(text)).toBe(HEADER_RULE_EXPRESSIONS.name.test(text));
        expect(isValidHeaderValue(text)).toBe(!HEADER_RULE_EXPRESSIONS.invalidValue.test(text));
      }),
      { numRuns: 3000 },
    );
  });

  it('the parsers accept a head only when every name and value passes the rules (one scan per head)', () => {
    const headText = fc.string({
      unit: fc.constantFrom(...headCharacters),
      maxLength: 30,
    });
    fc.assert(
      fc.property(
        fc.array(headText, { maxLength: 4 }),
        fc.constantFrom('GET / HTTP/1.1', 'HTTP/1.1 200 OK'),
        (fields, startLine) => {
          const text = [startLine, ...fields].join('\r\n');
          let headers: string[];
          try {
            headers = startLine.startsWith('GET')
              ? parseRequestHead(text).headers
              : parseResponseHead(text, 'GET').headers;
          } catch (error) {
            expect(error).toBeInstanceOf(HttpMessageError);
            return;
          }
          expect(headers.length).toBe(fields.length * 2);
          for (let index = 0; index < headers.length; index += 2) {
            expect(HEADER_RULE_EXPRESSIONS.name.test(headers[index] as string)).toBe(true);
            expect(HEADER_RULE_EXPRESSIONS.invalidValue.test(headers[index + 1] as string)).toBe(false);
          }
        },
      ),
      { numRuns: 5000 },
    );
  });

  it('the status line and content-length loops agree with their regular expressions', () => {
    const statusLine = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 30 }),
      fc
        .tuple(
          fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/1.2', 'HTTP/2.0', 'http/1.1', 'HTTP/1.1 '),
          fc.constantFrom(' ', '  ', '', '\t'),
          fc.oneof(
            fc.integer({ min: 0, max: 1000 }).map(String),
            fc.constantFrom('2x0', '99', '1000', '0200'),
          ),
          fc.oneof(
            fc.constant(''),
            fc.string({
              unit: fc.integer({ min: 0, max: 0x17f }).map((code) => String.fromCharCode(code)),
              maxLength: 12,
            }),
          ),
        )
        .map(([version, space, status, reason]) => `${version}${space}${status}${reason}`),
    );
    fc.assert(
      fc.property(statusLine, (line) => {
        const match = HEADER_RULE_EXPRESSIONS.statusLine.exec(line);
        expect(HEADER_RULE_LOOPS.statusOfLine(line)).toBe(match ? Number(match[2]) : 0);
      }),
      { numRuns: 5000 },
    );
    const length = fc.oneof(
      fc.stringMatching(/^\d{0,17}$/),
      fc.string({ unit: fc.constantFrom('0', '9', ' ', '+', '-', '.', 'e', 'x', '\u0660'), maxLength: 17 }),
    );
    fc.assert(
      fc.property(length, (value) => {
        expect(HEADER_RULE_LOOPS.isDecimalLength(value)).toBe(/^\d{1,15}$/.test(value));
      }),
      { numRuns: 3000 },
    );
  });

  it('the one scan handles heads past the 64 KiB limit, in one line or in thousands', () => {
    const long = head('GET / HTTP/1.1', `X-Long: ${'a'.repeat(70_000)}`);
    expect(HEADER_RULE_EXPRESSIONS.cleanHead.test(long)).toBe(true);
    expect(parseRequestHead(long).headers[1]).toHaveLength(70_000);
    const many = head('GET / HTTP/1.1', ...Array.from({ length: 8000 }, (_, index) => `X-${index}: v`));
    expect(parseRequestHead(many).headers).toHaveLength(16_000);
    expect(refusedStatus(() => parseRequestHead(`${many}\r\nX-Last: a\rb`))).toBe(400);
  });

  it('a head the one scan finds clean parses exactly as with every line checked', () => {
    const headText = fc.string({
      unit: fc.constantFrom(...headCharacters, '1'),
      maxLength: 30,
    });
    const outcome = (parse: () => unknown) => {
      try {
        return { parsed: parse() };
      } catch (error) {
        expect(error).toBeInstanceOf(HttpMessageError);
        return { refused: (error as HttpMessageError).message };
      }
    };
    fc.assert(
      fc.property(
        fc.array(headText, { maxLength: 4 }),
        fc.constantFrom('GET / HTTP/1.1', 'HTTP/1.1 200 OK', 'GET /\r HTTP/1.1', 'HTTP/1.1 200 O\nK'),
        (fields, startLine) => {
          const text = [startLine, ...fields].join('\r\n');
          // Clean: nothing a value may not hold, and CR and LF only as CRLF pairs.
          expect(HEADER_RULE_EXPRESSIONS.cleanHead.test(text)).toBe(
            !HEADER_RULE_EXPRESSIONS.notInFieldValues.test(text) && !/\r(?!\n)|(?<!\r)\n/.test(text),
          );
          const parse = (checkEveryLine: boolean) =>
            startLine.startsWith('GET')
              ? outcome(() => parseRequestHead(text, checkEveryLine))
              : outcome(() => parseResponseHead(text, 'GET', checkEveryLine));
          expect(parse(false)).toEqual(parse(true));
        },
      ),
      { numRuns: 2000 },
    );
  });
});
