import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AuthorityMemo,
  checkRequestForm,
  isDeniedAddressLiteral,
  PlainTextRequestError,
  resolveRequestTarget,
  splitAuthority,
} from '../src/request-target.js';

// Request target resolution is pure: which upstream a request goes to, the Host checks and
// the secure-default refusals, without a socket.

const NO_NAMES: ReadonlySet<string> = new Set();
const OWN_NAMES: ReadonlySet<string> = new Set(['tokenizer.internal']);

function refusal(run: () => unknown): { status: number; code: string; message: string; plainText: boolean } {
  try {
    run();
  } catch (error) {
    const { status, code, message } = error as { status: number; code: string; message: string };
    return { status, code, message, plainText: error instanceof PlainTextRequestError };
  }
  throw new Error('expected a refusal');
}

function outcome(run: () => unknown): unknown {
  try {
    return { resolved: run() };
  } catch (error) {
    return { refused: (error as Error).message };
  }
}

describe('absolute-form targets', () => {
  it.each([
    [
      'http://api.example.com/v1/items?page=2#top',
      undefined,
      {
        authority: 'api.example.com',
        hostname: 'api.example.com',
        dialPort: 443,
        hostHeader: 'api.example.com',
        authorityPort: undefined,
        path: '/v1/items?page=2',
      },
    ],
    [
      'HTTP://API.Example.com:8443',
      'api.example.com:8443',
      {
        authority: 'API.Example.com:8443',
        hostname: 'api.example.com',
        dialPort: 8443,
        hostHeader: 'api.example.com:8443',
        authorityPort: 8443,
        path: '/',
      },
    ],
    [
      'http://api.example.com:80?q',
      'api.example.com',
      {
        authority: 'api.example.com:80',
        hostname: 'api.example.com',
        dialPort: 443,
        hostHeader: 'api.example.com',
        authorityPort: 80,
        path: '/?q',
      },
    ],
    [
      'http://[2001:DB8::1]:8080/x',
      '[2001:db8::1]:8080',
      {
        authority: '[2001:DB8::1]:8080',
        hostname: '2001:db8::1',
        dialPort: 8080,
        hostHeader: '[2001:db8::1]:8080',
        authorityPort: 8080,
        path: '/x',
      },
    ],
  ])('%s (Host %s) → TLS to the right port, Host header and path', (url, host, expected) => {
    expect(resolveRequestTarget(url, host, NO_NAMES)).toEqual(expected);
  });

  it.each([
    ['http://api.example.com:443/x', undefined, 'bad request: proxied request must be HTTP'],
    ['https://api.example.com/x', undefined, 'bad request: proxied request must be HTTP'],
    ['http://user:pass@api.example.com/', undefined, 'bad request: userinfo in request target'],
    ['http:///x', undefined, 'bad request: bad host'],
    ['http://api.example.com:0/', undefined, 'bad request: bad host'],
    ['http://api.example.com:65536/', undefined, 'bad request: bad host'],
    ['http://[not-v6]/', undefined, 'bad request: bad host'],
    ['http://api.example.com/', 'evil.example', 'bad request: Host header does not match the request target'],
    [
      'http://api.example.com/',
      'api.example.com:8080',
      'bad request: Host header does not match the request target',
    ],
    [
      'http://api.example.com:8080/',
      'api.example.com',
      'bad request: Host header does not match the request target',
    ],
    ['api.example.com:80', undefined, 'bad request: unsupported request target'],
    ['*', undefined, 'bad request: unsupported request target'],
  ])('%s (Host %s) is refused: %s', (url, host, message) => {
    expect(refusal(() => resolveRequestTarget(url, host, OWN_NAMES))).toEqual({
      status: 400,
      code: 'BAD_TARGET',
      message,
      plainText: false,
    });
  });

  it.each(['api.example.com', 'API.EXAMPLE.COM', 'api.example.com:80'])(
    'accepts Host %s for http://api.example.com/ (same host, port 80 either way)',
    (host) => {
      expect(resolveRequestTarget('http://api.example.com/', host, NO_NAMES).hostname).toBe(
        'api.example.com',
      );
    },
  );

  it('sends upstream a Host header that names the dialled host and port', () => {
    const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?$/);
    const hostname = fc.array(label, { minLength: 1, maxLength: 4 }).map((labels) => labels.join('.'));
    const port = fc.option(
      fc.integer({ min: 1, max: 65535 }).filter((value) => value !== 443),
      { nil: undefined },
    );
    const path = fc.constantFrom('', '/', '/v1/items', '/a?b=c', '?q=1');
    fc.assert(
      fc.property(hostname, port, path, fc.boolean(), (name, portNumber, suffix, upper) => {
        const authority = `${upper ? name.toUpperCase() : name}${portNumber === undefined ? '' : `:${portNumber}`}`;
        const target = resolveRequestTarget(`http://${authority}${suffix}`, authority, NO_NAMES);
        const dialPort = portNumber === undefined || portNumber === 80 ? 443 : portNumber;
        expect(target.dialPort).toBe(dialPort);
        expect(target.path.startsWith('/')).toBe(true);
        expect(splitAuthority(target.hostHeader)).toEqual({
          hostname: name,
          port: dialPort === 443 ? undefined : dialPort,
        });
      }),
      { numRuns: 500 },
    );
  });
});

describe('the authority a connection remembers', () => {
  it('resolves every request as without it, and checks a new authority or Host afresh', () => {
    const memo = new AuthorityMemo();
    const requests: [string, string | undefined][] = [
      ['http://api.example.com/a', 'api.example.com'],
      ['http://api.example.com/b?c=d#e', 'api.example.com'],
      ['http://api.example.com/', 'evil.example'],
      ['http://api.example.com/c', undefined],
      ['http://API.example.com:8080/d', 'api.example.com:8080'],
      ['http://api.example.com:8080/e', 'api.example.com'],
      ['http://api.example.com:443/f', undefined],
      ['http://api.example.com/g', 'api.example.com'],
    ];
    // Enough rounds for the memo to stop remembering an authority that keeps changing.
    for (let round = 0; round < 4; round++) {
      for (const [url, host] of requests) {
        const expected = outcome(() => resolveRequestTarget(url, host, NO_NAMES));
        expect(outcome(() => resolveRequestTarget(url, host, NO_NAMES, memo))).toEqual(expected);
      }
    }
  });
});

describe('origin-form ("transparent") targets', () => {
  it('are refused in plain text when the proxy does not know its own names', () => {
    expect(refusal(() => resolveRequestTarget('/v1/items', 'api.example.com', NO_NAMES))).toEqual({
      status: 400,
      code: 'BAD_TARGET',
      message: "I'm not that kind of server",
      plainText: true,
    });
  });

  it.each([
    [undefined, 'must specify host'],
    ['', 'must specify host'],
    ['bad host!', 'bad host'],
    ['tokenizer.internal', 'circular request'],
    ['TOKENIZER.internal:8080', 'circular request'],
  ])('Host %s is refused in plain text: %s', (host, message) => {
    expect(refusal(() => resolveRequestTarget('/v1/items', host, OWN_NAMES))).toEqual({
      status: 400,
      code: 'BAD_TARGET',
      message,
      plainText: true,
    });
  });

  it('go to the Host header with the request target as path', () => {
    expect(resolveRequestTarget('/v1/items?page=2', 'api.example.com:8443', OWN_NAMES)).toEqual({
      authority: 'api.example.com:8443',
      hostname: 'api.example.com',
      dialPort: 8443,
      hostHeader: 'api.example.com:8443',
      authorityPort: 8443,
      path: '/v1/items?page=2',
    });
  });
});

describe('request form', () => {
  it('refuses CONNECT, whatever else the request says', () => {
    expect(refusal(() => checkRequestForm('CONNECT', 1, 'api.example.com:443'))).toEqual({
      status: 400,
      code: 'BAD_TARGET',
      message: 'bad request: CONNECT is not supported; send absolute-form http:// requests',
      plainText: false,
    });
  });

  it('refuses HTTP/1.1 without Host, accepts HTTP/1.0 without it', () => {
    expect(refusal(() => checkRequestForm('GET', 1, undefined)).message).toBe(
      'bad request: missing Host header',
    );
    expect(() => checkRequestForm('GET', 0, undefined)).not.toThrow();
    expect(() => checkRequestForm('POST', 1, 'api.example.com')).not.toThrow();
  });
});

describe('address literals', () => {
  it.each([
    ['http://10.0.0.1/', true],
    ['http://169.254.169.254/latest/meta-data/', true],
    ['http://[::1]:8080/', true],
    ['http://[64:ff9b::a00:1]/', true],
    ['http://8.8.8.8/', false],
    ['http://[2606:4700::1111]/', false],
    // Names are checked after DNS resolution, by the guarded lookup.
    ['http://localhost/', false],
  ])('%s denied as a literal: %s', (url, denied) => {
    expect(isDeniedAddressLiteral(resolveRequestTarget(url, undefined, NO_NAMES))).toBe(denied);
  });
});
