import { isIP, type LookupFunction } from 'node:net';
import { type SecureContext, type TLSSocket, connect as tlsConnect } from 'node:tls';
import { TokenizerError } from './errors.js';
import {
  BODY_UNTIL_CLOSE,
  CHUNKED_BODY,
  ChunkedDecoder,
  findHeadEnd,
  HttpMessageError,
  isValidHeaderName,
  isValidHeaderValue,
  NO_BODY,
  parseResponseHead,
  type ResponseHead,
} from './http-messages.js';
import type { OutgoingHeaders } from './outgoing-request.js';

// Kept-alive TLS connections to upstreams, and the HTTP/1.1 exchanges sent over them.
// A connection carries one exchange at a time and goes back to its pool only when the
// response was framed exactly and the request was sent completely; anything else (extra
// bytes, early responses, errors, timeouts) destroys it, so responses can never mix.

export interface UpstreamPoolOptions {
  secureContext: SecureContext;
  /** DNS lookup used to dial (the private-address guard); default: the system resolver. */
  lookup?: LookupFunction | undefined;
  connectionsPerOrigin: number;
  connectTimeoutMs: number;
  /** Inactivity timeout while an exchange waits for or reads a response. */
  timeoutMs: number;
  /** Idle kept-alive connections are closed after this long. */
  idleTimeoutMs: number;
  /** Largest response head accepted. */
  maxHeaderBytes?: number;
}

export interface UpstreamTarget {
  /** Lowercase hostname without brackets: what is dialled and sent as SNI. */
  hostname: string;
  port: number;
  /** Host header value. */
  hostHeader: string;
  /**
   * Connections are shared only by exchanges of the same partition (the proxy passes the
   * fingerprints of the credentials a request carries): bytes an upstream sends past the end
   * of a response can only ever be read as the answer to a request made with the same
   * credentials. `connectionsPerOrigin` applies to each partition.
   */
  partition?: string | undefined;
}

export interface UpstreamRequest {
  method: string;
  /** Origin-form path and query. */
  path: string;
  /** Lowercase names; `host` is ignored (UpstreamTarget.hostHeader is sent). */
  headers: OutgoingHeaders;
  body: Buffer | AsyncIterable<Buffer> | null;
}

/** What the exchange reports; every call happens at most once except onData. */
export interface UpstreamResponseHandler {
  /** Final (non-1xx) response head; `bodyLength` is a byte count, NO_BODY, CHUNKED_BODY or BODY_UNTIL_CLOSE. */
  onHeaders(status: number, headers: string[], bodyLength: number): void;
  /** Body bytes (de-chunked). Return false to pause until `exchange.resume()`. */
  onData(chunk: Buffer): boolean;
  onComplete(): void;
  onError(error: Error): void;
}

export class UpstreamTimeoutError extends TokenizerError {
  constructor(message: string) {
    super('UPSTREAM_TIMEOUT', message, 504);
    this.name = 'UpstreamTimeoutError';
  }
}

/** Origin-form: `/` and visible ASCII (the rule /^\/[\x21-\x7e]*$/, as a loop). */
function isRequestPath(path: string): boolean {
  if (path.charCodeAt(0) !== 0x2f) return false;
  for (let index = 1; index < path.length; index++) {
    const code = path.charCodeAt(index);
    if (code < 0x21 || code > 0x7e) return false;
  }
  return true;
}
const IDEMPOTENT_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/** Serialises the request head; refuses header names and values that would break framing. */
export function serializeRequestHead(
  target: UpstreamTarget,
  request: UpstreamRequest,
  framing: string,
): string {
  if (!isRequestPath(request.path)) throw invalidHeader(':path');
  let head = `${request.method} ${request.path} HTTP/1.1\r\nhost: ${target.hostHeader}\r\n`;
  const headers = request.headers;
  for (const name in headers) {
    if (name === 'host' || name === 'content-length' || name === 'transfer-encoding') continue;
    if (!isValidHeaderName(name)) throw invalidHeader(name);
    const value = headers[name] as string | string[];
    if (typeof value === 'string') {
      if (!isValidHeaderValue(value)) throw invalidHeader(name);
      head += `${name}: ${value}\r\n`;
    } else {
      for (const item of value) {
        if (!isValidHeaderValue(item)) throw invalidHeader(name);
        head += `${name}: ${item}\r\n`;
      }
    }
  }
  return `${head}${framing}\r\n`;
}

function invalidHeader(name: string): TokenizerError {
  return new TokenizerError(
    'PROCESSOR_RUNTIME',
    `invalid header ${JSON.stringify(name.slice(0, 64))} for upstream`,
    502,
  );
}

/** Connection pools keyed by host and port. */
export class UpstreamPool {
  private readonly options: UpstreamPoolOptions;
  private readonly origins = new Map<string, OriginPool>();
  private lastOrigin: OriginPool | undefined = undefined;
  private readonly sweeper: NodeJS.Timeout;
  private closed = false;

  constructor(options: UpstreamPoolOptions) {
    this.options = options;
    this.sweeper = setInterval(() => this.sweep(), Math.min(1000, options.idleTimeoutMs)).unref();
  }

  /** Sends a request; the handler learns the outcome. */
  dispatch(
    target: UpstreamTarget,
    request: UpstreamRequest,
    handler: UpstreamResponseHandler,
  ): UpstreamExchange {
    const exchange = new UpstreamExchange(target, request, handler);
    if (this.closed) {
      exchange.fail(new TokenizerError('UPSTREAM_FAILED', 'upstream pool closed', 502));
      return exchange;
    }
    const partition = target.partition ?? '';
    let origin = this.lastOrigin;
    // Consecutive requests mostly go to the same origin and partition: compared field by field,
    // without building and hashing the key.
    if (
      origin === undefined ||
      origin.hostname !== target.hostname ||
      origin.port !== target.port ||
      origin.partition !== partition ||
      this.origins.get(origin.key) !== origin
    ) {
      const key = `${target.hostname}\0${target.port}\0${partition}`;
      origin = this.origins.get(key);
      if (!origin) {
        origin = new OriginPool(this, key, target.hostname, target.port, partition, this.options);
        this.origins.set(key, origin);
      }
      this.lastOrigin = origin;
    }
    origin.enqueue(exchange);
    return exchange;
  }

  /** @internal */
  forget(origin: OriginPool): void {
    if (this.origins.get(origin.key) === origin) this.origins.delete(origin.key);
  }

  get connectionCount(): number {
    let count = 0;
    for (const origin of this.origins.values()) count += origin.connections.size;
    return count;
  }

  private sweep(): void {
    const now = Date.now();
    for (const origin of this.origins.values()) origin.sweep(now);
  }

  /** Closes every connection; queued and running exchanges fail. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweeper);
    for (const origin of [...this.origins.values()]) origin.close();
  }
}

class OriginPool {
  readonly key: string;
  readonly connections = new Set<UpstreamConnection>();
  private readonly idle: UpstreamConnection[] = [];
  /** Released connections waiting for the next turn before they serve again. */
  private settling: UpstreamConnection[] = [];
  private readonly queue: UpstreamExchange[] = [];
  private readonly owner: UpstreamPool;
  readonly hostname: string;
  readonly port: number;
  readonly partition: string;
  private readonly options: UpstreamPoolOptions;

  constructor(
    owner: UpstreamPool,
    key: string,
    hostname: string,
    port: number,
    partition: string,
    options: UpstreamPoolOptions,
  ) {
    this.owner = owner;
    this.key = key;
    this.hostname = hostname;
    this.port = port;
    this.partition = partition;
    this.options = options;
  }

  enqueue(exchange: UpstreamExchange): void {
    exchange.origin = this;
    let connection = this.idle.pop();
    while (connection?.socket.destroyed) connection = this.idle.pop();
    if (connection) {
      connection.start(exchange);
      return;
    }
    // A connection that has just finished an exchange serves the queue on the next turn: wait
    // for it rather than handshake another (and so a pipelining client keeps one connection).
    if (
      this.settling.length > this.queue.length ||
      this.connections.size >= this.options.connectionsPerOrigin
    ) {
      // A bounded pool queues requests (FIFO) instead of handshaking ever more connections.
      this.queue.push(exchange);
      return;
    }
    this.open(exchange);
  }

  dequeue(exchange: UpstreamExchange): void {
    const index = this.queue.indexOf(exchange);
    if (index >= 0) this.queue.splice(index, 1);
  }

  private open(exchange: UpstreamExchange): void {
    const connection = new UpstreamConnection(this, this.hostname, this.port, this.options);
    this.connections.add(connection);
    connection.connectFor(exchange);
  }

  /**
   * A connection finished an exchange cleanly. It serves nobody until the next turn of the
   * event loop (the check phase, after every I/O callback of this one): the rest of the read
   * that ended the response (later TLS records of the same TCP read, each delivered in its own
   * callback with microtasks and ticks run in between) arrives first, finds no exchange and
   * destroys the connection. Handing it to the idle list at once let an exchange dispatched
   * from a promise reaction or a tick take it in between and read those bytes as its response.
   */
  release(connection: UpstreamConnection): void {
    this.settling.push(connection);
    if (this.settling.length === 1) setImmediate(this.settle);
  }

  private readonly settle = (): void => {
    const settled = this.settling;
    this.settling = [];
    for (const connection of settled) {
      // A destroyed connection's slot serves the queue from removed().
      if (connection.socket.destroyed) continue;
      const next = this.queue.shift();
      if (next) {
        connection.start(next);
        continue;
      }
      connection.idleSince = Date.now();
      this.idle.push(connection);
    }
  };

  /** A connection is gone: its slot can serve a queued exchange. */
  removed(connection: UpstreamConnection): void {
    this.connections.delete(connection);
    const index = this.idle.indexOf(connection);
    if (index >= 0) this.idle.splice(index, 1);
    const next = this.queue.shift();
    if (next) this.open(next);
    else if (this.connections.size === 0) this.owner.forget(this);
  }

  sweep(now: number): void {
    for (const connection of [...this.idle]) {
      if (now - connection.idleSince > this.options.idleTimeoutMs) connection.socket.destroy();
    }
  }

  close(): void {
    const queued = this.queue.splice(0);
    for (const exchange of queued)
      exchange.fail(new TokenizerError('UPSTREAM_FAILED', 'proxy shutting down', 502));
    for (const connection of [...this.connections]) connection.socket.destroy();
    this.owner.forget(this);
  }
}

enum Phase {
  Head,
  Body,
}

/** One TLS connection; runs one exchange at a time. */
class UpstreamConnection {
  readonly socket: TLSSocket;
  private readonly origin: OriginPool;
  private readonly options: UpstreamPoolOptions;
  private exchange: UpstreamExchange | undefined = undefined;
  private connected = false;
  private served = 0;
  private phase = Phase.Head;
  private pending: Buffer | undefined = undefined;
  private searchFrom = 0;
  private head: ResponseHead | undefined = undefined;
  private remaining = 0;
  private decoder: ChunkedDecoder | undefined = undefined;
  private received = false;
  /** When the first byte of this exchange's response head arrived (set only if it spans reads). */
  private headSince = 0;
  idleSince = 0;

  constructor(origin: OriginPool, hostname: string, port: number, options: UpstreamPoolOptions) {
    this.origin = origin;
    this.options = options;
    this.socket = tlsConnect({
      host: hostname,
      port,
      // SNI carries names only; IP literals are verified against the certificate's IP SANs.
      ...(isIP(hostname) === 0 ? { servername: hostname } : {}),
      secureContext: options.secureContext,
      rejectUnauthorized: true,
      ALPNProtocols: ['http/1.1'],
      ...(options.lookup ? { lookup: options.lookup } : {}),
    });
    const socket = this.socket;
    socket.setNoDelay(true);
    socket.setTimeout(options.connectTimeoutMs);
    socket.once('secureConnect', () => this.onConnected());
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.exchange?.drained());
    socket.on('timeout', () => this.onTimeout());
    socket.on('error', (error) => this.onSocketError(error));
    socket.on('end', () => this.onEnd());
    socket.on('close', () => this.onClosed());
  }

  connectFor(exchange: UpstreamExchange): void {
    this.exchange = exchange;
    exchange.connection = this;
  }

  private onConnected(): void {
    this.connected = true;
    this.socket.setTimeout(this.options.timeoutMs);
    const exchange = this.exchange;
    if (exchange) this.send(exchange);
  }

  start(exchange: UpstreamExchange): void {
    this.exchange = exchange;
    exchange.connection = this;
    this.send(exchange);
  }

  private send(exchange: UpstreamExchange): void {
    this.phase = Phase.Head;
    this.received = false;
    this.headSince = 0;
    this.head = undefined;
    this.decoder = undefined;
    exchange.reused = this.served > 0;
    try {
      exchange.write(this.socket);
    } catch (error) {
      // Nothing was written: the connection is still clean.
      this.exchange = undefined;
      exchange.connection = undefined;
      exchange.fail(error as Error);
      this.origin.release(this);
    }
  }

  private onData(chunk: Buffer): void {
    const exchange = this.exchange;
    if (!exchange) {
      // Bytes nobody asked for: this connection's framing cannot be trusted.
      this.socket.destroy();
      return;
    }
    this.received = true;
    try {
      if (this.phase === Phase.Head) this.readHead(exchange, chunk);
      else this.readBody(exchange, chunk, 0);
    } catch (error) {
      this.abandon(error as Error);
    }
  }

  private readHead(exchange: UpstreamExchange, chunk: Buffer | undefined): void {
    let buffer: Buffer;
    if (chunk === undefined) buffer = this.pending as Buffer;
    else buffer = this.pending === undefined ? chunk : Buffer.concat([this.pending, chunk]);
    const end = findHeadEnd(buffer, this.searchFrom);
    const maxHeaderBytes = this.options.maxHeaderBytes ?? 64 * 1024;
    if (end < 0 || end + 4 > maxHeaderBytes) {
      if (buffer.length > maxHeaderBytes || end >= 0)
        throw new HttpMessageError('BAD_UPSTREAM_RESPONSE', 'bad upstream response: header too large', 502);
      this.checkHeadDeadline();
      this.pending = buffer;
      this.searchFrom = Math.max(0, buffer.length - 3);
      return;
    }
    this.pending = undefined;
    this.searchFrom = 0;
    const head = parseResponseHead(buffer.toString('latin1', 0, end), exchange.method);
    const rest = end + 4;
    if (head.status < 200) {
      if (head.status === 101)
        throw new HttpMessageError(
          'BAD_UPSTREAM_RESPONSE',
          'bad upstream response: unexpected protocol switch',
          502,
        );
      // 100 Continue, 103 Early Hints…: skipped; the final response follows (within the same
      // deadline: endless interim responses are a trickle too).
      this.checkHeadDeadline();
      if (rest < buffer.length) {
        this.pending = buffer.subarray(rest);
        this.readHead(exchange, undefined);
      }
      return;
    }
    this.head = head;
    this.phase = Phase.Body;
    if (head.bodyLength === CHUNKED_BODY) this.decoder = new ChunkedDecoder('response');
    else this.remaining = head.bodyLength;
    exchange.headers(head);
    if (this.exchange !== exchange) return;
    if (head.bodyLength === NO_BODY || head.bodyLength === 0) {
      if (rest < buffer.length) this.head.keepAlive = false;
      this.complete(exchange);
      return;
    }
    if (rest < buffer.length) this.readBody(exchange, buffer, rest);
  }

  /**
   * The inactivity timeout alone lets an upstream that trickles its head (a byte now and then,
   * or endless 1xx responses) hold an exchange for ever; the head gets `timeoutMs` from its
   * first byte, checked as bytes arrive (so at most twice that with the inactivity timeout).
   * Only heads that span reads pay for the clock. Bodies have no such deadline: streams trickle.
   */
  private checkHeadDeadline(): void {
    const now = Date.now();
    if (this.headSince === 0) this.headSince = now;
    else if (now - this.headSince > this.options.timeoutMs)
      throw new UpstreamTimeoutError(
        `upstream did not send its response head within ${Math.round(this.options.timeoutMs / 1000)} s`,
      );
  }

  private readBody(exchange: UpstreamExchange, buffer: Buffer, start: number): void {
    const head = this.head as ResponseHead;
    let next: number;
    if (this.decoder) {
      next = this.decoder.decode(buffer, start, (data) => this.emit(exchange, data));
      if (!this.decoder.done) return;
    } else if (head.bodyLength === BODY_UNTIL_CLOSE) {
      this.emit(exchange, start === 0 ? buffer : buffer.subarray(start));
      return;
    } else {
      next = Math.min(buffer.length, start + this.remaining);
      if (next > start)
        this.emit(exchange, start === 0 && next === buffer.length ? buffer : buffer.subarray(start, next));
      this.remaining -= next - start;
      if (this.remaining > 0) return;
    }
    // Bytes past the end of the response: never reuse this connection.
    if (next < buffer.length) head.keepAlive = false;
    this.complete(exchange);
  }

  private emit(exchange: UpstreamExchange, data: Buffer): void {
    if (this.exchange !== exchange) return;
    if (!exchange.data(data)) this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  private complete(exchange: UpstreamExchange): void {
    const reusable = (this.head as ResponseHead).keepAlive && exchange.requestSent;
    this.exchange = undefined;
    exchange.connection = undefined;
    this.served++;
    this.socket.resume();
    if (!reusable) this.socket.destroy();
    exchange.complete();
    if (reusable && !this.socket.destroyed) this.origin.release(this);
  }

  /** Fails the running exchange and destroys the connection. */
  abandon(error: Error): void {
    const exchange = this.exchange;
    this.exchange = undefined;
    if (exchange) exchange.connection = undefined;
    this.socket.destroy();
    exchange?.fail(error);
  }

  /** The client went away: the connection cannot finish this exchange. */
  detach(exchange: UpstreamExchange): void {
    if (this.exchange !== exchange) return;
    this.exchange = undefined;
    this.socket.destroy();
  }

  private onTimeout(): void {
    if (!this.exchange) {
      this.socket.destroy();
      return;
    }
    const seconds = Math.round(
      (this.connected ? this.options.timeoutMs : this.options.connectTimeoutMs) / 1000,
    );
    this.abandon(
      new UpstreamTimeoutError(
        this.connected
          ? `upstream did not answer within ${seconds} s`
          : `upstream connect timed out after ${seconds} s`,
      ),
    );
  }

  private onSocketError(error: Error): void {
    this.lost(error);
  }

  private onEnd(): void {
    const exchange = this.exchange;
    if (exchange && this.phase === Phase.Body && this.head?.bodyLength === BODY_UNTIL_CLOSE) {
      // The server closing is the end of a close-delimited body.
      this.head.keepAlive = false;
      this.complete(exchange);
      return;
    }
    this.lost(new Error('upstream closed the connection'));
  }

  private onClosed(): void {
    this.lost(new Error('upstream closed the connection'));
    this.origin.removed(this);
  }

  private lost(error: Error): void {
    const exchange = this.exchange;
    if (!exchange) return;
    this.exchange = undefined;
    exchange.connection = undefined;
    if (!this.socket.destroyed) this.socket.destroy();
    // A kept-alive connection the server had already closed: nothing of this request was
    // processed, so an idempotent request is sent once more on a fresh connection.
    if (exchange.reused && !this.received && exchange.retryable()) {
      exchange.retried = true;
      this.origin.enqueue(exchange);
      return;
    }
    exchange.fail(error);
  }
}

/** One request/response over the pool. The proxy keeps it to abort or resume. */
export class UpstreamExchange {
  readonly target: UpstreamTarget;
  readonly request: UpstreamRequest;
  private readonly handler: UpstreamResponseHandler;
  origin: OriginPool | undefined = undefined;
  connection: UpstreamConnection | undefined = undefined;
  reused = false;
  retried = false;
  requestSent = false;
  private finished = false;
  private waitingForDrain: (() => void) | undefined = undefined;

  constructor(target: UpstreamTarget, request: UpstreamRequest, handler: UpstreamResponseHandler) {
    this.target = target;
    this.request = request;
    this.handler = handler;
  }

  get method(): string {
    return this.request.method;
  }

  retryable(): boolean {
    const body = this.request.body;
    return (
      !this.retried &&
      !this.finished &&
      IDEMPOTENT_METHODS.has(this.request.method) &&
      (body === null || Buffer.isBuffer(body))
    );
  }

  /** Writes the request; a streamed body is pumped with backpressure. */
  write(socket: TLSSocket): void {
    const body = this.request.body;
    if (body === null) {
      const declared = this.request.headers['content-length'];
      const framing = declared === '0' ? 'content-length: 0\r\n' : '';
      socket.write(serializeRequestHead(this.target, this.request, framing), 'latin1');
      this.requestSent = true;
      return;
    }
    if (Buffer.isBuffer(body)) {
      const head = serializeRequestHead(this.target, this.request, `content-length: ${body.length}\r\n`);
      socket.cork();
      socket.write(head, 'latin1');
      if (body.length > 0) socket.write(body);
      socket.uncork();
      this.requestSent = true;
      return;
    }
    const declared = this.request.headers['content-length'];
    const length = typeof declared === 'string' && /^\d{1,15}$/.test(declared) ? Number(declared) : -1;
    const head = serializeRequestHead(
      this.target,
      this.request,
      length >= 0 ? `content-length: ${length}\r\n` : 'transfer-encoding: chunked\r\n',
    );
    socket.write(head, 'latin1');
    this.pump(socket, body, length).catch((error: Error) => {
      if (this.connection?.socket === socket) this.connection.abandon(error);
      else if (!this.finished) this.fail(error);
    });
  }

  private async pump(socket: TLSSocket, body: AsyncIterable<Buffer>, length: number): Promise<void> {
    let sent = 0;
    for await (const chunk of body) {
      if (this.finished || socket.destroyed || this.connection?.socket !== socket) return;
      // An empty chunk frame is the chunked terminator: the rest would read as another request.
      if (chunk.length === 0) continue;
      sent += chunk.length;
      if (length >= 0 && sent > length)
        throw new TokenizerError('UPSTREAM_FAILED', 'request body longer than its content-length', 502);
      const ok = length >= 0 ? socket.write(chunk) : socket.write(chunkFrame(chunk));
      if (!ok)
        await new Promise<void>((resolve) => {
          this.waitingForDrain = resolve;
        });
    }
    if (this.finished || this.connection?.socket !== socket) return;
    if (length >= 0 && sent !== length)
      throw new TokenizerError('UPSTREAM_FAILED', 'request body shorter than its content-length', 502);
    if (length < 0) socket.write('0\r\n\r\n', 'latin1');
    this.requestSent = true;
  }

  /** @internal */
  drained(): void {
    const resolve = this.waitingForDrain;
    this.waitingForDrain = undefined;
    resolve?.();
  }

  /** @internal */
  headers(head: ResponseHead): void {
    if (this.finished) return;
    try {
      this.handler.onHeaders(head.status, head.headers, head.bodyLength);
    } catch (error) {
      this.connection?.abandon(error as Error);
    }
  }

  /** @internal */
  data(chunk: Buffer): boolean {
    if (this.finished) return true;
    return this.handler.onData(chunk);
  }

  /** @internal */
  complete(): void {
    if (this.finished) return;
    this.finished = true;
    this.drained();
    this.handler.onComplete();
  }

  /** @internal */
  fail(error: Error): void {
    if (this.finished) return;
    this.finished = true;
    this.drained();
    this.handler.onError(error);
  }

  /** Resumes reading the response after onData returned false. */
  resume(): void {
    this.connection?.resume();
  }

  /** The client went away: drop the exchange without telling the handler. */
  abort(): void {
    if (this.finished) return;
    this.finished = true;
    this.drained();
    if (this.connection) this.connection.detach(this);
    else this.origin?.dequeue(this);
  }
}

function chunkFrame(chunk: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`, 'latin1'), chunk, CRLF]);
}

const CRLF = Buffer.from('\r\n', 'latin1');
