import { UpstreamDeniedError } from './address-policy.js';
import type { AuditEntry } from './audit-log.js';
import { type ClientResponse, EMPTY_BODY, UNKNOWN_LENGTH } from './client-connection.js';
import { TokenizerError } from './errors.js';
import { HeaderNameSet } from './header-name-set.js';
import { NO_BODY } from './http-messages.js';
import type { ResponseProcessor } from './processors.js';
import type { UpstreamExchange, UpstreamResponseHandler } from './upstream-pool.js';

// Hop-by-hop headers of the upstream's response: the client connection writes its own framing.
const HOP_BY_HOP_RESPONSE_HEADERS = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
];
const RESPONSE_HEADERS_DROPPED = new HeaderNameSet(HOP_BY_HOP_RESPONSE_HEADERS);
const RESPONSE_HEADERS_DROPPED_WITH_LENGTH = new HeaderNameSet([
  ...HOP_BY_HOP_RESPONSE_HEADERS,
  'content-length',
]);

export const NO_PROCESSORS: ResponseProcessor[] = [];
const NO_HEADERS: string[] = [];

/** One proxied request's record: its audit entry and its upstream exchange once dispatched. */
export interface ProxyExchange {
  entry: AuditEntry;
  upstream: UpstreamExchange | undefined;
  upstreamDone: boolean;
  /** The request's span when telemetry is on. */
  span: unknown;
}

/** Answers a failed exchange (the request handler's error responses). */
export interface ExchangeErrorResponder {
  respondError(res: ClientResponse, error: unknown, entry: AuditEntry, hasBody: boolean): void;
  /** Counts an upstream failure that could only be answered by cutting the connection. */
  countUpstreamError(): void;
}

/**
 * Receives the upstream response and streams it to the client, or buffers it for the response
 * processors that asked for its status. A class, so a request allocates one small object
 * instead of a closure per callback.
 */
export class UpstreamResponseRelay implements UpstreamResponseHandler {
  readonly res: ClientResponse;
  readonly exchange: ProxyExchange;
  readonly responseProcessors: ResponseProcessor[];
  readonly hasBody: boolean;
  readonly responder: ExchangeErrorResponder;
  buffered: Buffer[] | undefined = undefined;
  bufferedProcessors: ResponseProcessor[] = NO_PROCESSORS;
  responseStatus = 0;
  responseHeaders: string[] = NO_HEADERS;

  constructor(
    res: ClientResponse,
    exchange: ProxyExchange,
    responseProcessors: ResponseProcessor[],
    hasBody: boolean,
    responder: ExchangeErrorResponder,
  ) {
    this.res = res;
    this.exchange = exchange;
    this.responseProcessors = responseProcessors;
    this.hasBody = hasBody;
    this.responder = responder;
  }

  onHeaders(statusCode: number, rawHeaders: string[], bodyLength: number): void {
    this.responseStatus = statusCode;
    // Without a body (HEAD, 204, 304) the upstream's content-length is kept as it came;
    // otherwise the client connection writes its own framing headers.
    const keepLength = bodyLength === NO_BODY;
    const dropped = keepLength ? RESPONSE_HEADERS_DROPPED : RESPONSE_HEADERS_DROPPED_WITH_LENGTH;
    const responseHeaders: string[] = [];
    for (let index = 0; index < rawHeaders.length; index += 2) {
      const name = rawHeaders[index] as string;
      if (dropped.hasIgnoringCase(name)) continue;
      responseHeaders.push(name, rawHeaders[index + 1] as string);
    }
    this.responseHeaders = responseHeaders;
    if (this.responseProcessors.length > 0) {
      this.bufferedProcessors = this.responseProcessors.filter(
        (processor) => processor.statusCode === statusCode,
      );
      if (this.bufferedProcessors.length > 0) {
        this.buffered = [];
        return;
      }
    }
    const entry = this.exchange.entry;
    entry.status = statusCode;
    entry.decision = 'forwarded';
    this.res.writeHead(
      statusCode,
      responseHeaders,
      bodyLength >= 0 ? bodyLength : bodyLength === NO_BODY ? EMPTY_BODY : UNKNOWN_LENGTH,
    );
  }

  onData(chunk: Buffer): boolean {
    if (this.buffered) {
      this.buffered.push(chunk);
      return true;
    }
    if (this.res.write(chunk)) return true;
    const upstream = this.exchange.upstream;
    this.res.onDrain = () => {
      this.res.onDrain = undefined;
      upstream?.resume();
    };
    return false;
  }

  onComplete(): void {
    const { res, exchange } = this;
    const entry = exchange.entry;
    exchange.upstreamDone = true;
    if (this.buffered) {
      let body: Buffer = Buffer.concat(this.buffered);
      try {
        for (const processor of this.bufferedProcessors) body = processor.process(body);
      } catch (error) {
        this.responder.respondError(res, error, entry, false);
        return;
      }
      const responseHeaders = this.responseHeaders;
      const headers: string[] = [];
      for (let index = 0; index < responseHeaders.length; index += 2) {
        const name = (responseHeaders[index] as string).toLowerCase();
        if (name === 'content-encoding' || name === 'content-type' || name === 'content-length') continue;
        headers.push(responseHeaders[index] as string, responseHeaders[index + 1] as string);
      }
      headers.push('content-type', 'application/json');
      entry.status = this.responseStatus;
      entry.decision = 'forwarded';
      res.writeHead(this.responseStatus, headers, body.length);
      res.end(body);
      return;
    }
    res.end();
  }

  onError(error: Error): void {
    const res = this.res;
    this.exchange.upstreamDone = true;
    if (!res.destroyed && (!res.headersSent || res.discardUnsentHead())) {
      this.responder.respondError(res, unwrapUpstreamError(error), this.exchange.entry, this.hasBody);
      return;
    }
    this.responder.countUpstreamError();
    res.destroy();
  }
}

/** The refusal or tokenizer error behind a transport error (a denied lookup surfaces wrapped). */
function unwrapUpstreamError(error: Error): unknown {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current; depth++) {
    if (current instanceof UpstreamDeniedError || current instanceof TokenizerError) return current;
    current = (current as { cause?: unknown }).cause;
  }
  return error;
}
