import { createServer, type Server } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHUNKED_BODY, NO_BODY, parseRequestHead, type RequestHead } from '../src/http-messages.js';
import { expectNeverMoreLenientThanNode, headerPairs } from './differential-fuzzing.js';

// Differential fuzzing of the request parser against Node's own (llhttp, strict mode) behind a
// real node:http server: random and mutated request heads go to both. The proxy must never
// accept a head that llhttp refuses (a server behind or beside it could frame it differently:
// request smuggling), and when both accept, they must agree on method, target, headers and body
// framing. The proxy may refuse more than llhttp does (it is stricter on purpose), and it takes
// any token as a method where llhttp knows a fixed list.

interface NodeView {
  method: string;
  url: string;
  headers: [string, string][];
  contentLength: string | undefined;
  transferEncoding: string | undefined;
}

let server: Server;
let port: number;

beforeAll(async () => {
  server = createServer((request, response) => {
    const headers: [string, string][] = [];
    for (let index = 0; index < request.rawHeaders.length; index += 2) {
      headers.push([
        (request.rawHeaders[index] as string).toLowerCase(),
        request.rawHeaders[index + 1] as string,
      ]);
    }
    const view: NodeView = {
      method: request.method ?? '',
      url: request.url ?? '',
      headers,
      contentLength: request.headers['content-length'],
      transferEncoding: request.headers['transfer-encoding'],
    };
    // In a header, so HEAD answers carry it too.
    response.writeHead(200, {
      connection: 'close',
      'x-view': Buffer.from(JSON.stringify(view)).toString('base64'),
      'content-length': '0',
    });
    response.end();
  });
  // Node answers a head it refuses with 400 (or 431/505…) before any handler runs.
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

/** What node:http makes of a raw head: its view of the request, or undefined when it refuses it. */
function nodeParse(head: string): Promise<NodeView | 'parsed' | undefined> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let answer = '';
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      answer += chunk;
    });
    socket.on('error', () => {});
    // A head node is still waiting to complete (it never will: the client half-closed).
    const timer = setTimeout(() => {
      reject(new Error(`node:http did not answer ${JSON.stringify(head)}`));
      socket.destroy();
    }, 2000);
    socket.on('close', () => {
      clearTimeout(timer);
      // Expect: 100-continue gets an interim answer first.
      if (answer.startsWith('HTTP/1.1 100 Continue\r\n\r\n')) answer = answer.slice(25);
      if (answer.startsWith('HTTP/1.1 200 ')) {
        const encoded = /\r\nx-view: ([A-Za-z0-9+/=]+)\r\n/i.exec(answer)?.[1] ?? '';
        resolve(JSON.parse(Buffer.from(encoded, 'base64').toString()) as NodeView);
      } else if (answer.startsWith('HTTP/1.1 417 ')) {
        // Parsed, then refused for an Expect value it does not implement: semantics, not framing.
        resolve('parsed');
      } else if (/^HTTP\/1\.[01] [45]\d\d /.test(answer) || answer === '') resolve(undefined);
      else reject(new Error(`unexpected answer from node:http: ${JSON.stringify(answer.slice(0, 80))}`));
    });
    // The head and its blank line; no body, so node answers as soon as the head is parsed.
    socket.end(`${head}\r\n\r\n`, 'latin1');
  });
}

/** The proxy's verdict: the parser, plus its one rule on top (HTTP/1.1 needs a Host header). */
function ourParse(head: string): RequestHead | undefined {
  let parsed: RequestHead;
  try {
    parsed = parseRequestHead(head);
  } catch {
    return undefined;
  }
  if (
    parsed.minorVersion === 1 &&
    !parsed.headers.some((value, index) => index % 2 === 0 && value === 'host')
  )
    return undefined;
  return parsed;
}

const pick = <T>(values: readonly T[]) => fc.constantFrom(...values);
const method = fc.oneof(
  { weight: 8, arbitrary: pick(['GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH']) },
  { weight: 1, arbitrary: pick(['get', 'G ET', 'GET\t', 'GE\u0000T', 'CONNECT', 'FOO', '']) },
);
const target = fc.oneof(
  { weight: 8, arbitrary: pick(['http://api.example.com/v1?x=1', '/path', 'http://h:8080/', '*']) },
  { weight: 1, arbitrary: pick(['http://h/a b', 'http://h/\u007f', 'http://h/é', '', 'http://h/\t']) },
);
const version = fc.oneof(
  { weight: 8, arbitrary: pick(['HTTP/1.1', 'HTTP/1.0']) },
  { weight: 1, arbitrary: pick(['HTTP/2.0', 'HTTP/1.1 ', 'http/1.1', 'HTTP/1.2', 'HTTP/1']) },
);
const headerName = fc.oneof(
  {
    weight: 8,
    arbitrary: pick([
      'Host',
      'Content-Length',
      'Transfer-Encoding',
      'Connection',
      'X-Api-Key',
      'Proxy-Tokenizer',
      'Expect',
    ]),
  },
  {
    weight: 1,
    arbitrary: pick(['Host ', ' Host', 'Content Length', 'X\u0000Y', 'Ä', '', 'Transfer-Encoding\t']),
  },
);
const valueCharacter = pick([
  ...'abc019 ,;=-'.split(''),
  'chunked',
  'gzip',
  'identity',
  'close',
  'keep-alive',
  '100-continue',
  '\t',
  '\u0000',
  '\u007f',
  '\u0080',
  '\u00ff',
  '\r',
  '\n',
  '\r\n',
  '\r\n ',
  '+5',
  '0x10',
]);
const headerValue = fc.array(valueCharacter, { maxLength: 6 }).map((parts) => parts.join(''));
// Framing headers with the values that matter, so that conflicts (TE with CL, two lengths…) come up often.
const framingHeader = fc.oneof(
  fc.tuple(
    pick(['Content-Length', 'content-length', 'Content-Length ']),
    pick(['0', '5', '10', ' 5', '5 ', '+5', '5,5', '05', '1e2', '', '-1', '99999999999999999999']),
  ),
  fc.tuple(
    pick(['Transfer-Encoding', 'transfer-encoding', ' Transfer-Encoding']),
    pick([
      'chunked',
      'Chunked',
      ' chunked',
      'chunked ',
      'gzip, chunked',
      'chunked, gzip',
      'identity',
      'xchunked',
      'chunked\t',
      '',
    ]),
  ),
  fc.tuple(pick(['Connection']), pick(['close', 'keep-alive', 'Upgrade', 'close, keep-alive'])),
  fc.tuple(pick(['Host']), pick(['api.example.com', 'other.example.com', ''])),
);
const lineEnd = fc.oneof(
  { weight: 12, arbitrary: fc.constant('\r\n') },
  { weight: 1, arbitrary: pick(['\n', '\r']) },
);
const head = fc
  .record({
    method,
    target,
    version,
    headers: fc.array(
      fc.oneof(
        fc.tuple(headerName, pick([':', ': ', ' :', ':\t']), headerValue, lineEnd),
        framingHeader.map(([name, value]) => [name, ': ', value, '\r\n'] as const),
      ),
      { maxLength: 6 },
    ),
    withHost: fc.boolean(),
  })
  .map(({ method, target, version, headers, withHost }) => {
    let text = `${method} ${target} ${version}`;
    if (withHost) text += '\r\nHost: api.example.com';
    for (const [name, separator, value, end] of headers) text += `${end}${name}${separator}${value}`;
    return text;
  });

function framingOf(view: NodeView): number {
  if (view.transferEncoding !== undefined) return CHUNKED_BODY;
  if (view.contentLength !== undefined)
    return Number(view.contentLength) === 0 ? NO_BODY : Number(view.contentLength);
  return NO_BODY;
}

describe('the request parser against node:http (llhttp, strict)', () => {
  it('never accepts what node refuses; agrees with node on what both accept', async () => {
    await expectNeverMoreLenientThanNode({
      heads: head,
      ours: ourParse,
      node: nodeParse,
      // llhttp knows a fixed list of methods; like Go's server, the proxy takes any token.
      tolerated: async (text, ours) => {
        const asGet = `GET${text.slice(ours.method.length)}`;
        return (
          ours.method !== 'GET' && ourParse(asGet) !== undefined && (await nodeParse(asGet)) !== undefined
        );
      },
      compare: (ours, node) => {
        if (node === 'parsed') return false;
        expect(ours.method).toBe(node.method);
        expect(ours.target).toBe(node.url);
        expect(headerPairs(ours.headers)).toEqual(node.headers);
        expect(ours.bodyLength).toBe(framingOf(node));
        return true;
      },
      numRuns: 1500,
      minimumBothAccepted: 100,
    });
  }, 60_000);
});
