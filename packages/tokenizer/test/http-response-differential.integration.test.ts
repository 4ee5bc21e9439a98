import { request } from 'node:http';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BODY_UNTIL_CLOSE,
  CHUNKED_BODY,
  NO_BODY,
  parseResponseHead,
  type ResponseHead,
} from '../src/http-messages.js';
import { expectNeverMoreLenientThanNode, headerPairs } from './differential-fuzzing.js';

// Differential fuzzing of the upstream-response parser against Node's HTTP client (llhttp,
// strict): random and mutated response heads are served over TCP to node:http and parsed by
// the proxy. The proxy must never accept a head Node refuses (it would frame an upstream
// response differently from every other client, the root of response mixing), and when both
// accept, they must agree on status, headers and body framing.

interface NodeView {
  status: number;
  headers: [string, string][];
  contentLength: string | undefined;
  transferEncoding: string | undefined;
}

let server: Server;
let port: number;
const pending: string[] = [];

beforeAll(async () => {
  // Each connection gets the next scripted head, then the blank line, then a close.
  server = createServer((socket: Socket) => {
    socket.on('error', () => {});
    socket.once('data', () => socket.end(`${pending.shift() ?? ''}\r\n\r\n`, 'latin1'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

function nodeParse(head: string): Promise<NodeView | undefined> {
  pending.push(head);
  return new Promise((resolve) => {
    const outgoing = request({ host: '127.0.0.1', port, path: '/', agent: false }, (response) => {
      const headers: [string, string][] = [];
      for (let index = 0; index < response.rawHeaders.length; index += 2) {
        headers.push([response.rawHeaders[index] as string, response.rawHeaders[index + 1] as string]);
      }
      resolve({
        status: response.statusCode ?? 0,
        headers,
        contentLength: response.headers['content-length'],
        transferEncoding: response.headers['transfer-encoding'],
      });
      response.on('error', () => {});
      response.resume();
    });
    outgoing.on('error', () => resolve(undefined));
    outgoing.end();
  });
}

function ourParse(head: string): ResponseHead | undefined {
  try {
    return parseResponseHead(head, 'GET');
  } catch {
    return undefined;
  }
}

const pick = <T>(values: readonly T[]) => fc.constantFrom(...values);
const statusLine = fc.oneof(
  {
    weight: 8,
    arbitrary: pick(['HTTP/1.1 200 OK', 'HTTP/1.1 404 Not Found', 'HTTP/1.0 200 OK', 'HTTP/1.1 500 x']),
  },
  { weight: 2, arbitrary: pick(['HTTP/1.1 204 No Content', 'HTTP/1.1 304 Not Modified', 'HTTP/1.1 200']) },
  {
    weight: 1,
    arbitrary: pick([
      'HTTP/1.1 2000 OK',
      'HTTP/1.1 20 OK',
      'HTTP/2 200',
      'http/1.1 200 OK',
      'HTTP/1.1  200 OK',
    ]),
  },
);
const framingHeader = fc.oneof(
  fc.tuple(
    pick(['Content-Length', 'content-length', 'Content-Length ']),
    pick(['0', '5', ' 5', '5 ', '+5', '5,5', '05', '', '-1', '99999999999999999999']),
  ),
  fc.tuple(
    pick(['Transfer-Encoding', 'transfer-encoding', ' Transfer-Encoding']),
    pick(['chunked', 'Chunked', 'chunked ', 'gzip, chunked', 'chunked, gzip', 'identity', 'xchunked', '']),
  ),
  fc.tuple(pick(['Connection']), pick(['close', 'keep-alive'])),
);
const otherHeader = fc.tuple(
  pick(['Server', 'Date', 'X-Api', 'Set-Cookie', 'X\u0000Y', 'Bad Name', '']),
  fc
    .array(pick([...'abc019 ,;='.split(''), '\t', '\u0000', '\u007f', '\u0080', '\r', '\n', '\r\n ']), {
      maxLength: 5,
    })
    .map((parts) => parts.join('')),
);
const head = fc
  .record({
    statusLine,
    headers: fc.array(
      fc.oneof({ weight: 2, arbitrary: framingHeader }, { weight: 1, arbitrary: otherHeader }),
      {
        maxLength: 5,
      },
    ),
  })
  .map(({ statusLine, headers }) =>
    [statusLine, ...headers.map(([name, value]) => `${name}: ${value}`)].join('\r\n'),
  );

function framingOf(view: NodeView): number {
  if (view.status === 204 || view.status === 304) return NO_BODY;
  if (view.transferEncoding !== undefined) return CHUNKED_BODY;
  if (view.contentLength !== undefined) return Number(view.contentLength);
  return BODY_UNTIL_CLOSE;
}

describe('the response parser against node:http client (llhttp, strict)', () => {
  it('never accepts what node refuses; agrees with node on what both accept', async () => {
    await expectNeverMoreLenientThanNode({
      heads: head,
      ours: ourParse,
      node: nodeParse,
      compare: (ours, node) => {
        expect(ours.status).toBe(node.status);
        expect(headerPairs(ours.headers)).toEqual(node.headers);
        expect(ours.bodyLength).toBe(framingOf(node));
        return true;
      },
      numRuns: 1500,
      minimumBothAccepted: 50,
    });
  }, 60_000);
});
