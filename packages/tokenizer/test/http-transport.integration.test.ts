import { once } from 'node:events';
import {
  type AddressInfo,
  connect,
  createServer as createTcpServer,
  type Server,
  type Socket,
} from 'node:net';
import { Duplex } from 'node:stream';
import {
  createSecureContext,
  createServer as createTlsServer,
  TLSSocket,
  type Server as TlsServer,
} from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  ClientConnection,
  type ClientRequest,
  type ClientResponse,
  type RequestBody,
} from '../src/client-connection.js';
import {
  type RunningTokenizerServer,
  startTokenizerServer,
  type TokenizerServerOptions,
} from '../src/proxy-server.js';
import { generateOpenKey, sealKeyFromOpenKey } from '../src/sealed-box.js';
import { bearerDigest, sealSecret } from '../src/secret.js';
import type { ThrowawayCertificates } from '../src/throwaway-certificates.js';
import { UpstreamPool } from '../src/upstream-pool.js';
import { createLoopbackCertificates } from './tls-fixtures.js';

// The proxy's own HTTP/1.1 transport, byte by byte: raw TCP clients in front, and TLS
// upstreams scripted at the byte level behind, so every framing trick can be played on
// both sides. Everything runs in this process on loopback.

const OPEN_KEY = generateOpenKey();
const SEAL_KEY = sealKeyFromOpenKey(OPEN_KEY);
const SECRET_TOKEN = 'transport-secret-4c1d9e';
const PROXY_TOKEN = 'transport-proxy-token';
const SEALED = sealSecret(
  {
    processor: { type: 'inject', token: SECRET_TOKEN },
    auth: { type: 'bearer', digest: bearerDigest(PROXY_TOKEN) },
  },
  SEAL_KEY,
);
/** Another client's credential: the same proxy token, another secret. */
const OTHER_SECRET_TOKEN = 'transport-other-secret-7a2b';
const SEALED_OTHER = sealSecret(
  {
    processor: { type: 'inject', token: OTHER_SECRET_TOKEN },
    auth: { type: 'bearer', digest: bearerDigest(PROXY_TOKEN) },
  },
  SEAL_KEY,
);

let certificates: ThrowawayCertificates;

beforeAll(() => {
  certificates = createLoopbackCertificates();
});

/**
 * A free loopback port that a connection actually reaches. Some hosts carry leftover container
 * port-forwarding (DNAT) rules for ephemeral ports on 127.0.0.1; a server that happens to get
 * one of those ports is unreachable, and the test would fail for reasons unrelated to it.
 */
async function reachablePort(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const probe = createTcpServer((socket) => socket.destroy());
    probe.listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const port = (probe.address() as AddressInfo).port;
    const reached = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      const timer = setTimeout(() => {
        socket.destroy();
        resolve(false);
      }, 500);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => {
        clearTimeout(timer);
        resolve(false);
      });
    });
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    if (reached) return port;
  }
  throw new Error('no reachable loopback port found');
}

// ---------------------------------------------------------------------------------------------
// Scripted upstream

interface ReceivedRequest {
  method: string;
  path: string;
  /** Lowercase names. */
  headers: Record<string, string[]>;
  body: Buffer;
  /** 1-based number of the TLS connection it came on. */
  connection: number;
  /** 1-based number of the request on that connection. */
  index: number;
}

type Script = (request: ReceivedRequest, socket: TLSSocket) => void;

/** Parses one request off the front of `buffer` (the upstream side's own, independent parser). */
function takeRequest(
  buffer: Buffer,
): { request: Omit<ReceivedRequest, 'connection' | 'index'>; used: number } | undefined {
  const end = buffer.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const lines = buffer.toString('latin1', 0, end).split('\r\n');
  const [method = '', path = ''] = (lines[0] as string).split(' ');
  const headers: Record<string, string[]> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).toLowerCase();
    headers[name] = [...(headers[name] ?? []), line.slice(colon + 1).trim()];
  }
  let position = end + 4;
  if (headers['transfer-encoding']) {
    const chunks: Buffer[] = [];
    for (;;) {
      const lineEnd = buffer.indexOf('\r\n', position);
      if (lineEnd < 0) return undefined;
      const size = Number.parseInt(buffer.toString('latin1', position, lineEnd), 16);
      position = lineEnd + 2;
      if (size === 0) {
        const trailerEnd = buffer.indexOf('\r\n', position);
        if (trailerEnd !== position) return undefined; // the proxy sends no trailers
        position += 2;
        break;
      }
      if (buffer.length < position + size + 2) return undefined;
      chunks.push(buffer.subarray(position, position + size));
      position += size + 2;
    }
    return { request: { method, path, headers, body: Buffer.concat(chunks) }, used: position };
  }
  const length = Number(headers['content-length']?.[0] ?? 0);
  if (buffer.length < position + length) return undefined;
  return {
    request: { method, path, headers, body: Buffer.from(buffer.subarray(position, position + length)) },
    used: position + length,
  };
}

function httpResponse(status: number, body: string, extra = ''): string {
  return `HTTP/1.1 ${status} X\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;
}

class ScriptedUpstream {
  readonly server: TlsServer | Server;
  port = 0;
  secureConnections = 0;
  readonly requests: ReceivedRequest[] = [];
  readonly sockets = new Set<TLSSocket>();
  /** With `wire`: each TLS socket's TCP side, whose writes can be held and sent as one. */
  private readonly wires = new Map<TLSSocket, HeldWire>();
  /** Called once a request head is in, before its body (for early answers). */
  onHead: ((method: string, path: string, socket: TLSSocket) => void) | undefined = undefined;
  /** Default: answers `METHOD PATH BODY` with a content-length. */
  script: Script = (request, socket) =>
    socket.write(httpResponse(200, `${request.method} ${request.path} ${request.body.toString('latin1')}`));

  constructor(server: TlsServer | Server) {
    this.server = server;
  }

  /**
   * `wire: true` runs TLS over a stream the test controls instead of straight on the TCP
   * socket, so `inOneSegment` can put several TLS records into one TCP write (one read on the
   * proxy's side, whatever the machine's load) or `holdUntil` can send them at a chosen moment.
   */
  static async start({ wire = false }: { wire?: boolean } = {}): Promise<ScriptedUpstream> {
    let upstream: ScriptedUpstream;
    let server: TlsServer | Server;
    if (wire) {
      const secureContext = createSecureContext({
        key: certificates.serverKeyPem,
        cert: certificates.serverCertificatePem,
      });
      server = createTcpServer((tcp) => {
        const held = new HeldWire(tcp);
        const socket = new TLSSocket(held, { isServer: true, secureContext });
        socket.on('error', () => {});
        socket.once('secure', () => {
          upstream.wires.set(socket, held);
          upstream.accept(socket);
        });
        socket.once('close', () => tcp.destroy());
        tcp.once('close', () => socket.destroy());
      });
    } else {
      server = createTlsServer({
        key: certificates.serverKeyPem,
        cert: certificates.serverCertificatePem,
      });
      server.on('secureConnection', (socket: TLSSocket) => upstream.accept(socket));
    }
    upstream = new ScriptedUpstream(server);
    server.listen(await reachablePort(), '127.0.0.1');
    await once(server, 'listening');
    upstream.port = (server.address() as AddressInfo).port;
    return upstream;
  }

  /** Everything `write` sends (any number of TLS records) leaves in one TCP write. */
  inOneSegment(socket: TLSSocket, write: () => void): void {
    const wire = this.wire(socket);
    wire.hold();
    write();
    // TLS writes reach the wire asynchronously: flush once they are all through.
    setImmediate(() => wire.flush());
  }

  /** What `write` sends leaves only when `release` is called. */
  held(socket: TLSSocket, write: () => void): () => void {
    const wire = this.wire(socket);
    wire.hold();
    write();
    return () => wire.flush();
  }

  /** Resets the TCP connection under `socket` (RST, not FIN). */
  reset(socket: TLSSocket): void {
    this.wire(socket).reset();
  }

  private wire(socket: TLSSocket): HeldWire {
    const wire = this.wires.get(socket);
    if (!wire) throw new Error('start the upstream with { wire: true }');
    return wire;
  }

  private accept(socket: TLSSocket): void {
    const connection = ++this.secureConnections;
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => {});
    let buffer = Buffer.alloc(0);
    let index = 0;
    let headSeen = false;
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        const headEnd = buffer.indexOf('\r\n\r\n');
        if (this.onHead && !headSeen && headEnd >= 0) {
          headSeen = true;
          const [method = '', path = ''] = buffer.toString('latin1', 0, headEnd).split(' ');
          this.onHead(method, path, socket);
        }
        const taken = takeRequest(buffer);
        if (taken) headSeen = false;
        if (!taken) return;
        buffer = buffer.subarray(taken.used);
        const request = { ...taken.request, connection, index: ++index };
        this.requests.push(request);
        if (!socket.destroyed) this.script(request, socket);
      }
    });
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** The TCP side of a TLS socket: ciphertext passes through, or is held and sent in one write. */
class HeldWire extends Duplex {
  private readonly tcp: Socket;
  private heldBytes: Buffer[] | undefined = undefined;

  constructor(tcp: Socket) {
    super();
    this.tcp = tcp;
    tcp.setNoDelay(true);
    tcp.on('data', (chunk: Buffer) => this.push(chunk));
    tcp.on('end', () => this.push(null));
    tcp.on('error', () => {});
  }

  override _read(): void {}

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.heldBytes) this.heldBytes.push(chunk);
    else if (!this.tcp.destroyed) this.tcp.write(chunk);
    callback();
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.tcp.end();
    callback();
  }

  hold(): void {
    this.heldBytes ??= [];
  }

  reset(): void {
    this.tcp.resetAndDestroy();
  }

  flush(): void {
    const bytes = this.heldBytes;
    this.heldBytes = undefined;
    if (bytes && bytes.length > 0 && !this.tcp.destroyed) this.tcp.write(Buffer.concat(bytes));
  }
}

// ---------------------------------------------------------------------------------------------
// Raw client

interface RawResponse {
  status: number;
  head: string;
  /** Lowercase names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  body: Buffer;
}

class RawClient {
  readonly socket: Socket;
  private buffer = Buffer.alloc(0);
  /** Every byte received, for leak checks. */
  received = Buffer.alloc(0);
  ended = false;
  error: NodeJS.ErrnoException | undefined;
  private readonly waiters = new Set<() => void>();
  readonly closed: Promise<void>;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.received = Buffer.concat([this.received, chunk]);
      this.wake();
    });
    socket.on('end', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('error', (error) => {
      this.error = error;
      this.ended = true;
      this.wake();
    });
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.ended = true;
        this.wake();
        resolve();
      }),
    );
  }

  static async connect(port: number): Promise<RawClient> {
    const socket = connect(port, '127.0.0.1');
    await once(socket, 'connect');
    socket.setNoDelay(true);
    return new RawClient(socket);
  }

  send(data: string | Buffer): void {
    this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  private wake(): void {
    for (const waiter of [...this.waiters]) waiter();
  }

  /** Waits until `take` returns a value (re-run on every event); fails when the connection ends first. */
  private until<T>(take: () => T | undefined, what: string): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = () => {
        let value: T | undefined;
        try {
          value = take();
        } catch (error) {
          this.waiters.delete(check);
          reject(error);
          return;
        }
        if (value !== undefined) {
          this.waiters.delete(check);
          resolve(value);
        } else if (this.ended) {
          this.waiters.delete(check);
          reject(
            new Error(
              `connection ended before ${what}; got ${JSON.stringify(this.buffer.toString('latin1'))}`,
            ),
          );
        }
      };
      this.waiters.add(check);
      check();
    });
  }

  /** Reads one response (1xx included) framed the way a strict client would. */
  readResponse(method = 'GET'): Promise<RawResponse> {
    return this.until(() => {
      const end = this.buffer.indexOf('\r\n\r\n');
      if (end < 0) return undefined;
      const head = this.buffer.toString('latin1', 0, end);
      const lines = head.split('\r\n');
      const match = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] as string);
      if (!match) throw new Error(`not a status line: ${JSON.stringify(lines[0])}`);
      const status = Number(match[1]);
      const headers: Record<string, string> = {};
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(':');
        const name = line.slice(0, colon).toLowerCase();
        const value = line.slice(colon + 1).trim();
        headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
      }
      let position = end + 4;
      let body: Buffer;
      if (status < 200 || status === 204 || status === 304 || method === 'HEAD') {
        body = Buffer.alloc(0);
      } else if (headers['transfer-encoding'] !== undefined) {
        expect(headers['transfer-encoding']).toBe('chunked');
        expect(headers['content-length']).toBeUndefined();
        const chunks: Buffer[] = [];
        for (;;) {
          const lineEnd = this.buffer.indexOf('\r\n', position);
          if (lineEnd < 0) return undefined;
          const sizeText = this.buffer.toString('latin1', position, lineEnd);
          expect(sizeText).toMatch(/^[0-9a-f]+$/);
          const size = Number.parseInt(sizeText, 16);
          position = lineEnd + 2;
          if (size === 0) {
            if (this.buffer.length < position + 2) return undefined;
            expect(this.buffer.toString('latin1', position, position + 2)).toBe('\r\n');
            position += 2;
            break;
          }
          if (this.buffer.length < position + size + 2) return undefined;
          chunks.push(this.buffer.subarray(position, position + size));
          expect(this.buffer.toString('latin1', position + size, position + size + 2)).toBe('\r\n');
          position += size + 2;
        }
        body = Buffer.concat(chunks);
      } else if (headers['content-length'] !== undefined) {
        const length = Number(headers['content-length']);
        if (this.buffer.length < position + length) return undefined;
        body = this.buffer.subarray(position, position + length);
        position += length;
      } else {
        if (!this.ended || this.error) return undefined;
        body = this.buffer.subarray(position);
        position = this.buffer.length;
      }
      this.buffer = this.buffer.subarray(position);
      return { status, head, headers, body: Buffer.from(body) };
    }, 'a complete response');
  }

  /** Bytes received and not consumed by readResponse. */
  get unread(): string {
    return this.buffer.toString('latin1');
  }

  /** Resolves once the peer closed (FIN or reset). */
  async waitEnded(): Promise<void> {
    await this.until(() => (this.ended ? true : undefined), 'the end').catch(() => {});
  }
}

// ---------------------------------------------------------------------------------------------
// Set-up per test: a scripted upstream and a proxy in front of it

const cleanups: Array<() => Promise<void> | void> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Rig {
  upstream: ScriptedUpstream;
  proxy: RunningTokenizerServer;
  proxyPort: number;
  authority: string;
  client(): Promise<RawClient>;
  /** An absolute-form request with the sealed secret and proxy auth. */
  request(
    method: string,
    path: string,
    options?: { headers?: string[]; body?: string; version?: string },
  ): string;
}

async function rig(
  options: Partial<TokenizerServerOptions> = {},
  upstreamOptions: { wire?: boolean } = {},
): Promise<Rig> {
  const upstream = await ScriptedUpstream.start(upstreamOptions);
  cleanups.push(() => upstream.close());
  const proxy = await startTokenizerServer({
    openKey: OPEN_KEY,
    listenAddress: `127.0.0.1:${await reachablePort()}`,
    allowPrivateUpstreams: true,
    upstreamCa: certificates.caCertificatePem,
    auditLog: false,
    log: () => {},
    upstreamConnectionsPerOrigin: 1,
    ...options,
  });
  cleanups.push(() => proxy.close());
  const proxyPort = Number(new URL(proxy.url).port);
  const authority = `127.0.0.1:${upstream.port}`;
  const clients: RawClient[] = [];
  cleanups.push(() => {
    for (const client of clients) client.socket.destroy();
  });
  return {
    upstream,
    proxy,
    proxyPort,
    authority,
    async client() {
      const client = await RawClient.connect(proxyPort);
      clients.push(client);
      return client;
    },
    request(method, path, { headers = [], body, version = 'HTTP/1.1' } = {}) {
      const lines = [
        `${method} http://${authority}${path} ${version}`,
        `Host: ${authority}`,
        `Proxy-Tokenizer: ${SEALED}`,
        `Proxy-Authorization: Bearer ${PROXY_TOKEN}`,
        ...headers,
      ];
      if (body !== undefined && !headers.some((line) => /^(content-length|transfer-encoding):/i.test(line)))
        lines.push(`Content-Length: ${Buffer.byteLength(body, 'latin1')}`);
      return `${lines.join('\r\n')}\r\n\r\n${body ?? ''}`;
    },
  };
}

/** Resolves once `condition` holds, checking on every turn of the event loop (bounded). */
async function eventually(condition: () => boolean, what: string): Promise<void> {
  for (let turn = 0; turn < 2000; turn++) {
    if (condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  throw new Error(`timed out waiting for ${what}`);
}

function expectNoLeak(client: RawClient): void {
  const text = client.received.toString('latin1');
  expect(text).not.toContain(SECRET_TOKEN);
  expect(text).not.toContain(PROXY_TOKEN);
  expect(text).not.toContain(OPEN_KEY);
}

// ---------------------------------------------------------------------------------------------

describe('pipelining', () => {
  it('answers two requests sent in one write, in order', async () => {
    const { client, request, upstream } = await rig();
    const socket = await client();
    socket.send(request('GET', '/one') + request('POST', '/two', { body: 'payload' }));
    const first = await socket.readResponse();
    const second = await socket.readResponse();
    expect([first.status, first.body.toString()]).toEqual([200, 'GET /one ']);
    expect([second.status, second.body.toString()]).toEqual([200, 'POST /two payload']);
    expect(upstream.requests.map((received) => received.path)).toEqual(['/one', '/two']);
    expect(upstream.requests[0]?.headers.authorization).toEqual([`Bearer ${SECRET_TOKEN}`]);
  });

  it('answers a body-carrying request and the request pipelined right behind its body', async () => {
    const { client, request, upstream } = await rig();
    const socket = await client();
    socket.send(
      request('POST', '/chunked', {
        headers: ['Transfer-Encoding: chunked'],
        body: '3\r\nabc\r\n0\r\n\r\n',
      }) + request('GET', '/after'),
    );
    expect((await socket.readResponse()).body.toString()).toBe('POST /chunked abc');
    expect((await socket.readResponse()).body.toString()).toBe('GET /after ');
    expect(upstream.requests).toHaveLength(2);
  });

  it('answers a malformed second request with 400 after the first response, then closes', async () => {
    const { client, request, upstream } = await rig();
    const socket = await client();
    socket.send(`${request('GET', '/one')}GET /two HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n`);
    const first = await socket.readResponse();
    expect(first.body.toString()).toBe('GET /one ');
    const second = await socket.readResponse();
    expect(second.status).toBe(400);
    expect(second.headers.connection).toBe('close');
    await socket.waitEnded();
    expect(upstream.requests).toHaveLength(1);
  });

  it('does not read past a Connection: close request', async () => {
    const { client, request, upstream } = await rig();
    const socket = await client();
    socket.send(request('GET', '/one', { headers: ['Connection: close'] }) + request('GET', '/two'));
    const first = await socket.readResponse();
    expect(first.headers.connection).toBe('close');
    await socket.waitEnded();
    expect(socket.unread).toBe('');
    expect(upstream.requests.map((received) => received.path)).toEqual(['/one']);
  });
});

describe('request smuggling attempts from the client', () => {
  const attempts: Array<[string, (request: Rig['request']) => string, number]> = [
    [
      'TE.CL',
      (request) =>
        request('POST', '/', {
          headers: ['Transfer-Encoding: chunked', 'Content-Length: 4'],
          body: '0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n',
        }),
      400,
    ],
    [
      'CL.CL conflict',
      (request) =>
        request('POST', '/', {
          headers: ['Content-Length: 0', 'Content-Length: 30'],
          body: 'GET /smuggled HTTP/1.1\r\n\r\n',
        }),
      400,
    ],
    [
      'obs-folded transfer-encoding',
      (request) =>
        request('POST', '/', {
          headers: ['X-Padding: a', ' Transfer-Encoding: chunked', 'Content-Length: 3'],
          body: 'abc',
        }),
      400,
    ],
    [
      'space before the colon',
      (request) =>
        request('POST', '/', { headers: ['Transfer-Encoding : chunked', 'Content-Length: 3'], body: 'abc' }),
      400,
    ],
    [
      'bare LF between headers',
      (request) =>
        request('POST', '/', {
          headers: ['X-A: a\nTransfer-Encoding: chunked', 'Content-Length: 3'],
          body: 'abc',
        }),
      400,
    ],
    [
      'obfuscated transfer-coding',
      (request) => request('POST', '/', { headers: ['Transfer-Encoding: xchunked'], body: '0\r\n\r\n' }),
      501,
    ],
    [
      'chunked not last',
      (request) =>
        request('POST', '/', { headers: ['Transfer-Encoding: chunked, identity'], body: '0\r\n\r\n' }),
      501,
    ],
    ['NUL in a header', (request) => request('GET', '/', { headers: ['X-A: a\x00b'] }), 400],
    ['HTTP/2.0 request line', (request) => request('GET', '/', { version: 'HTTP/2.0' }), 505],
  ];

  it.each(attempts)(
    'refuses %s, closes the connection, and sends nothing upstream',
    async (_name, build, status) => {
      const { client, request, upstream } = await rig();
      const socket = await client();
      socket.send(build(request) + request('GET', '/next'));
      const response = await socket.readResponse();
      expect(response.status).toBe(status);
      expect(response.headers.connection).toBe('close');
      await socket.waitEnded();
      expect(socket.unread).toBe('');
      expect(upstream.secureConnections).toBe(0);
      expect(upstream.requests).toHaveLength(0);
      expectNoLeak(socket);
    },
  );

  it('refuses a malformed chunk in the request body, and the upstream never sees a complete request', async () => {
    const { client, request, upstream } = await rig();
    const socket = await client();
    socket.send(
      request('POST', '/', {
        headers: ['Transfer-Encoding: chunked'],
        body: '3\r\nabcGET /smuggled HTTP/1.1\r\n\r\n',
      }),
    );
    const response = await socket.readResponse();
    expect(response.status).toBe(400);
    expect(response.body.toString()).toContain('chunk');
    await socket.waitEnded();
    expect(socket.unread).toBe('');
    // Give a forwarded (truncated) request time to show up if it were going to.
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(upstream.requests).toHaveLength(0);
    expectNoLeak(socket);
  });

  it('survives a client that leaves mid-body before the upstream connection is up', async () => {
    const { client, request, upstream } = await rig();
    for (let round = 0; round < 3; round++) {
      const leaving = await client();
      leaving.send(request('POST', '/partial', { headers: ['Content-Length: 100'] }) + 'only some');
      leaving.socket.destroy();
      const chunked = await client();
      chunked.send(request('POST', '/partial', { headers: ['Transfer-Encoding: chunked'] }) + '5\r\nab');
      chunked.socket.destroy();
    }
    const socket = await client();
    socket.send(request('GET', '/still-up'));
    expect((await socket.readResponse()).body.toString()).toBe('GET /still-up ');
    expect(upstream.requests.map((received) => received.path)).toEqual(['/still-up']);
  });

  it('answers a head over maxHeaderBytes with 431 and closes', async () => {
    const { client, request, upstream } = await rig({ maxHeaderBytes: 4096 });
    const socket = await client();
    socket.send(request('GET', '/', { headers: [`X-Big: ${'a'.repeat(5000)}`] }));
    const response = await socket.readResponse();
    expect(response.status).toBe(431);
    await socket.waitEnded();
    expect(upstream.requests).toHaveLength(0);
    expectNoLeak(socket);
  });

  it('answers 431 to an endless head that never reaches its blank line', async () => {
    const { client } = await rig({ maxHeaderBytes: 4096 });
    const socket = await client();
    socket.send(`GET http://a/ HTTP/1.1\r\nX-Big: ${'a'.repeat(5000)}`);
    expect((await socket.readResponse()).status).toBe(431);
    await socket.waitEnded();
  });
});

describe('header values injected upstream', () => {
  it('refuses a format whose characters would serialise to CR/LF (U+010D U+010A), and sends nothing', async () => {
    const { client, authority, upstream } = await rig();
    const socket = await client();
    const params = JSON.stringify({ fmt: 'Bearer %s\u010d\u010aX-Smuggled: yes' })
      .replaceAll('\u010d', '\\u010d')
      .replaceAll('\u010a', '\\u010a');
    socket.send(
      `GET http://${authority}/ HTTP/1.1\r\nHost: ${authority}\r\nProxy-Tokenizer: ${SEALED}; ${params}\r\n` +
        `Proxy-Authorization: Bearer ${PROXY_TOKEN}\r\n\r\n`,
    );
    const response = await socket.readResponse();
    expect(response.status).toBe(502);
    expect(response.body.toString()).toContain('invalid header value');
    expectNoLeak(socket);
    expect(upstream.requests).toHaveLength(0);
  });
});

describe('request bodies', () => {
  it('sends 100 Continue before the body is sent, then forwards the body', async () => {
    const { client, request, upstream } = await rig();
    const socket = await client();
    socket.send(request('PUT', '/upload', { headers: ['Expect: 100-continue', 'Content-Length: 5'] }));
    const interim = await socket.readResponse();
    expect(interim.status).toBe(100);
    expect(upstream.requests).toHaveLength(0);
    socket.send('hello');
    const final = await socket.readResponse();
    expect([final.status, final.body.toString()]).toEqual([200, 'PUT /upload hello']);
    expect(upstream.requests[0]?.headers.expect).toBeUndefined();
  });

  it('sends no 100 Continue to an HTTP/1.0 client', async () => {
    const { client, request } = await rig();
    const socket = await client();
    socket.send(
      request('PUT', '/upload', {
        version: 'HTTP/1.0',
        headers: ['Expect: 100-continue', 'Content-Length: 5'],
      }),
    );
    // The proxy must not wait for a 100 it never sends: the body follows after a pause.
    await new Promise((resolve) => setTimeout(resolve, 20));
    socket.send('hello');
    const response = await socket.readResponse();
    expect(response.status).toBe(200);
    expect(response.body.toString()).toBe('PUT /upload hello');
  });

  it('forwards a chunked body intact (extensions and trailers dropped, bytes exact)', async () => {
    const { client, request, upstream } = await rig();
    const socket = await client();
    const binary = Buffer.from(Array.from({ length: 256 }, (_, byte) => byte)).toString('latin1');
    socket.send(
      request('POST', '/chunks', {
        headers: ['Transfer-Encoding: chunked'],
        body: `5;ext=1\r\nhello\r\n${(256).toString(16)}\r\n${binary}\r\n1\r\n\r\r\n0\r\nX-Trailer: t\r\n\r\n`,
      }),
    );
    const response = await socket.readResponse();
    expect(response.status).toBe(200);
    const received = upstream.requests[0] as ReceivedRequest;
    expect(received.body.toString('latin1')).toBe(`hello${binary}\r`);
    expect(received.headers['x-trailer']).toBeUndefined();
  });

  it('keeps reading a kept-alive connection after a large body (backpressure released at the end)', async () => {
    const { client, request, upstream } = await rig();
    const socket = await client();
    const big = 'b'.repeat(3 * 1024 * 1024);
    upstream.script = (received, tls) =>
      tls.write(httpResponse(200, `${received.path} ${received.body.length}`));
    for (let round = 0; round < 3; round++) {
      socket.send(request('POST', `/big${round}`, { body: big }));
      expect((await socket.readResponse()).body.toString()).toBe(`/big${round} ${big.length}`);
      socket.send(request('GET', `/small${round}`));
      expect((await socket.readResponse()).body.toString()).toBe(`/small${round} 0`);
    }
  });
});

describe('response framing', () => {
  it('re-chunks a chunked upstream response for an HTTP/1.1 client and drops upstream trailers', async () => {
    const { client, request, upstream } = await rig();
    upstream.script = (_request, socket) =>
      socket.write(
        'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\nX-Up: 1\r\n\r\n' +
          '4;ext=a\r\nwiki\r\n5\r\npedia\r\n0\r\nX-T: secret-trailer\r\n\r\n',
      );
    const socket = await client();
    socket.send(request('GET', '/chunked') + request('GET', '/chunked'));
    for (let round = 0; round < 2; round++) {
      const response = await socket.readResponse();
      expect(response.headers['transfer-encoding']).toBe('chunked');
      expect(response.headers['x-up']).toBe('1');
      expect(response.headers.trailer).toBeUndefined();
      expect(response.body.toString()).toBe('wikipedia');
    }
    expect(socket.received.toString()).not.toContain('secret-trailer');
    expect(upstream.secureConnections).toBe(1);
  });

  it('delivers a chunked upstream response close-delimited to an HTTP/1.0 client', async () => {
    const { client, request, upstream } = await rig();
    upstream.script = (_request, socket) =>
      socket.write(
        'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwiki\r\n5\r\npedia\r\n0\r\n\r\n',
      );
    const socket = await client();
    socket.send(request('GET', '/chunked', { version: 'HTTP/1.0', headers: ['Connection: keep-alive'] }));
    const response = await socket.readResponse();
    expect(response.headers['transfer-encoding']).toBeUndefined();
    expect(response.headers['content-length']).toBeUndefined();
    expect(response.headers.connection).toBe('close');
    expect(response.body.toString()).toBe('wikipedia');
    expect(socket.error).toBeUndefined();
  });

  it('keeps content-length on HTTP/1.0 keep-alive answers', async () => {
    const { client, request } = await rig();
    const socket = await client();
    socket.send(request('GET', '/a', { version: 'HTTP/1.0', headers: ['Connection: keep-alive'] }));
    const first = await socket.readResponse();
    expect(first.headers.connection).toBe('keep-alive');
    expect(first.body.toString()).toBe('GET /a ');
    socket.send(request('GET', '/b', { version: 'HTTP/1.0' }));
    const second = await socket.readResponse();
    expect(second.headers.connection).toBe('close');
    await socket.waitEnded();
  });

  it('forwards HEAD, 204 and 304 without a body, keeping content-length, and the connection stays usable', async () => {
    const { client, request, upstream } = await rig();
    upstream.script = (received, socket) => {
      if (received.method === 'HEAD') socket.write('HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n');
      else if (received.path === '/no-content')
        socket.write('HTTP/1.1 204 No Content\r\nContent-Length: 7\r\nX-Kept: 1\r\n\r\n');
      else if (received.path === '/not-modified')
        socket.write('HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\nETag: "x"\r\n\r\n');
      else socket.write(httpResponse(200, 'done'));
    };
    const socket = await client();
    socket.send(
      request('HEAD', '/head') +
        request('GET', '/no-content') +
        request('GET', '/not-modified') +
        request('GET', '/last'),
    );
    const head = await socket.readResponse('HEAD');
    expect([head.status, head.headers['content-length'], head.body.length]).toEqual([200, '1234', 0]);
    const noContent = await socket.readResponse();
    expect([
      noContent.status,
      noContent.headers['content-length'],
      noContent.headers['transfer-encoding'],
      noContent.headers['x-kept'],
    ]).toEqual([204, undefined, undefined, '1']);
    const notModified = await socket.readResponse();
    expect([notModified.status, notModified.headers['content-length'], notModified.headers.etag]).toEqual([
      304,
      '99',
      '"x"',
    ]);
    const last = await socket.readResponse();
    expect(last.body.toString()).toBe('done');
    expect(socket.unread).toBe('');
    expect(upstream.secureConnections).toBe(1);
  });

  it('reads upstream responses that arrive byte by byte (1xx, chunked with trailers, content-length)', async () => {
    const { client, request, upstream } = await rig();
    const answers: Record<string, string> = {
      '/chunked':
        'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n' +
        '3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nT: 1\r\n\r\n',
      '/length': 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfghij',
    };
    upstream.script = (received, socket) => {
      const bytes = Buffer.from(answers[received.path] as string, 'latin1');
      void (async () => {
        for (let offset = 0; offset < bytes.length; offset++) {
          socket.write(bytes.subarray(offset, offset + 1));
          await new Promise((resolve) => setImmediate(resolve));
        }
      })();
    };
    const socket = await client();
    socket.send(request('GET', '/chunked') + request('GET', '/length') + request('GET', '/chunked'));
    expect((await socket.readResponse()).body.toString()).toBe('abcde');
    expect((await socket.readResponse()).body.toString()).toBe('fghij');
    expect((await socket.readResponse()).body.toString()).toBe('abcde');
    expect(upstream.secureConnections).toBe(1);
  });

  it('skips 1xx interim responses from the upstream', async () => {
    const { client, request, upstream } = await rig();
    upstream.script = (_request, socket) =>
      socket.write(
        `HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n${httpResponse(200, 'final')}`,
      );
    const socket = await client();
    socket.send(request('GET', '/'));
    const response = await socket.readResponse();
    expect([response.status, response.body.toString()]).toEqual([200, 'final']);
  });
});

describe('response framing attacks from the upstream', () => {
  /** Sends /first on one client connection, /second on another while /first is in flight. */
  async function twoClients(rigged: Rig, answerFirst: (socket: TLSSocket) => void) {
    const { client, request, upstream, proxy } = rigged;
    let firstSocket: TLSSocket | undefined;
    upstream.script = (received, socket) => {
      if (received.path === '/first') firstSocket = socket;
      else socket.write(httpResponse(200, 'real second'));
    };
    const a = await client();
    const b = await client();
    a.send(request('GET', '/first'));
    await eventually(() => firstSocket !== undefined, 'the first request upstream');
    b.send(request('GET', '/second'));
    // The second request waits for the only upstream connection.
    await eventually(() => proxy.server.metrics.inFlight === 2, 'the second request to be queued');
    answerFirst(firstSocket as TLSSocket);
    return { a, b };
  }

  // The stray bytes below reach the proxy in the same TCP read as the end of the first
  // response (several TLS records, one TCP write): what the proxy guarantees, whatever the load.
  // Bytes that arrive only after the next request was written are indistinguishable from its
  // answer (see the README and 'UpstreamPool' below).
  it('does not hand bytes past a content-length body (same write) to the next request', async () => {
    const rigged = await rig({}, { wire: true });
    const { a, b } = await twoClients(rigged, (socket) =>
      rigged.upstream.inOneSegment(socket, () =>
        socket.write(`${httpResponse(200, 'first')}${httpResponse(200, 'SMUGGLED')}`),
      ),
    );
    expect((await a.readResponse()).body.toString()).toBe('first');
    expect((await b.readResponse()).body.toString()).toBe('real second');
    expect(rigged.upstream.secureConnections).toBe(2);
  });

  it('does not hand bytes past a content-length body (separate TLS record) to the next request', async () => {
    const rigged = await rig({}, { wire: true });
    const { a, b } = await twoClients(rigged, (socket) =>
      rigged.upstream.inOneSegment(socket, () => {
        socket.write(httpResponse(200, 'first'));
        socket.write(httpResponse(200, 'SMUGGLED'));
      }),
    );
    expect((await a.readResponse()).body.toString()).toBe('first');
    expect((await b.readResponse()).body.toString()).toBe('real second');
    expect(rigged.upstream.secureConnections).toBe(2);
  });

  it('does not hand bytes past a chunked body (separate TLS record) to the next request', async () => {
    const rigged = await rig({}, { wire: true });
    const { a, b } = await twoClients(rigged, (socket) =>
      rigged.upstream.inOneSegment(socket, () => {
        socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n0\r\n\r\n');
        socket.write(httpResponse(200, 'SMUGGLED'));
      }),
    );
    expect((await a.readResponse()).body.toString()).toBe('first');
    expect((await b.readResponse()).body.toString()).toBe('real second');
    expect(rigged.upstream.secureConnections).toBe(2);
  });

  it('does not hand a body sent after a 204 (separate TLS record) to the next request', async () => {
    const rigged = await rig({}, { wire: true });
    const { a, b } = await twoClients(rigged, (socket) =>
      rigged.upstream.inOneSegment(socket, () => {
        socket.write('HTTP/1.1 204 No Content\r\nContent-Length: 8\r\n\r\n');
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nSMUGGLED');
      }),
    );
    expect((await a.readResponse()).status).toBe(204);
    expect((await b.readResponse()).body.toString()).toBe('real second');
    expect(rigged.upstream.secureConnections).toBe(2);
  });

  // Whenever stray bytes arrive (even after the next request was written, which no HTTP/1.1
  // client can tell from its answer), they cannot reach a request made with other credentials:
  // such requests never share an upstream connection.
  it('never lets bytes past a response reach a request made with other credentials, however late they come', async () => {
    const rigged = await rig({}, { wire: true });
    const { client, request, upstream } = rigged;
    let sendStray: (() => void) | undefined;
    upstream.script = (received, socket) => {
      if (received.path === '/first') {
        socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n0\r\n\r\n');
        const echo = received.headers.authorization?.[0] ?? '';
        setImmediate(() => {
          sendStray = upstream.held(socket, () => socket.write(httpResponse(200, `STRAY ${echo}`)));
        });
      } else {
        // The stray bytes leave as the other client's request arrives.
        sendStray?.();
        socket.write(httpResponse(200, `real ${received.path}`));
      }
    };
    const a = await client();
    a.send(request('GET', '/first'));
    expect((await a.readResponse()).body.toString()).toBe('first');
    await eventually(() => sendStray !== undefined, 'the held stray bytes');
    const b = await client();
    b.send(request('GET', '/second').replace(SEALED, SEALED_OTHER));
    expect((await b.readResponse()).body.toString()).toBe('real /second');
    expect(b.received.toString('latin1')).not.toContain(SECRET_TOKEN);
    expect(upstream.requests.map((received) => [received.path, received.connection])).toEqual([
      ['/first', 1],
      ['/second', 2],
    ]);
    expect(upstream.requests[1]?.headers.authorization).toEqual([`Bearer ${OTHER_SECRET_TOKEN}`]);
    // The first connection got bytes nobody asked for: dropped, never reused.
    a.send(request('GET', '/third'));
    expect((await a.readResponse()).body.toString()).toBe('real /third');
    expect(upstream.requests[2]?.connection).toBe(3);
  });

  it('drops an idle upstream connection that sends unsolicited bytes', async () => {
    const { client, request, upstream } = await rig();
    let firstSocket: TLSSocket | undefined;
    upstream.script = (received, socket) => {
      if (received.path === '/first') firstSocket = socket;
      socket.write(httpResponse(200, received.path === '/first' ? 'first' : 'real second'));
    };
    const socket = await client();
    socket.send(request('GET', '/first'));
    expect((await socket.readResponse()).body.toString()).toBe('first');
    const dropped = once(firstSocket as TLSSocket, 'close');
    (firstSocket as TLSSocket).write(httpResponse(200, 'SMUGGLED'));
    await dropped;
    socket.send(request('GET', '/second'));
    expect((await socket.readResponse()).body.toString()).toBe('real second');
    expect(upstream.secureConnections).toBe(2);
  });

  it.each([
    [
      'transfer-encoding with content-length',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n',
    ],
    ['differing content-lengths', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!'],
    ['an invalid status line', 'HTTP/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n'],
    ['an HTTP/2 status line', 'HTTP/2 200\r\n\r\n'],
    ['a bare LF in the head', 'HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n'],
    ['obs-fold', 'HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n'],
    ['a protocol switch', 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n'],
    ['an unsupported transfer-coding', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx'],
  ])('answers 502 to %s, without the secret', async (_name, answer) => {
    const { client, request, upstream } = await rig();
    upstream.script = (_request, socket) => socket.write(answer);
    const socket = await client();
    socket.send(request('GET', '/'));
    const response = await socket.readResponse();
    expect(response.status).toBe(502);
    expect(response.body.toString()).toMatch(/bad upstream response/);
    expectNoLeak(socket);
  });

  it.each([
    ['the status line', (secret: string) => `HTTP/1.1 ${secret}\r\nContent-Length: 0\r\n\r\n`],
    [
      'a folded line',
      (secret: string) => `HTTP/1.1 200 OK\r\nX-A: a\r\n ${secret}\r\nContent-Length: 0\r\n\r\n`,
    ],
    [
      'a line without a colon',
      (secret: string) => `HTTP/1.1 200 OK\r\n${secret}\r\nContent-Length: 0\r\n\r\n`,
    ],
    ['a header name', (secret: string) => `HTTP/1.1 200 OK\r\n${secret.replace(' ', '')} : 1\r\n\r\n`],
    ['a content-length', (secret: string) => `HTTP/1.1 200 OK\r\nContent-Length: ${secret}\r\n\r\n`],
    [
      'a header value',
      (secret: string) =>
        `HTTP/1.1 200 OK\r\n${SECRET_TOKEN}: a\x01\r\n\r\n`.replace('a\x01', `${secret}\x01`),
    ],
  ])('does not echo an upstream that reflects the credential in %s into the 502', async (_name, answer) => {
    const { client, request, upstream } = await rig();
    upstream.script = (received, socket) => socket.write(answer(received.headers.authorization?.[0] ?? ''));
    const socket = await client();
    socket.send(request('GET', '/'));
    const response = await socket.readResponse();
    expect(response.status).toBe(502);
    expectNoLeak(socket);
  });

  it('answers 502 when the upstream closes after its head but before any body byte reached the client', async () => {
    const { client, request, upstream } = await rig();
    upstream.script = (_request, socket) => socket.end('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n');
    const socket = await client();
    socket.send(request('GET', '/'));
    const response = await socket.readResponse();
    // The 200 head was still in memory: replaced by the error, not sent and then cut.
    expect(response.status).toBe(502);
    expect(socket.received.toString()).not.toContain('200 OK');
    expectNoLeak(socket);
  });

  it('answers 502 to a head with only bare LF line ends once the upstream closes', async () => {
    const { client, request, upstream } = await rig();
    upstream.script = (_request, socket) => socket.end('HTTP/1.1 200 OK\nContent-Length: 0\n\n');
    const socket = await client();
    socket.send(request('GET', '/'));
    expect((await socket.readResponse()).status).toBe(502);
    expectNoLeak(socket);
  });

  it('cuts the client connection at a malformed chunk, and delivers none of it', async () => {
    const { client, request, upstream } = await rig();
    upstream.script = (_request, socket) =>
      socket.write(
        'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\nGET / HTTP/1.1\r\n\r\n',
      );
    const socket = await client();
    socket.send(request('GET', '/'));
    await expect(socket.readResponse()).rejects.toThrow(/connection ended before a complete response/);
    expect(socket.received.toString()).not.toContain('zz');
    expectNoLeak(socket);
  });

  it.each([
    ['content-length', 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial'],
    ['chunked', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\npartial'],
  ])('cuts the HTTP/1.1 client connection when the upstream closes mid-body (%s)', async (_name, answer) => {
    const { client, request, upstream } = await rig();
    upstream.script = (_request, socket) => socket.end(answer);
    const socket = await client();
    socket.send(request('GET', '/'));
    await expect(socket.readResponse()).rejects.toThrow(/connection ended before a complete response/);
    // What arrived ends with the partial bytes: no chunked terminator was made up.
    expect(socket.received.toString()).toMatch(/partial(\r\n)?$/);
    expectNoLeak(socket);
  });

  it('resets (not closes) an HTTP/1.0 connection when the upstream closes mid-body, so truncation shows', async () => {
    const { client, request, upstream } = await rig();
    let upstreamSocket: TLSSocket | undefined;
    upstream.script = (_request, socket) => {
      upstreamSocket = socket;
      socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\npartial');
    };
    const socket = await client();
    socket.send(request('GET', '/', { version: 'HTTP/1.0' }));
    // The upstream dies after the client has read what was sent so far.
    await eventually(() => socket.received.toString().endsWith('partial'), 'the partial body');
    upstreamSocket?.end();
    await socket.closed;
    expect(socket.error?.code).toBe('ECONNRESET');
  });

  it('ends a close-delimited upstream body cleanly for the client, and does not reuse that connection', async () => {
    const { client, request, upstream } = await rig();
    upstream.script = (received, socket) => {
      if (received.index === 1 && received.connection === 1) socket.end('HTTP/1.1 200 OK\r\n\r\nuntil close');
      else socket.write(httpResponse(200, 'fresh'));
    };
    const socket = await client();
    socket.send(request('GET', '/one'));
    const first = await socket.readResponse();
    expect(first.headers['transfer-encoding']).toBe('chunked');
    expect(first.body.toString()).toBe('until close');
    socket.send(request('GET', '/two'));
    expect((await socket.readResponse()).body.toString()).toBe('fresh');
    expect(upstream.secureConnections).toBe(2);
  });
});

describe('upstream faults: bounded, answered, no leak, others still served', () => {
  /** A second, healthy upstream and a client of it: answered while the faulty one misbehaves. */
  async function bystander(rigged: Rig): Promise<() => Promise<void>> {
    const healthy = await ScriptedUpstream.start();
    cleanups.push(() => healthy.close());
    const other = `127.0.0.1:${healthy.port}`;
    return async () => {
      const started = Date.now();
      const socket = await rigged.client();
      socket.send(rigged.request('GET', '/healthy').replaceAll(rigged.authority, other));
      const response = await socket.readResponse();
      expect([response.status, response.body.toString()]).toEqual([200, 'GET /healthy ']);
      expect(Date.now() - started).toBeLessThan(2000);
    };
  }

  it('answers 504 to an upstream that accepts TCP but never speaks TLS, within the connect timeout', async () => {
    const silent = createTcpServer(() => {});
    silent.listen(await reachablePort(), '127.0.0.1');
    await once(silent, 'listening');
    const sockets = new Set<Socket>();
    silent.on('connection', (socket) => sockets.add(socket));
    cleanups.push(async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    });
    const rigged = await rig({ upstreamConnectTimeoutMs: 600, upstreamTimeoutMs: 600 });
    const served = await bystander(rigged);
    const socket = await rigged.client();
    const started = Date.now();
    const silentAuthority = `127.0.0.1:${(silent.address() as AddressInfo).port}`;
    socket.send(rigged.request('GET', '/').replaceAll(rigged.authority, silentAuthority));
    await served();
    const response = await socket.readResponse();
    expect(response.status).toBe(504);
    expect(response.body.toString()).toMatch(/connect timed out/);
    expect(Date.now() - started).toBeLessThan(3000);
    expectNoLeak(socket);
  });

  it('answers 504 to an upstream that reads the request and never answers, and serves others meanwhile', async () => {
    const rigged = await rig({ upstreamTimeoutMs: 600 });
    const { client, request, upstream } = rigged;
    upstream.script = () => {};
    const served = await bystander(rigged);
    const socket = await client();
    const started = Date.now();
    socket.send(request('GET', '/hang'));
    await eventually(() => upstream.requests.length === 1, 'the request upstream');
    await served();
    const response = await socket.readResponse();
    expect(response.status).toBe(504);
    expect(response.body.toString()).toMatch(/did not answer/);
    expect(Date.now() - started).toBeLessThan(3000);
    expectNoLeak(socket);
    // The hung connection is gone; the next request gets a fresh one.
    upstream.script = (received, upstreamSocket) => upstreamSocket.write(httpResponse(200, received.path));
    socket.send(request('GET', '/after'));
    expect((await socket.readResponse()).body.toString()).toBe('/after');
    expect(upstream.secureConnections).toBe(2);
  });

  it('cuts the client within the timeout when the upstream goes silent mid-body', async () => {
    const { client, request, upstream } = await rig({ upstreamTimeoutMs: 600 });
    upstream.script = (_request, socket) =>
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nfirst part');
    const socket = await client();
    const started = Date.now();
    socket.send(request('GET', '/'));
    await expect(socket.readResponse()).rejects.toThrow(/connection ended before a complete response/);
    expect(Date.now() - started).toBeLessThan(3000);
    expectNoLeak(socket);
    await eventually(() => upstream.sockets.size === 0, 'the upstream connection to be closed');
  });

  it.each([
    ['a head trickled one byte at a time', 'x'],
    ['endless 1xx interim responses', 'HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n'],
  ])('answers 504 to %s for longer than the timeout, and serves others meanwhile', async (_name, piece) => {
    const rigged = await rig({ upstreamTimeoutMs: 600 });
    const { client, request, upstream } = rigged;
    const trickles: NodeJS.Timeout[] = [];
    cleanups.push(() => {
      for (const timer of trickles) clearInterval(timer);
    });
    upstream.script = (received, socket) => {
      const echo = received.headers.authorization?.[0] ?? '';
      socket.write(piece === 'x' ? `HTTP/1.1 200 OK\r\nX-Echo: ${echo}` : piece.replace('/a', `/${echo}`));
      // Each piece well inside the inactivity timeout: only a deadline for the head ends it.
      trickles.push(setInterval(() => socket.writable && socket.write(piece), 100));
    };
    const served = await bystander(rigged);
    const socket = await client();
    const started = Date.now();
    socket.send(request('GET', '/'));
    await served();
    const response = await socket.readResponse();
    expect(response.status).toBe(504);
    expect(response.body.toString()).toMatch(/did not send its response head/);
    expect(Date.now() - started).toBeLessThan(3000);
    expectNoLeak(socket);
  });

  it('relays a body trickled one byte at a time for longer than the timeout (streams are not cut)', async () => {
    const { client, request, upstream } = await rig({ upstreamTimeoutMs: 600 });
    upstream.script = (_request, socket) => {
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n');
      let sent = 0;
      const timer = setInterval(() => {
        if (!socket.writable || sent === 12) {
          clearInterval(timer);
          return;
        }
        socket.write(String.fromCharCode(97 + sent++));
      }, 100);
    };
    const socket = await client();
    socket.send(request('GET', '/'));
    expect((await socket.readResponse()).body.toString()).toBe('abcdefghijkl');
  });

  it('answers 502 to an endless head of garbage (64 KiB cap), without the secret', async () => {
    const rigged = await rig();
    const { client, request, upstream } = rigged;
    upstream.script = (received, socket) => {
      const echo = received.headers.authorization?.[0] ?? '';
      for (let i = 0; i < 40; i++) socket.write(`\x00\xff${echo}${'g'.repeat(2000)}\n`);
    };
    const served = await bystander(rigged);
    const socket = await client();
    socket.send(request('GET', '/'));
    await served();
    const response = await socket.readResponse();
    expect(response.status).toBe(502);
    expect(response.body.toString()).toMatch(/header too large/);
    expectNoLeak(socket);
  });

  it.each([
    [
      'right after reading the request',
      (socket: TLSSocket, reset: () => void) => {
        void socket;
        reset();
      },
    ],
    [
      'mid-head',
      (socket: TLSSocket, reset: () => void) => {
        socket.write('HTTP/1.1 200 OK\r\nContent-Le');
        setTimeout(reset, 50);
      },
    ],
  ])('answers 502 to an upstream that resets the connection %s, without the secret', async (_name, fault) => {
    const rigged = await rig({}, { wire: true });
    const { client, request, upstream } = rigged;
    upstream.script = (_request, socket) => fault(socket, () => upstream.reset(socket));
    const served = await bystander(rigged);
    const socket = await client();
    socket.send(request('GET', '/'));
    const response = await socket.readResponse();
    expect(response.status).toBe(502);
    expect(response.body.toString()).toMatch(/^upstream request failed/);
    expectNoLeak(socket);
    await served();
  });

  it('cuts the client when the upstream resets mid-body, and never reuses that connection', async () => {
    const rigged = await rig({}, { wire: true });
    const { client, request, upstream } = rigged;
    upstream.script = (received, socket) => {
      if (received.connection === 1) {
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nfirst part');
        setTimeout(() => upstream.reset(socket), 50);
      } else socket.write(httpResponse(200, 'fresh'));
    };
    const socket = await client();
    socket.send(request('GET', '/'));
    await expect(socket.readResponse()).rejects.toThrow(/connection ended before a complete response/);
    expectNoLeak(socket);
    const next = await client();
    next.send(request('GET', '/next'));
    expect((await next.readResponse()).body.toString()).toBe('fresh');
    expect(upstream.secureConnections).toBe(2);
  });
});

describe('client byte boundaries', () => {
  it('gives the same answers whether a pipeline arrives in one piece or byte by byte', async () => {
    const { client, request, upstream } = await rig();
    const pipeline = Buffer.from(
      `\r\n${request('GET', '/a')}${request('POST', '/b', { body: 'xyz' })}${request('POST', '/c', {
        headers: ['Transfer-Encoding: chunked'],
        body: '2;e=1\r\nab\r\n1\r\nc\r\n0\r\nT: 1\r\n\r\n',
      })}`,
      'latin1',
    );
    const expected = ['GET /a ', 'POST /b xyz', 'POST /c abc'];
    const whole = await client();
    whole.send(pipeline);
    for (const body of expected) expect((await whole.readResponse()).body.toString()).toBe(body);
    const bytewise = await client();
    for (let offset = 0; offset < pipeline.length; offset++) {
      bytewise.send(pipeline.subarray(offset, offset + 1));
      // One turn of the event loop, so the proxy reads each byte on its own.
      await new Promise((resolve) => setImmediate(resolve));
    }
    for (const body of expected) expect((await bytewise.readResponse()).body.toString()).toBe(body);
    expect(upstream.requests.map((received) => received.body.toString())).toEqual([
      '',
      'xyz',
      'abc',
      '',
      'xyz',
      'abc',
    ]);
  });
});

describe('upstream keep-alive', () => {
  it('does not reuse a connection whose response came before the request body was sent', async () => {
    const { client, request, upstream } = await rig();
    upstream.onHead = (_method, path, socket) => {
      if (path === '/early') socket.write(httpResponse(413, 'too big'));
    };
    const socket = await client();
    socket.send(request('POST', '/early', { headers: ['Content-Length: 10'] }));
    const early = await socket.readResponse();
    expect([early.status, early.body.toString()]).toEqual([413, 'too big']);
    // The client's body was never read to its end: the connection cannot carry another request.
    await socket.waitEnded();
    const next = await client();
    next.send(request('GET', '/next'));
    expect((await next.readResponse()).body.toString()).toBe('GET /next ');
    expect(upstream.secureConnections).toBe(2);
  });

  it('sends sequential requests from several clients over one TLS connection', async () => {
    const { client, request, upstream } = await rig({ upstreamConnectionsPerOrigin: 4 });
    for (let round = 0; round < 5; round++) {
      const socket = await client();
      socket.send(request('GET', `/r${round}`) + request('POST', `/p${round}`, { body: 'x' }));
      expect((await socket.readResponse()).body.toString()).toBe(`GET /r${round} `);
      expect((await socket.readResponse()).body.toString()).toBe(`POST /p${round} x`);
    }
    expect(upstream.secureConnections).toBe(1);
    expect(new Set(upstream.requests.map((received) => received.connection))).toEqual(new Set([1]));
  });

  it('drops (never reuses) the upstream connection of a client that left mid-response', async () => {
    const { client, request, upstream } = await rig();
    let firstSocket: TLSSocket | undefined;
    upstream.script = (received, socket) => {
      if (received.path === '/slow') {
        firstSocket = socket;
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nfirst part');
      } else socket.write(httpResponse(200, 'fresh'));
    };
    const leaving = await client();
    leaving.send(request('GET', '/slow'));
    await eventually(() => leaving.received.toString().endsWith('first part'), 'the first part');
    const dropped = once(firstSocket as TLSSocket, 'close');
    leaving.socket.destroy();
    await dropped;
    const next = await client();
    next.send(request('GET', '/next'));
    expect((await next.readResponse()).body.toString()).toBe('fresh');
    expect(upstream.secureConnections).toBe(2);
  });

  it('opens a new connection after the upstream closed an idle one', async () => {
    const { client, request, upstream } = await rig();
    const socket = await client();
    socket.send(request('GET', '/one'));
    await socket.readResponse();
    const [idle] = [...upstream.sockets];
    const closed = once(idle as TLSSocket, 'close');
    (idle as TLSSocket).end();
    await closed;
    socket.send(request('GET', '/two'));
    expect((await socket.readResponse()).body.toString()).toBe('GET /two ');
    expect(upstream.secureConnections).toBe(2);
  });

  /** The upstream closes a kept-alive connection just as the proxy reuses it. */
  function closeOnReuse(upstream: ScriptedUpstream): void {
    upstream.script = (received, socket) => {
      if (received.connection === 1 && received.index === 2) socket.destroy();
      else socket.write(httpResponse(200, `${received.method} ${received.path} c${received.connection}`));
    };
  }

  it('retries a GET once on a fresh connection when a reused connection was closed', async () => {
    const { client, request, upstream } = await rig();
    closeOnReuse(upstream);
    const socket = await client();
    socket.send(request('GET', '/one'));
    expect((await socket.readResponse()).body.toString()).toBe('GET /one c1');
    socket.send(request('GET', '/two'));
    const retried = await socket.readResponse();
    expect([retried.status, retried.body.toString()]).toEqual([200, 'GET /two c2']);
    expect(upstream.requests.filter((received) => received.path === '/two')).toHaveLength(2);
  });

  it('answers 502 to a POST on a reused connection that was closed, and never sends it twice', async () => {
    const { client, request, upstream } = await rig();
    closeOnReuse(upstream);
    const socket = await client();
    socket.send(request('GET', '/one'));
    await socket.readResponse();
    socket.send(request('POST', '/pay', { body: 'once' }));
    const response = await socket.readResponse();
    expect(response.status).toBe(502);
    expectNoLeak(socket);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(upstream.requests.filter((received) => received.path === '/pay')).toHaveLength(1);
    expect(upstream.secureConnections).toBe(1);
  });

  it('does not retry a GET whose response had started', async () => {
    const { client, request, upstream } = await rig();
    upstream.script = (received, socket) => {
      if (received.connection === 1 && received.index === 2)
        socket.end('HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\npar');
      else socket.write(httpResponse(200, 'ok'));
    };
    const socket = await client();
    socket.send(request('GET', '/one'));
    await socket.readResponse();
    socket.send(request('GET', '/two'));
    await expect(socket.readResponse()).rejects.toThrow(/connection ended/);
    expect(upstream.requests.filter((received) => received.path === '/two')).toHaveLength(1);
  });
});

describe('ClientConnection (real sockets, driven directly)', () => {
  let server: Server;
  let port = 0;
  let handler: (request: ClientRequest, response: ClientResponse) => void = () => {};
  let serverSockets: Socket[] = [];

  beforeAll(async () => {
    server = createTcpServer((socket) => {
      serverSockets.push(socket);
      new ClientConnection(socket, {
        maxHeaderBytes: 16 * 1024,
        onRequest: (request, response) => handler(request, response),
        onMalformed: () => {},
      });
    });
    server.listen(await reachablePort(), '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    for (const socket of serverSockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  afterEach(() => {
    for (const socket of serverSockets) socket.destroy();
    serverSockets = [];
  });

  it('reads the next request after a body whose last piece filled the body buffer', async () => {
    const bodies: RequestBody[] = [];
    handler = (request, response) => {
      if (request.body) {
        bodies.push(request.body);
        request.body.on('end', () => {
          response.writeHead(200, [], 4);
          response.end(Buffer.from('body'));
        });
        return;
      }
      response.writeHead(200, [], 4);
      response.end(Buffer.from(request.url));
    };
    const client = await RawClient.connect(port);
    await eventually(() => serverSockets.length === 1, 'the connection');
    const serverSocket = serverSockets[0] as Socket;
    const size = 64 * 1024;
    // Stand-in for one large read: a single 'data' event with the head and a body exactly the
    // size of the body stream's buffer, so the last push asks for backpressure.
    serverSocket.emit(
      'data',
      Buffer.concat([
        Buffer.from(`POST /big HTTP/1.1\r\nContent-Length: ${size}\r\n\r\n`),
        Buffer.alloc(size, 'z'),
      ]),
    );
    expect(bodies).toHaveLength(1);
    let received = 0;
    (bodies[0] as RequestBody).on('data', (chunk: Buffer) => {
      received += chunk.length;
    });
    expect((await client.readResponse()).body.toString()).toBe('body');
    expect(received).toBe(size);
    client.send('GET /nxt HTTP/1.1\r\n\r\n');
    const next = await Promise.race([
      client.readResponse(),
      new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 500)),
    ]);
    expect(next?.body.toString()).toBe('/nxt');
  });
});

describe('UpstreamPool', () => {
  function makePool(connectionsPerOrigin = 1): UpstreamPool {
    const pool = new UpstreamPool({
      secureContext: createSecureContext({ ca: certificates.caCertificatePem }),
      connectionsPerOrigin,
      connectTimeoutMs: 5000,
      timeoutMs: 5000,
      idleTimeoutMs: 5000,
    });
    cleanups.push(() => pool.close());
    return pool;
  }

  /** One GET through the pool; `onComplete` runs inside the pool's completion callback. */
  function get(
    pool: UpstreamPool,
    upstream: ScriptedUpstream,
    path: string,
    onComplete: () => void = () => {},
  ): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let status = 0;
      pool.dispatch(
        { hostname: '127.0.0.1', port: upstream.port, hostHeader: `127.0.0.1:${upstream.port}` },
        { method: 'GET', path, headers: {}, body: null },
        {
          onHeaders: (code) => {
            status = code;
          },
          onData: (chunk) => {
            chunks.push(chunk);
            return true;
          },
          onComplete: () => {
            resolve({ status, body: Buffer.concat(chunks).toString() });
            onComplete();
          },
          onError: reject,
        },
      );
    });
  }

  // The window issue 16's flaky run showed: a connection released with no exchange queued went
  // straight back to the idle list, so an exchange dispatched before the rest of the same read
  // was delivered (a promise reaction or a tick after the response ended: the proxy's own
  // asynchronous processors do that) took it, wrote its request, and was handed the stray TLS
  // record that followed as its response. Deterministic: both records leave in one TCP write.
  it.each([
    ['a microtask', (run: () => void) => queueMicrotask(run)],
    ['a tick', (run: () => void) => process.nextTick(run)],
    ['the completion callback itself', (run: () => void) => run()],
  ])(
    'does not hand stray bytes from the same read to an exchange dispatched in %s after the response ended',
    async (_name, schedule) => {
      for (const connections of [1, 4]) {
        const upstream = await ScriptedUpstream.start({ wire: true });
        cleanups.push(() => upstream.close());
        upstream.script = (received, socket) => {
          if (received.path === '/first')
            upstream.inOneSegment(socket, () => {
              socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n0\r\n\r\n');
              socket.write(httpResponse(200, `SMUGGLED ${received.headers['x-credential']?.[0] ?? ''}`));
            });
          else socket.write(httpResponse(200, 'real second'));
        };
        const pool = makePool(connections);
        let second: Promise<{ status: number; body: string }> | undefined;
        const first = await get(pool, upstream, '/first', () =>
          schedule(() => {
            second = get(pool, upstream, '/second');
          }),
        );
        expect(first).toEqual({ status: 200, body: 'first' });
        await eventually(() => second !== undefined, 'the second dispatch');
        expect(await second).toEqual({ status: 200, body: 'real second' });
        expect(upstream.requests.map((received) => [received.path, received.connection])).toEqual([
          ['/first', 1],
          ['/second', 2],
        ]);
      }
    },
  );

  it('hands a connection over on the next turn, and reuses it when nothing followed the response', async () => {
    const upstream = await ScriptedUpstream.start();
    cleanups.push(() => upstream.close());
    const pool = makePool(4);
    let second: Promise<{ status: number; body: string }> | undefined;
    await get(pool, upstream, '/first', () =>
      queueMicrotask(() => {
        second = get(pool, upstream, '/second');
      }),
    );
    await eventually(() => second !== undefined, 'the second dispatch');
    expect((await second)?.body).toBe('GET /second ');
    // The second exchange waited for the released connection rather than opening another.
    expect(upstream.secureConnections).toBe(1);
    expect(pool.connectionCount).toBe(1);
  });

  // What no HTTP/1.1 client can tell apart: bytes that reach it only after it wrote the next
  // request are that request's answer as far as the protocol goes (responses carry no request
  // id). The proxy cannot keep them from the next exchange; it notices the mismatch when the
  // real answer follows (bytes past the end) and never reuses the connection after that.
  it('(limit) takes stray bytes that arrive after the next request was written as its answer, then drops the connection', async () => {
    const upstream = await ScriptedUpstream.start({ wire: true });
    cleanups.push(() => upstream.close());
    let sendStray: (() => void) | undefined;
    upstream.script = (received, socket) => {
      if (received.path === '/first') {
        socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n0\r\n\r\n');
        // Held back, as Nagle's algorithm holds a second small write until the peer's ACK
        // (which rides on the proxy's next request).
        setImmediate(() => {
          sendStray = upstream.held(socket, () => socket.write(httpResponse(200, 'STRAY')));
        });
      } else if (received.path === '/second') {
        sendStray?.();
        socket.write(httpResponse(200, 'real second'));
      } else socket.write(httpResponse(200, `fresh ${received.path}`));
    };
    const pool = makePool(1);
    expect((await get(pool, upstream, '/first')).body).toBe('first');
    await eventually(() => sendStray !== undefined, 'the held stray bytes');
    expect((await get(pool, upstream, '/second')).body).toBe('STRAY');
    // The real answer to /second follows: bytes with no exchange, so the connection goes.
    await eventually(() => pool.connectionCount === 0, 'the connection to be dropped');
    expect((await get(pool, upstream, '/third')).body).toBe('fresh /third');
    expect(upstream.requests.map((received) => [received.path, received.connection])).toEqual([
      ['/first', 1],
      ['/second', 1],
      ['/third', 2],
    ]);
  });

  it('never frames an empty body piece as the chunked terminator', async () => {
    const upstream = await ScriptedUpstream.start();
    cleanups.push(() => upstream.close());
    const pool = new UpstreamPool({
      secureContext: createSecureContext({ ca: certificates.caCertificatePem }),
      connectionsPerOrigin: 1,
      connectTimeoutMs: 5000,
      timeoutMs: 5000,
      idleTimeoutMs: 5000,
    });
    cleanups.push(() => pool.close());
    async function* body(): AsyncGenerator<Buffer> {
      yield Buffer.from('ab');
      yield Buffer.alloc(0);
      yield Buffer.from('GET /smuggled HTTP/1.1\r\nhost: x\r\n\r\n');
    }
    const result = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const chunks: Buffer[] = [];
      let status = 0;
      pool.dispatch(
        { hostname: '127.0.0.1', port: upstream.port, hostHeader: `127.0.0.1:${upstream.port}` },
        { method: 'POST', path: '/stream', headers: {}, body: body() },
        {
          onHeaders: (code) => {
            status = code;
          },
          onData: (chunk) => {
            chunks.push(chunk);
            return true;
          },
          onComplete: () => resolve({ status, body: Buffer.concat(chunks).toString() }),
          onError: reject,
        },
      );
    });
    expect(result).toEqual({ status: 200, body: 'POST /stream abGET /smuggled HTTP/1.1\r\nhost: x\r\n\r\n' });
    expect(upstream.requests.map((received) => received.path)).toEqual(['/stream']);
  });
});
