import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import {
  CHUNKED_BODY,
  ChunkedDecoder,
  findHeadEnd,
  HttpMessageError,
  NO_BODY,
  parseRequestHead,
  type RequestHead,
} from './http-messages.js';

// The proxy's side of one client connection: reads requests off the socket with the strict
// parser in http-messages.ts and writes responses, one request at a time. It replaces
// node:http's server, whose per-request objects cost more CPU than the whole proxying work.

/** Response body framing passed to `writeHead`: a byte count, or one of these. */
export const UNKNOWN_LENGTH = -1;
export const EMPTY_BODY = -2;

export interface ClientConnectionOptions {
  maxHeaderBytes: number;
  /** Largest head plus pipelined bytes held while a response is in flight. */
  onRequest(request: ClientRequest, response: ClientResponse): void;
  /** A request that could not be parsed (the connection answers and closes itself). */
  onMalformed(error: HttpMessageError, request: { method: string; target: string } | undefined): void;
}

/** The request body as a stream; reading it sends `100 Continue` when the client asked for it. */
export class RequestBody extends Readable {
  private readonly connection: ClientConnection;

  constructor(connection: ClientConnection) {
    super({ highWaterMark: 64 * 1024 });
    this.connection = connection;
    // A malformed body or a client leaving mid-body destroys the stream with an error, maybe
    // before anyone reads it (upstream still connecting): readers still get the error, but an
    // unobserved 'error' event must not crash the process.
    this.on('error', () => {});
  }

  override _read(): void {
    this.connection.bodyWanted();
  }
}

export class ClientRequest {
  readonly method: string;
  /** The request target exactly as sent (absolute-form for proxied requests). */
  readonly url: string;
  readonly minorVersion: number;
  /** Lowercase names and values: [name, value, …]. */
  readonly headers: string[];
  /** The body stream, when the request has one. */
  readonly body: RequestBody | undefined;
  /** Declared body length, or -1 when chunked. */
  readonly contentLength: number;
  /** The connection the request came on. */
  readonly connection: ClientConnection;

  constructor(head: RequestHead, body: RequestBody | undefined, connection: ClientConnection) {
    this.connection = connection;
    this.method = head.method;
    this.url = head.target;
    this.minorVersion = head.minorVersion;
    this.headers = head.headers;
    this.body = body;
    this.contentLength = head.bodyLength === CHUNKED_BODY ? -1 : Math.max(head.bodyLength, 0);
  }
}

export class ClientResponse {
  private readonly connection: ClientConnection;
  readonly request: ClientRequest;
  /** Status line and headers not written yet: they go out with the first body bytes. */
  private pendingHead: string | undefined = undefined;
  private chunked = false;
  private bodyAllowed = true;
  private declaredLength = -1;
  private written = 0;
  headersSent = false;
  finished = false;
  /** True once the client socket is gone. */
  destroyed = false;
  /** Called once: `true` when the response was completely written, `false` when the client went away first. */
  onClose: ((completed: boolean) => void) | undefined = undefined;
  /** Called when the client socket drains after `write` returned false. */
  onDrain: (() => void) | undefined = undefined;

  constructor(connection: ClientConnection, request: ClientRequest) {
    this.connection = connection;
    this.request = request;
  }

  /**
   * Starts the response. `headers` are [name, value, …] without framing headers; `bodyLength`
   * is the exact body size, UNKNOWN_LENGTH (chunked, or close-delimited for HTTP/1.0 clients), or
   * EMPTY_BODY (HEAD, 204, 304: headers are sent as given, no body may follow).
   */
  writeHead(status: number, headers: readonly string[], bodyLength: number, close = false): void {
    if (this.headersSent) throw new Error('response head already written');
    this.headersSent = true;
    const connection = this.connection;
    if (connection.closing) {
      this.destroyed = true;
      return;
    }
    if (close) connection.keepAlive = false;
    let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n`;
    for (let index = 0; index < headers.length; index += 2) {
      // A 204 must not carry content-length (RFC 9110 §8.6): a lenient client would read that
      // many bytes of the next response as this one's body.
      if (status === 204 && (headers[index] as string).toLowerCase() === 'content-length') continue;
      head += `${headers[index]}: ${headers[index + 1]}\r\n`;
    }
    if (this.request.method === 'HEAD') {
      // The head describes the body a GET would get; none follows.
      if (bodyLength >= 0) head += `content-length: ${bodyLength}\r\n`;
      this.bodyAllowed = false;
    } else if (bodyLength >= 0) {
      this.declaredLength = bodyLength;
      head += `content-length: ${bodyLength}\r\n`;
    } else if (bodyLength === EMPTY_BODY) {
      this.bodyAllowed = false;
    } else if (this.request.minorVersion === 1) {
      this.chunked = true;
      head += 'transfer-encoding: chunked\r\n';
    } else {
      // An HTTP/1.0 client knows the body ended when the connection closes.
      connection.keepAlive = false;
    }
    if (!connection.keepAlive) head += 'connection: close\r\n';
    else if (this.request.minorVersion === 0) head += 'connection: keep-alive\r\n';
    this.pendingHead = `${head}\r\n`;
  }

  /**
   * Takes back a head that has not reached the socket yet (no body byte written), so that an
   * error answer can replace it. False once anything was sent: then only destroy() is left.
   */
  discardUnsentHead(): boolean {
    if (!this.headersSent || this.pendingHead === undefined || this.written > 0) return false;
    this.pendingHead = undefined;
    this.headersSent = false;
    this.chunked = false;
    this.bodyAllowed = true;
    this.declaredLength = -1;
    return true;
  }

  /** Writes body bytes; false means the client is slow (wait for onDrain). */
  write(chunk: Buffer): boolean {
    if (this.destroyed || this.connection.closing) return false;
    if (chunk.length === 0 || !this.bodyAllowed) return true;
    this.written += chunk.length;
    if (this.declaredLength >= 0 && this.written > this.declaredLength) {
      // More bytes than announced would corrupt the next response on this connection.
      this.destroy();
      return false;
    }
    const socket = this.connection.socket;
    const head = this.takeHead();
    if (this.chunked) {
      const prefix = `${head ?? ''}${chunk.length.toString(16)}\r\n`;
      if (chunk.length <= 1024) return socket.write(`${prefix}${chunk.toString('latin1')}\r\n`, 'latin1');
      socket.cork();
      socket.write(prefix, 'latin1');
      socket.write(chunk);
      const result = socket.write('\r\n', 'latin1');
      socket.uncork();
      return result;
    }
    if (head === undefined) return socket.write(chunk);
    // One write (one syscall) for head and a small body.
    if (chunk.length <= 1024) return socket.write(`${head}${chunk.toString('latin1')}`, 'latin1');
    socket.cork();
    socket.write(head, 'latin1');
    const result = socket.write(chunk);
    socket.uncork();
    return result;
  }

  end(chunk?: Buffer): void {
    if (this.finished || this.destroyed || this.connection.closing) return;
    if (chunk && chunk.length > 0) {
      this.connection.socket.cork();
      this.write(chunk);
      this.endWrites();
      this.connection.socket.uncork();
      return;
    }
    this.endWrites();
  }

  private endWrites(): void {
    if (this.destroyed) return;
    if (this.declaredLength >= 0 && this.written !== this.declaredLength) {
      this.destroy();
      return;
    }
    const head = this.takeHead();
    const tail = this.chunked ? '0\r\n\r\n' : '';
    if (head !== undefined || tail !== '') this.connection.socket.write(`${head ?? ''}${tail}`, 'latin1');
    this.finished = true;
    this.connection.responseFinished(this);
  }

  /** Cuts the connection (the client sees a truncated response or a reset). */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    const socket = this.connection.socket;
    // A close-delimited body (HTTP/1.0 client) ending in a FIN looks complete: reset instead
    // (best effort: bytes the client has not read yet still end in a plain EOF on Linux).
    if (
      this.headersSent &&
      this.bodyAllowed &&
      !this.chunked &&
      this.declaredLength < 0 &&
      !socket.destroyed
    ) {
      try {
        socket.resetAndDestroy();
        return;
      } catch {
        // Not a TCP handle: a plain close is all that is left.
      }
    }
    socket.destroy();
  }

  private takeHead(): string | undefined {
    const head = this.pendingHead;
    if (head !== undefined) this.pendingHead = undefined;
    return head;
  }

  /** @internal */
  closed(completed: boolean): void {
    this.destroyed = !completed;
    const onClose = this.onClose;
    this.onClose = undefined;
    onClose?.(completed);
  }
}

enum State {
  /** Waiting for (the rest of) a request head. */
  Head,
  /** Reading a request body while the response may already be on its way. */
  Body,
  /** Request complete, response in flight: further bytes are buffered (pipelining). */
  Waiting,
  Closed,
}

/** The coarse clock the connection sweeper runs on (milliseconds). */
export const coarseClock = { now: Date.now() };

export class ClientConnection {
  readonly socket: Socket;
  private readonly options: ClientConnectionOptions;
  private state = State.Head;
  private pending: Buffer | undefined = undefined;
  private searchFrom = 0;
  private body: RequestBody | undefined = undefined;
  private bodyRemaining = 0;
  private decoder: ChunkedDecoder | undefined = undefined;
  private bodyPaused = false;
  private expectContinue = false;
  private response: ClientResponse | undefined = undefined;
  keepAlive = true;
  /** When the current partial head started (coarse clock), 0 when no head is pending. */
  headStartedAt = 0;
  lastActiveAt = coarseClock.now;
  /** When the proxy decided to close (coarse clock); 0 while the connection is open. */
  closingSince = 0;
  /** What the request handler keeps from one request of this connection to the next. */
  handlerState: unknown = undefined;

  constructor(socket: Socket, options: ClientConnectionOptions) {
    this.socket = socket;
    this.options = options;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.response?.onDrain?.());
    socket.on('error', () => {});
    socket.on('close', () => this.onClose());
  }

  /** True between requests: nothing read of the next request and no response in flight. */
  get idle(): boolean {
    return (
      this.state === State.Head &&
      this.pending === undefined &&
      this.headStartedAt === 0 &&
      this.response === undefined
    );
  }

  get inFlight(): boolean {
    return this.response !== undefined;
  }

  /** A request head has begun (empty lines before it count: trickling them is no way to stay idle). */
  get partialHead(): boolean {
    return this.state === State.Head && this.headStartedAt !== 0;
  }

  /** True once the connection will not take another request (closing or closed). */
  get closing(): boolean {
    return this.state === State.Closed;
  }

  private onData(chunk: Buffer): void {
    this.lastActiveAt = coarseClock.now;
    try {
      switch (this.state) {
        case State.Head:
          this.readHead(chunk);
          break;
        case State.Body:
          this.readBody(chunk, 0);
          break;
        case State.Waiting:
          this.pending = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
          // A client that keeps sending without reading responses is paused, not buffered.
          if (this.pending.length > this.options.maxHeaderBytes) this.socket.pause();
          break;
        case State.Closed:
          break;
      }
    } catch (error) {
      this.fail(error);
    }
  }

  private readHead(chunk: Buffer | undefined): void {
    let buffer: Buffer;
    if (chunk === undefined) buffer = this.pending as Buffer;
    else if (this.pending === undefined) buffer = chunk;
    else buffer = Buffer.concat([this.pending, chunk]);
    // Empty lines before a request line are ignored (RFC 9112 §2.2).
    let start = 0;
    while (start + 1 < buffer.length && buffer[start] === 13 && buffer[start + 1] === 10) start += 2;
    const end = findHeadEnd(buffer, Math.max(start, this.searchFrom));
    const maxHeaderBytes = this.options.maxHeaderBytes;
    if (end < 0) {
      if (buffer.length - start > maxHeaderBytes) throw headTooLarge();
      // Exact (the coarse clock may be a sweep old): a timeout must never start before the
      // event it times, or the connection is cut early.
      if (this.headStartedAt === 0) this.headStartedAt = coarseClock.now = Date.now();
      if (start === buffer.length) {
        this.pending = undefined;
        return;
      }
      this.pending = start === 0 ? buffer : buffer.subarray(start);
      this.searchFrom = Math.max(0, this.pending.length - 3);
      return;
    }
    if (end + 4 - start > maxHeaderBytes) throw headTooLarge();
    this.pending = undefined;
    this.searchFrom = 0;
    this.headStartedAt = 0;
    const text = buffer.toString('latin1', start, end);
    let head: RequestHead;
    try {
      head = parseRequestHead(text);
    } catch (error) {
      const line = text.slice(0, text.indexOf('\r\n') >>> 0);
      const [method = '', target = ''] = line.split(' ');
      this.fail(error, { method, target });
      return;
    }
    const rest = end + 4;
    if (!head.keepAlive) this.keepAlive = false;
    let body: RequestBody | undefined;
    if (head.bodyLength !== NO_BODY) {
      body = new RequestBody(this);
      this.body = body;
      this.expectContinue = head.expectContinue;
      if (head.bodyLength === CHUNKED_BODY) this.decoder = new ChunkedDecoder('request');
      else this.bodyRemaining = head.bodyLength;
      this.state = State.Body;
    } else {
      this.state = State.Waiting;
    }
    // Bytes after a body-less request belong to the next (pipelined) request.
    if (body === undefined && rest < buffer.length) this.pending = buffer.subarray(rest);
    const request = new ClientRequest(head, body, this);
    const response = new ClientResponse(this, request);
    this.response = response;
    this.options.onRequest(request, response);
    if (body !== undefined && this.state === State.Body && rest < buffer.length) this.readBody(buffer, rest);
  }

  private readBody(buffer: Buffer, start: number): void {
    const body = this.body as RequestBody;
    let next: number;
    if (this.decoder) {
      next = this.decoder.decode(buffer, start, (data) => this.pushBody(body, data));
      if (!this.decoder.done) return;
    } else {
      next = Math.min(buffer.length, start + this.bodyRemaining);
      if (next > start) this.pushBody(body, buffer.subarray(start, next));
      this.bodyRemaining -= next - start;
      if (this.bodyRemaining > 0) return;
    }
    this.endBody(body);
    if (next < buffer.length && this.state === State.Waiting) this.pending = buffer.subarray(next);
  }

  private pushBody(body: RequestBody, data: Buffer): void {
    if (!body.push(data) && !this.bodyPaused) {
      this.bodyPaused = true;
      this.socket.pause();
    }
  }

  private endBody(body: RequestBody): void {
    body.push(null);
    this.body = undefined;
    this.decoder = undefined;
    this.expectContinue = false;
    // An ended stream never asks for more: a pause for its backpressure would stall the
    // connection for good (the next request would never be read).
    if (this.bodyPaused) {
      this.bodyPaused = false;
      this.socket.resume();
    }
    // A response that finished before the body ended closed the connection already.
    if (this.state === State.Body) this.state = State.Waiting;
  }

  /** @internal The body stream wants data. */
  bodyWanted(): void {
    if (this.expectContinue) {
      this.expectContinue = false;
      if (!this.response?.headersSent) this.socket.write('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');
    }
    if (this.bodyPaused) {
      this.bodyPaused = false;
      this.socket.resume();
    }
  }

  /** @internal */
  responseFinished(response: ClientResponse): void {
    if (this.response !== response) return;
    this.response = undefined;
    response.closed(true);
    // The keep-alive timeout runs from here: exact, for the same reason as headStartedAt.
    this.lastActiveAt = coarseClock.now = Date.now();
    // An unread body would be parsed as the next request: close instead.
    if (!this.keepAlive || this.state === State.Body) {
      this.state = State.Closed;
      this.closingSince = coarseClock.now;
      this.body?.destroy();
      this.socket.end();
      return;
    }
    this.state = State.Head;
    if (this.pending !== undefined) {
      this.socket.resume();
      // Pipelined bytes: parsed on the next turn so a long pipeline cannot grow the stack.
      setImmediate(() => {
        if (this.state === State.Head && this.pending !== undefined) {
          try {
            this.readHead(undefined);
          } catch (error) {
            this.fail(error);
          }
        }
      });
    }
  }

  /** Answers a malformed request (when nothing was sent yet) and closes the connection. */
  private fail(error: unknown, request?: { method: string; target: string }): void {
    if (this.state === State.Closed) return;
    const failure =
      error instanceof HttpMessageError
        ? error
        : new HttpMessageError('MALFORMED_REQUEST', `bad request: ${(error as Error).message}`);
    this.state = State.Closed;
    this.closingSince = coarseClock.now;
    this.options.onMalformed(failure, request);
    this.body?.destroy(failure);
    if (this.response?.headersSent) {
      this.socket.destroy();
      return;
    }
    const text = `${failure.message}\n`;
    this.socket.end(
      `HTTP/1.1 ${failure.status} ${STATUS_CODES[failure.status] ?? 'Bad Request'}\r\nconnection: close\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(text)}\r\n\r\n${text}`,
    );
  }

  /** Sends a bare status and closes (timeouts). */
  closeWith(status: number): void {
    if (this.state === State.Closed) return;
    this.state = State.Closed;
    this.closingSince = coarseClock.now;
    this.socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`,
    );
  }

  private onClose(): void {
    this.state = State.Closed;
    const body = this.body;
    this.body = undefined;
    if (body && !body.destroyed)
      body.destroy(new Error('client closed the connection during the request body'));
    const response = this.response;
    this.response = undefined;
    response?.closed(false);
  }
}

function headTooLarge(): HttpMessageError {
  return new HttpMessageError('REQUEST_HEAD_TOO_LARGE', 'request header fields too large', 431);
}
