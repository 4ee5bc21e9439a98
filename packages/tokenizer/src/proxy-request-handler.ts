import { UpstreamDeniedError } from './address-policy.js';
import { type AuditEntry, type AuditSink, isoTime } from './audit-log.js';
import type { ClientConnectionOptions, ClientRequest, ClientResponse } from './client-connection.js';
import { TokenizerError } from './errors.js';
import { ProcessorRuntimeError } from './header-rules.js';
import type { HttpMessageError } from './http-messages.js';
import type { ProxyMetrics } from './metrics.js';
import { BodyTooLargeError } from './outgoing-request.js';
import {
  connectionMemory,
  type PreparedRequest,
  type RequestPreparer,
  scanHeaders,
} from './request-preparation.js';
import {
  checkRequestForm,
  isDeniedAddressLiteral,
  PlainTextRequestError,
  type RequestTarget,
  resolveRequestTarget,
} from './request-target.js';
import type { RequestTelemetry } from './telemetry.js';
import type { UpstreamPool } from './upstream-pool.js';
import {
  type ExchangeErrorResponder,
  NO_PROCESSORS,
  type ProxyExchange,
  UpstreamResponseRelay,
} from './upstream-response-relay.js';

export type OperationalLog = (
  level: 'info' | 'warn' | 'error',
  message: string,
  fields?: Record<string, unknown>,
) => void;

export interface ProxyRequestHandlerOptions {
  preparer: RequestPreparer;
  pool: UpstreamPool;
  metrics: ProxyMetrics;
  audit: AuditSink | undefined;
  log: OperationalLog;
  /** Log refusal details (never secret values). */
  debug: boolean;
  allowPrivateUpstreams: boolean;
  maxHeaderBytes: number;
  maxBodyBytes: number;
  /** The proxy's own names (lowercase): origin-form requests are accepted only with some. */
  ownHostnames: ReadonlySet<string>;
}

/**
 * One request from the client connection to the upstream and back: target, preparation,
 * dispatch, error answers, and the bookkeeping (audit line, metrics, requests in flight).
 * It is the client connections' options object, so no closure sits between them.
 */
export class ProxyRequestHandler implements ClientConnectionOptions, ExchangeErrorResponder {
  readonly maxHeaderBytes: number;
  /** Requests whose response has not closed yet. */
  inFlight = 0;
  /** Spans and OpenTelemetry metrics; set once the SDK is loaded, undefined when telemetry is off. */
  telemetry: RequestTelemetry | undefined = undefined;
  private readonly preparer: RequestPreparer;
  private readonly pool: UpstreamPool;
  private readonly metrics: ProxyMetrics;
  private readonly audit: AuditSink | undefined;
  private readonly log: OperationalLog;
  private readonly debug: boolean;
  private readonly allowPrivateUpstreams: boolean;
  private readonly maxBodyBytes: number;
  private readonly ownHostnames: ReadonlySet<string>;
  private drained: (() => void) | undefined = undefined;

  constructor(options: ProxyRequestHandlerOptions) {
    this.maxHeaderBytes = options.maxHeaderBytes;
    this.preparer = options.preparer;
    this.pool = options.pool;
    this.metrics = options.metrics;
    this.audit = options.audit;
    this.log = options.log;
    this.debug = options.debug;
    this.allowPrivateUpstreams = options.allowPrivateUpstreams;
    this.maxBodyBytes = options.maxBodyBytes;
    this.ownHostnames = options.ownHostnames;
  }

  onRequest(req: ClientRequest, res: ClientResponse): void {
    const started = performance.now();
    const metrics = this.metrics;
    this.inFlight++;
    metrics.inFlight = this.inFlight;
    const scanned = scanHeaders(req.headers);
    const entry: AuditEntry = {
      time: '',
      credentials: [],
      method: req.method,
      host: '',
      path: '',
      status: 0,
      durationMs: 0,
      decision: 'denied',
    };
    const telemetry = this.telemetry;
    const exchange: ProxyExchange = {
      entry,
      upstream: undefined,
      upstreamDone: false,
      // Before preparation: the span's traceparent replaces the caller's in the forwarded headers.
      span: telemetry === undefined ? undefined : telemetry.startRequest(scanned.headers, req.method),
    };
    // One callback does the bookkeeping: audit + metrics, in-flight count, upstream abort.
    res.onClose = (completed) => {
      this.inFlight--;
      metrics.inFlight = this.inFlight;
      if (!exchange.upstreamDone) exchange.upstream?.abort();
      if (!completed) {
        entry.decision = 'error';
        entry.error ??= 'CLIENT_CLOSED';
        entry.status ||= 499;
      }
      this.finish(entry, started, exchange.span);
      if (this.inFlight === 0 && this.drained) this.drained();
    };
    const hasBody = req.body !== undefined;
    try {
      if (req.method === 'CONNECT') entry.host = req.url;
      checkRequestForm(req.method, req.minorVersion, scanned.host);
      if (req.contentLength > this.maxBodyBytes) throw new BodyTooLargeError(this.maxBodyBytes);
      const target = resolveRequestTarget(
        req.url,
        scanned.host,
        this.ownHostnames,
        connectionMemory(req.connection).authority,
      );
      entry.host = target.authority;
      const queryIndex = target.path.indexOf('?');
      entry.path = queryIndex < 0 ? target.path : target.path.slice(0, queryIndex);
      const prepared = this.preparer.prepare(req, scanned, target, entry, hasBody);
      if (prepared instanceof Promise) {
        prepared
          .then((request) => this.forward(res, request, target, exchange, hasBody))
          .catch((error) => this.respondError(res, error, entry, hasBody));
      } else this.forward(res, prepared, target, exchange, hasBody);
    } catch (error) {
      this.respondError(res, error, entry, hasBody || req.method === 'CONNECT');
    }
  }

  onMalformed(error: HttpMessageError, request: { method: string; target: string } | undefined): void {
    this.metrics.recordRequest(error.status, 'denied', 0);
    this.telemetry?.recordMalformed(error.status);
    if (this.audit) {
      const queryIndex = request?.target.indexOf('?') ?? -1;
      this.audit({
        time: new Date().toISOString(),
        credentials: [],
        method: request?.method.slice(0, 32) ?? '',
        host: '',
        path: (queryIndex < 0 ? (request?.target ?? '') : (request?.target ?? '').slice(0, queryIndex)).slice(
          0,
          256,
        ),
        status: error.status,
        durationMs: 0,
        decision: 'denied',
        error: error.code,
      });
    }
    if (this.debug)
      this.log('warn', 'request refused', { status: error.status, error: error.code, detail: error.message });
  }

  respondError(res: ClientResponse, error: unknown, entry: AuditEntry, hasBody: boolean): void {
    let status = 502;
    let body = 'internal proxy error';
    let plainText = false;
    if (error instanceof TokenizerError) {
      status = error.status;
      body = error.message;
      entry.error = error.code;
      if (error instanceof ProcessorRuntimeError) entry.detail = error.detail;
      plainText = error instanceof PlainTextRequestError;
    } else if (error instanceof UpstreamDeniedError) {
      status = 400;
      body = error.message;
      entry.error = 'UPSTREAM_DENIED';
    } else {
      this.metrics.upstreamErrors++;
      entry.error = 'UPSTREAM_FAILED';
      body = upstreamErrorText(error);
    }
    entry.status = status;
    entry.decision = status >= 500 ? 'error' : 'denied';
    if (this.debug)
      this.log('warn', 'request refused', { status, error: entry.error, detail: entry.detail ?? body });
    // A head still in memory is replaced by the error; once bytes went out, only a cut is honest.
    if (res.headersSent && !res.discardUnsentHead()) {
      res.destroy();
      return;
    }
    const text = Buffer.from(plainText ? `${body}\n` : body);
    const headers = ['content-type', 'text/plain; charset=utf-8'];
    if (plainText) headers.push('x-content-type-options', 'nosniff');
    // An unread request body would desynchronise a kept-alive connection.
    res.writeHead(status, headers, text.length, hasBody);
    res.end(text);
  }

  countUpstreamError(): void {
    this.metrics.upstreamErrors++;
  }

  /** Resolves once no request is in flight, or after `timeoutMs`. */
  async settle(timeoutMs: number): Promise<void> {
    if (this.inFlight === 0) return;
    await Promise.race([
      new Promise<void>((resolve) => {
        this.drained = resolve;
      }),
      new Promise<void>((resolve) => setTimeout(resolve, timeoutMs).unref()),
    ]);
  }

  private forward(
    res: ClientResponse,
    request: PreparedRequest,
    target: RequestTarget,
    exchange: ProxyExchange,
    hasBody: boolean,
  ): void {
    // The client left while an asynchronous processor ran: nothing to send upstream for.
    if (res.destroyed) return;
    if (!this.allowPrivateUpstreams && isDeniedAddressLiteral(target)) {
      this.respondError(res, new UpstreamDeniedError(target.hostname), exchange.entry, hasBody);
      return;
    }
    const relay = new UpstreamResponseRelay(
      res,
      exchange,
      request.responseProcessors ?? NO_PROCESSORS,
      hasBody,
      this,
    );
    exchange.upstream = this.pool.dispatch(
      {
        hostname: target.hostname,
        port: target.dialPort,
        hostHeader: target.hostHeader,
        // Upstream connections are never shared between different credentials (upstream-pool.ts).
        partition: partitionOf(exchange.entry.credentials),
      },
      {
        method: request.method,
        path: request.path,
        headers: request.headers,
        body: request.body.dispatchBody() as Buffer | AsyncIterable<Buffer> | null,
      },
      relay,
    );
  }

  private finish(entry: AuditEntry, started: number, span: unknown): void {
    const seconds = (performance.now() - started) / 1000;
    this.metrics.recordRequest(entry.status, entry.decision, seconds);
    if (this.telemetry !== undefined) this.telemetry.endRequest(span, entry, seconds);
    entry.durationMs = Math.round(seconds * 100_000) / 100;
    if (this.audit) {
      entry.time = isoTime(Date.now() - seconds * 1000);
      this.audit(entry);
    }
  }
}

/** The credentials' fingerprints joined by commas (one credential: its fingerprint, no new string). */
function partitionOf(credentials: readonly string[]): string {
  return credentials.length === 1 ? (credentials[0] as string) : credentials.join(',');
}

function upstreamErrorText(error: unknown): string {
  if (!(error instanceof Error)) return 'upstream request failed';
  const code = (error as NodeJS.ErrnoException).code;
  return `upstream request failed: ${error.message}${code && !error.message.includes(code) ? ` (${code})` : ''}`;
}
