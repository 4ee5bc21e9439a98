import { once } from 'node:events';
import type { Server as HttpServer } from 'node:http';
import type { AddressInfo, Server, Socket } from 'node:net';
import { createServer, isIP } from 'node:net';
import { createSecureContext, rootCertificates } from 'node:tls';
import { createGuardedLookup, isPrivateAddress, UpstreamDeniedError } from './address-policy.js';
import { createAdminServer } from './admin-server.js';
import { type AuditEntry, type AuditSink, createStdoutAuditSink } from './audit-log.js';
import {
  ClientConnection,
  type ClientRequest,
  type ClientResponse,
  coarseClock,
  EMPTY_BODY,
  UNKNOWN_LENGTH,
} from './client-connection.js';
import { BadRequestError, ConfigError, TokenizerError } from './errors.js';
import { type JsonValue, parseJsonTree } from './go-json.js';
import { type Params, PROXY_CONTROLLED_HEADERS, ProcessorRuntimeError } from './header-rules.js';
import { type HttpMessageError, NO_BODY } from './http-messages.js';
import { type MetricsSnapshot, ProxyMetrics } from './metrics.js';
import {
  BodyTooLargeError,
  OutgoingBody,
  type OutgoingHeaders,
  type OutgoingRequest,
} from './outgoing-request.js';
import { createProcessor, type RequestProcessor, type ResponseProcessor } from './processors.js';
import { authorize, ProxyCredentials } from './proxy-auth.js';
import { type OpenKey, toOpenKey } from './sealed-box.js';
import {
  mintedTokenKey,
  parseTokenDigest,
  type ResolvedSecret,
  SecretResolver,
  validateHost,
} from './secret-resolver.js';
import { type UpstreamExchange, UpstreamPool, type UpstreamResponseHandler } from './upstream-pool.js';

export interface TokenizerServerOptions {
  /** The X25519 open (private) key, hex or parsed. */
  openKey: string | OpenKey;
  /** Go-style listen address: `:8080`, `127.0.0.1:0`, `[::1]:8080`. Default `:8080`. */
  listenAddress?: string;
  /** Separate listener for `/health` and `/metrics`; none when unset. */
  adminListenAddress?: string;
  /** Request headers always removed before forwarding (FILTERED_HEADERS). */
  filteredHeaders?: readonly string[];
  /** The proxy's own names; enables origin-form ("transparent") requests (TOKENIZER_HOSTNAMES). */
  tokenizerHostnames?: readonly string[];
  /** Forward requests that carry no Proxy-Tokenizer header (OPEN_PROXY). */
  openProxy?: boolean;
  /** Log refusal details to the operational log (never secret values). */
  debug?: boolean;
  /** Allow private, loopback and link-local upstream addresses. Off by default. */
  allowPrivateUpstreams?: boolean;
  /** Extra PEM CA certificates trusted for upstream TLS, in addition to the system roots. */
  upstreamCa?: string | Buffer | ReadonlyArray<string | Buffer>;
  /** Largest request head accepted from clients. Default 64 KiB (sealed JWT keys are several KB). */
  maxHeaderBytes?: number;
  /** Largest request body forwarded. Default 32 MiB. */
  maxBodyBytes?: number;
  /**
   * Accept only these sealed tokens (hex SHA-256 of the token text, `sha256:` prefix allowed)
   * and the tokens the proxy mints in token exchanges. Default: any token sealed to the key,
   * as the reference does. With a list, a client that holds the public seal key cannot seal
   * its own token to make the proxy forward to hosts no issued credential allows.
   */
  allowedTokens?: readonly string[] | undefined;
  /** Opened secrets kept in memory. Default 10,000. */
  secretCacheSize?: number;
  /** Idle keep-alive time for client connections. Default 65 s. */
  keepAliveTimeoutMs?: number;
  /** Longest time a client may take to send a request head (slow-loris guard). Default 30 s. */
  headersTimeoutMs?: number;
  /** Kept-alive TLS connections per upstream origin; further requests queue. Default 64. */
  upstreamConnectionsPerOrigin?: number;
  /** Upstream connect timeout. Default 10 s. */
  upstreamConnectTimeoutMs?: number;
  /** Upstream response header / body inactivity timeout. Default 120 s. */
  upstreamTimeoutMs?: number;
  /** Where audit lines go; `false` disables them. Default: JSON lines on stdout. */
  auditLog?: AuditSink | false;
  /** Operational log (start-up, refusals in debug mode). Default: JSON lines on stderr. */
  log?: (level: 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>) => void;
  /** How long close() waits for in-flight requests before cutting them. Default 30 s. */
  shutdownTimeoutMs?: number;
}

export interface TokenizerServer {
  /** The proxy listener (plain TCP: the proxy speaks HTTP/1.1 itself, see client-connection.ts). */
  readonly server: Server;
  readonly adminServer: HttpServer | undefined;
  readonly metrics: ProxyMetrics;
  /** Counters including the secret cache, as plain data. */
  metricsSnapshot(): MetricsSnapshot;
  /** The seal key clients seal secrets with (lowercase hex). */
  readonly sealKey: string;
  /** Starts both listeners. */
  listen(): Promise<RunningTokenizerServer>;
  /** Stops accepting, drains in-flight requests, closes upstream connections. */
  close(): Promise<void>;
}

export interface RunningTokenizerServer {
  /** `http://host:port` of the proxy listener. */
  url: string;
  /** `http://host:port` of the admin listener, when configured. */
  adminUrl: string | undefined;
  sealKey: string;
  server: TokenizerServer;
  close(): Promise<void>;
}

const defaultLog: NonNullable<TokenizerServerOptions['log']> = (level, message, fields) => {
  process.stderr.write(
    `${JSON.stringify({ time: new Date().toISOString(), level, msg: message, ...fields })}\n`,
  );
};

// Never forwarded: hop-by-hop headers and the proxy's own headers (framing is re-done upstream).
const REQUEST_HEADERS_DROPPED = new Set([...PROXY_CONTROLLED_HEADERS, 'http2-settings']);
const RESPONSE_HEADERS_DROPPED = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
]);

interface Target {
  /** Authority as the client sent it: what validators check. */
  authority: string;
  /** Lowercase hostname without brackets: what is dialled and used for SNI. */
  hostname: string;
  dialPort: number;
  /** Host header sent upstream. */
  hostHeader: string;
  /** Port written in the authority (undefined when none). */
  authorityPort: number | undefined;
  path: string;
}

/** Parses `host[:port]` / `[v6]:port`; undefined when malformed. */
export function splitAuthority(
  authority: string,
): { hostname: string; port: number | undefined } | undefined {
  let hostname: string;
  let portText: string | undefined;
  if (authority.startsWith('[')) {
    const close = authority.indexOf(']');
    if (close < 0) return undefined;
    hostname = authority.slice(1, close);
    if (isIP(hostname) !== 6) return undefined;
    const rest = authority.slice(close + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) return undefined;
      portText = rest.slice(1);
    }
  } else {
    const colon = authority.indexOf(':');
    hostname = colon < 0 ? authority : authority.slice(0, colon);
    portText = colon < 0 ? undefined : authority.slice(colon + 1);
    if (!/^[A-Za-z0-9._-]+$/.test(hostname)) return undefined;
  }
  let port: number | undefined;
  if (portText !== undefined) {
    if (!/^\d{1,5}$/.test(portText)) return undefined;
    port = Number(portText);
    if (port < 1 || port > 65535) return undefined;
  }
  return { hostname: hostname.toLowerCase(), port };
}

const mustBeHttp = () => new BadRequestError('BAD_TARGET', 'bad request: proxied request must be HTTP');

/** §3.2: port 443 refused, 80 or none → TLS 443, any other port kept (TLS). */
function resolveTarget(authority: string, path: string): Target {
  const parts = splitAuthority(authority);
  if (!parts || parts.hostname === '') throw new BadRequestError('BAD_TARGET', 'bad request: bad host');
  if (parts.port === 443) throw mustBeHttp();
  const dialPort = parts.port === undefined || parts.port === 80 ? 443 : parts.port;
  const bracketed = isIP(parts.hostname) === 6 ? `[${parts.hostname}]` : parts.hostname;
  return {
    authority,
    hostname: parts.hostname,
    dialPort,
    hostHeader: dialPort === 443 ? bracketed : `${bracketed}:${dialPort}`,
    authorityPort: parts.port,
    path,
  };
}

function sameHost(hostHeader: string, target: Target): boolean {
  // The common case: the client repeats the authority verbatim.
  if (hostHeader === target.authority) return true;
  const parts = splitAuthority(hostHeader);
  if (!parts) return false;
  const port = parts.port ?? 80;
  const targetPort = target.authorityPort ?? 80;
  return parts.hostname === target.hostname && port === targetPort;
}

class TextError extends BadRequestError {
  // Transparent-mode refusals are written by Go's http.Error: text/plain, nosniff, trailing newline.
  readonly plainText = true;
}

function parseParams(text: string): Params {
  if (text === '') return {};
  let tree: JsonValue;
  try {
    tree = parseJsonTree(text);
  } catch (error) {
    throw new BadRequestError('BAD_PARAMS', `bad request: ${(error as Error).message}`);
  }
  if (tree.kind === 'null') return {};
  if (tree.kind !== 'object') {
    throw new BadRequestError(
      'BAD_PARAMS',
      `bad request: json: cannot unmarshal ${tree.kind} into Go value of type map[string]string`,
    );
  }
  const params: Record<string, string> = Object.create(null);
  for (const [key, value] of tree.entries) {
    if (value.kind === 'null') params[key] = '';
    else if (value.kind === 'string') params[key] = value.value;
    else
      throw new BadRequestError(
        'BAD_PARAMS',
        `bad request: json: cannot unmarshal ${value.kind} into Go value of type string`,
      );
  }
  return params;
}

export function parseListenAddress(address: string): { host: string | undefined; port: number } {
  const colon = address.lastIndexOf(':');
  if (colon < 0) throw new ConfigError(`bad listen address ${JSON.stringify(address)}: missing port`);
  let host = address.slice(0, colon);
  const portText = address.slice(colon + 1);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port > 65535) {
    throw new ConfigError(`bad listen address ${JSON.stringify(address)}: bad port`);
  }
  return { host: host === '' ? undefined : host, port };
}

function urlOf(server: Server | HttpServer): string {
  const address = server.address() as AddressInfo;
  let host = address.address;
  if (host === '::' || host === '0.0.0.0') host = '127.0.0.1';
  return `http://${isIP(host) === 6 ? `[${host}]` : host}:${address.port}`;
}

/** Builds the proxy (not yet listening). See startTokenizerServer for the one-call form. */
export function createTokenizerServer(options: TokenizerServerOptions): TokenizerServer {
  const openKey = toOpenKey(options.openKey);
  const sealKey = openKey.sealKeyHex;
  const log = options.log ?? defaultLog;
  const audit = options.auditLog === false ? undefined : (options.auditLog ?? createStdoutAuditSink());
  const filteredHeaders = (options.filteredHeaders ?? [])
    .map((name) => name.trim().toLowerCase())
    .filter(Boolean);
  const filteredSet = new Set(filteredHeaders);
  const hostnames = new Set(
    (options.tokenizerHostnames ?? []).map((name) => name.toLowerCase()).filter(Boolean),
  );
  const maxBodyBytes = options.maxBodyBytes ?? 32 * 1024 * 1024;
  const allowPrivate = options.allowPrivateUpstreams === true;
  const allowedTokens =
    options.allowedTokens === undefined ? undefined : parseAllowedTokens(options.allowedTokens);
  // Tokens minted in token exchanges are sealed to an unpublished key when the list is on.
  const mintKey = allowedTokens === undefined ? undefined : mintedTokenKey(openKey);
  const mintSealKey = mintKey?.sealKeyHex ?? sealKey;
  const resolver = new SecretResolver(openKey, options.secretCacheSize ?? 10_000, { allowedTokens, mintKey });
  const metrics = new ProxyMetrics();
  const extraCa =
    options.upstreamCa === undefined
      ? []
      : Array.isArray(options.upstreamCa)
        ? options.upstreamCa
        : [options.upstreamCa];
  const upstreamTimeout = options.upstreamTimeoutMs ?? 120_000;
  // One secure context for every upstream connection: building one per connection
  // re-parses the whole root store.
  const secureContext = createSecureContext(
    extraCa.length > 0 ? { ca: [...rootCertificates, ...extraCa.map(String)] } : {},
  );
  const pool = new UpstreamPool({
    secureContext,
    lookup: allowPrivate ? undefined : createGuardedLookup(),
    connectionsPerOrigin: options.upstreamConnectionsPerOrigin ?? 64,
    connectTimeoutMs: options.upstreamConnectTimeoutMs ?? 10_000,
    timeoutMs: upstreamTimeout,
    idleTimeoutMs: 30_000,
  });
  const connections = new Set<ClientConnection>();
  const keepAliveTimeoutMs = options.keepAliveTimeoutMs ?? 65_000;
  const headersTimeoutMs = options.headersTimeoutMs ?? 30_000;
  // As long to read a final answer as to send a head, at most 5 s.
  const closingGraceMs = Math.min(5_000, headersTimeoutMs);
  // Idle sockets are cut; a request in flight is bounded by the upstream's own timeouts.
  const activeTimeoutMs = upstreamTimeout + 5_000;
  let inFlight = 0;
  let drained: (() => void) | undefined;

  function finish(entry: AuditEntry, started: number): void {
    const seconds = (performance.now() - started) / 1000;
    metrics.recordRequest(entry.status, entry.decision, seconds);
    entry.durationMs = Math.round(seconds * 100_000) / 100;
    if (audit) {
      entry.time = new Date(Date.now() - seconds * 1000).toISOString();
      audit(entry);
    }
  }

  function respondError(res: ClientResponse, error: unknown, entry: AuditEntry, hasBody: boolean): void {
    let status = 502;
    let body = 'internal proxy error';
    let plainText = false;
    if (error instanceof TokenizerError) {
      status = error.status;
      body = error.message;
      entry.error = error.code;
      if (error instanceof ProcessorRuntimeError) entry.detail = error.detail;
      plainText = error instanceof TextError;
    } else if (error instanceof UpstreamDeniedError) {
      status = 400;
      body = error.message;
      entry.error = 'UPSTREAM_DENIED';
    } else {
      metrics.upstreamErrors++;
      entry.error = 'UPSTREAM_FAILED';
      body = upstreamErrorText(error);
    }
    entry.status = status;
    entry.decision = status >= 500 ? 'error' : 'denied';
    if (options.debug)
      log('warn', 'request refused', { status, error: entry.error, detail: entry.detail ?? body });
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

  function handle(req: ClientRequest, res: ClientResponse): void {
    const started = performance.now();
    inFlight++;
    metrics.inFlight = inFlight;
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
    const exchange: Exchange = { entry, upstream: undefined, upstreamDone: false };
    // One callback does the bookkeeping: audit + metrics, in-flight count, upstream abort.
    res.onClose = (completed) => {
      inFlight--;
      metrics.inFlight = inFlight;
      if (!exchange.upstreamDone) exchange.upstream?.abort();
      if (!completed) {
        entry.decision = 'error';
        entry.error ??= 'CLIENT_CLOSED';
        entry.status ||= 499;
      }
      finish(entry, started);
      if (inFlight === 0 && drained) drained();
    };
    const hasBody = req.body !== undefined;
    try {
      // CONNECT is refused on purpose: tunnels let the Host header and the dialled host diverge.
      if (req.method === 'CONNECT') {
        entry.host = req.url;
        throw new BadRequestError(
          'BAD_TARGET',
          'bad request: CONNECT is not supported; send absolute-form http:// requests',
        );
      }
      // RFC 9112 §3.2 (Go's server, the reference's, refuses these too).
      if (req.minorVersion === 1 && scanned.host === undefined)
        throw new BadRequestError('BAD_TARGET', 'bad request: missing Host header');
      if (req.contentLength > maxBodyBytes) throw new BodyTooLargeError(maxBodyBytes);
      const target = targetOf(req, scanned.host);
      entry.host = target.authority;
      const queryIndex = target.path.indexOf('?');
      entry.path = queryIndex < 0 ? target.path : target.path.slice(0, queryIndex);
      const prepared = prepare(req, scanned, target, entry, hasBody);
      if (prepared instanceof Promise) {
        prepared
          .then((request) => forward(res, request, target, exchange, hasBody))
          .catch((error) => respondError(res, error, entry, hasBody));
      } else forward(res, prepared, target, exchange, hasBody);
    } catch (error) {
      respondError(res, error, entry, hasBody || req.method === 'CONNECT');
    }
  }

  function targetOf(req: ClientRequest, hostHeader: string | undefined): Target {
    const url = req.url;
    const scheme = url.slice(0, 8).toLowerCase();
    if (scheme.startsWith('http://')) {
      const rest = url.slice(7);
      let end = rest.length;
      for (const stop of ['/', '?', '#']) {
        const index = rest.indexOf(stop);
        if (index >= 0 && index < end) end = index;
      }
      const authority = rest.slice(0, end);
      let path = rest.slice(end);
      const hash = path.indexOf('#');
      if (hash >= 0) path = path.slice(0, hash);
      if (!path.startsWith('/')) path = `/${path}`;
      if (authority.includes('@'))
        throw new BadRequestError('BAD_TARGET', 'bad request: userinfo in request target');
      const target = resolveTarget(authority, path);
      if (hostHeader !== undefined && !sameHost(hostHeader, target)) {
        throw new BadRequestError('BAD_TARGET', 'bad request: Host header does not match the request target');
      }
      return target;
    }
    // https:// would mean the client expects end-to-end TLS that we would silently drop.
    if (scheme === 'https://') throw mustBeHttp();
    if (!url.startsWith('/'))
      throw new BadRequestError('BAD_TARGET', 'bad request: unsupported request target');
    // Origin-form ("transparent") mode, only when the proxy knows its own names (§3.1).
    if (hostnames.size === 0) throw new TextError('BAD_TARGET', "I'm not that kind of server");
    const host = hostHeader ?? '';
    if (host === '') throw new TextError('BAD_TARGET', 'must specify host');
    const parts = splitAuthority(host);
    if (!parts) throw new TextError('BAD_TARGET', 'bad host');
    if (hostnames.has(parts.hostname)) throw new TextError('BAD_TARGET', 'circular request');
    return resolveTarget(host, url);
  }

  /** Everything before dialling: headers, secrets, auth, validators, processors (§3.5). */
  function prepare(
    req: ClientRequest,
    scanned: ScannedHeaders,
    target: Target,
    entry: AuditEntry,
    hasBody: boolean,
  ): OutgoingRequest | Promise<OutgoingRequest> {
    const { headers, tokenizerLines, authorizationLines } = scanned;
    headers.host = target.hostHeader;
    const request: OutgoingRequest = {
      method: req.method,
      path: target.path,
      host: target.authority,
      headers,
      body: new OutgoingBody(hasBody ? req.body : undefined, maxBodyBytes),
    };
    const credentials = new ProxyCredentials(authorizationLines);
    const queryIndex = target.path.indexOf('?');
    const access = {
      method: request.method,
      path: queryIndex < 0 ? target.path : target.path.slice(0, queryIndex),
      host: target.authority,
    };
    const processors: RequestProcessor[] = [];
    const responseProcessors: ResponseProcessor[] = [];
    for (const line of tokenizerLines) {
      const semicolon = line.indexOf(';');
      const token = (semicolon < 0 ? line : line.slice(0, semicolon)).trim();
      const paramsText = semicolon < 0 ? '' : line.slice(semicolon + 1).trim();
      if (token === '')
        throw new BadRequestError('BAD_TOKENIZER_HEADER', 'bad request: bad tokenizer header');
      const params = paramsText === '' ? NO_PARAMS : parseParams(paramsText);
      const resolution = resolver.resolve(token);
      entry.credentials.push(resolution.fingerprint);
      if (resolution.error) throw resolution.error;
      const resolved = resolution.resolved;
      authorize(resolved.secret.auth, resolved.bearerDigest, credentials, access);
      validateHost(resolved, target.authority);
      const processor = processorFor(resolved, paramsText, params);
      processors.push(processor);
      if (processor.responseProcessor) responseProcessors.push(processor.responseProcessor);
    }
    if (processors.length === 0 && !options.openProxy) throw new BadRequestError('NO_SECRETS', 'bad request');
    (request as PreparedRequest).responseProcessors = responseProcessors;
    for (let index = 0; index < processors.length; index++) {
      const result = (processors[index] as RequestProcessor).apply(request);
      if (result instanceof Promise) return applyRest(result, processors, index + 1, request);
    }
    return finishHeaders(request);
  }

  /** Processors are pure functions of (secret, params): reuse them per params text. */
  function processorFor(resolved: ResolvedSecret, paramsText: string, params: Params): RequestProcessor {
    const key = `processor:${paramsText}`;
    const cached = resolved.memo.get(key) as RequestProcessor | undefined;
    if (cached) return cached;
    const processor = createProcessor(resolved.secret.processor, params, {
      secret: resolved.secret,
      sealKey: mintSealKey,
      memo: resolved.memo,
      filteredHeaders,
    });
    if (resolved.memo.size < 64) resolved.memo.set(key, processor);
    return processor;
  }

  async function applyRest(
    pending: Promise<void>,
    processors: RequestProcessor[],
    next: number,
    request: OutgoingRequest,
  ): Promise<OutgoingRequest> {
    await pending;
    for (let index = next; index < processors.length; index++)
      await (processors[index] as RequestProcessor).apply(request);
    return finishHeaders(request);
  }

  function finishHeaders(request: OutgoingRequest): OutgoingRequest {
    // Filtered after the processors, so a dst naming a filtered header has no effect (§3.7).
    for (const name of filteredSet) delete request.headers[name];
    delete request.headers['proxy-authorization'];
    delete request.headers['proxy-tokenizer'];
    return request;
  }

  /**
   * Receives the upstream response and streams it to the client. A class, so a request
   * allocates one small object instead of a closure per callback.
   */
  class UpstreamHandler implements UpstreamResponseHandler {
    readonly res: ClientResponse;
    readonly exchange: Exchange;
    readonly responseProcessors: ResponseProcessor[];
    readonly hasBody: boolean;
    buffered: Buffer[] | undefined = undefined;
    bufferedProcessors: ResponseProcessor[] = NO_PROCESSORS;
    responseStatus = 0;
    responseHeaders: string[] = NO_HEADERS;

    constructor(
      res: ClientResponse,
      exchange: Exchange,
      responseProcessors: ResponseProcessor[],
      hasBody: boolean,
    ) {
      this.res = res;
      this.exchange = exchange;
      this.responseProcessors = responseProcessors;
      this.hasBody = hasBody;
    }

    onHeaders(statusCode: number, rawHeaders: string[], bodyLength: number): void {
      this.responseStatus = statusCode;
      // Without a body (HEAD, 204, 304) the upstream's content-length is kept as it came;
      // otherwise the client connection writes its own framing headers.
      const keepLength = bodyLength === NO_BODY;
      const responseHeaders: string[] = [];
      for (let index = 0; index < rawHeaders.length; index += 2) {
        const name = rawHeaders[index] as string;
        const lower = name.toLowerCase();
        if (RESPONSE_HEADERS_DROPPED.has(lower) || (lower === 'content-length' && !keepLength)) continue;
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
          respondError(res, error, entry, false);
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
        respondError(res, unwrapUpstreamError(error), this.exchange.entry, this.hasBody);
        return;
      }
      metrics.upstreamErrors++;
      res.destroy();
    }
  }

  function forward(
    res: ClientResponse,
    request: OutgoingRequest,
    target: Target,
    exchange: Exchange,
    hasBody: boolean,
  ): void {
    // The client left while an asynchronous processor ran: nothing to send upstream for.
    if (res.destroyed) return;
    if (!allowPrivate && isIP(target.hostname) !== 0 && isPrivateAddress(target.hostname)) {
      respondError(res, new UpstreamDeniedError(target.hostname), exchange.entry, hasBody);
      return;
    }
    const handler = new UpstreamHandler(
      res,
      exchange,
      (request as PreparedRequest).responseProcessors ?? NO_PROCESSORS,
      hasBody,
    );
    exchange.upstream = pool.dispatch(
      { hostname: target.hostname, port: target.dialPort, hostHeader: target.hostHeader },
      {
        method: request.method,
        path: request.path,
        headers: request.headers,
        body: request.body.dispatchBody() as Buffer | AsyncIterable<Buffer> | null,
      },
      handler,
    );
  }

  function malformed(error: HttpMessageError, request: { method: string; target: string } | undefined): void {
    metrics.recordRequest(error.status, 'denied', 0);
    if (audit) {
      const queryIndex = request?.target.indexOf('?') ?? -1;
      audit({
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
    if (options.debug)
      log('warn', 'request refused', { status: error.status, error: error.code, detail: error.message });
  }

  const connectionOptions = {
    maxHeaderBytes: options.maxHeaderBytes ?? 64 * 1024,
    onRequest: handle,
    onMalformed: malformed,
  };
  const server = createServer({ noDelay: true }, (socket: Socket) => {
    if (closing) {
      socket.destroy();
      return;
    }
    // The sweeper's clock may be up to a second old (or older before the first sweep).
    coarseClock.now = Date.now();
    const connection = new ClientConnection(socket, connectionOptions);
    connections.add(connection);
    socket.once('close', () => connections.delete(connection));
  });
  // Timeouts on a coarse clock: one sweep a second instead of a timer per socket and request.
  const sweeper = setInterval(() => {
    const now = Date.now();
    coarseClock.now = now;
    for (const connection of connections) {
      // Closing: the answer is written; a client that keeps the socket open (or trickles
      // bytes into it) gets a few seconds to read it.
      if (connection.closing) {
        if (connection.closingSince !== 0 && now - connection.closingSince > closingGraceMs)
          connection.socket.destroy();
      } else if (connection.partialHead) {
        if (now - connection.headStartedAt > headersTimeoutMs) connection.closeWith(408);
      } else if (connection.idle) {
        if (now - connection.lastActiveAt > keepAliveTimeoutMs) connection.socket.destroy();
      } else if (now - connection.lastActiveAt > activeTimeoutMs) connection.socket.destroy();
    }
  }, 1000).unref();

  const snapshot = () =>
    metrics.snapshot({ hits: resolver.hits, misses: resolver.misses, size: resolver.size });
  let adminServer: HttpServer | undefined;
  if (options.adminListenAddress !== undefined) {
    adminServer = createAdminServer({ sealKey, metrics: snapshot });
  }

  let closing: Promise<void> | undefined;
  const tokenizerServer: TokenizerServer = {
    server,
    adminServer,
    metrics,
    metricsSnapshot: snapshot,
    sealKey,
    async listen() {
      const listenOn = async (target: Server, address: string) => {
        const { host, port } = parseListenAddress(address);
        target.listen(port, host);
        await once(target, 'listening');
      };
      await listenOn(server, options.listenAddress ?? ':8080');
      if (adminServer) await listenOn(adminServer, options.adminListenAddress as string);
      log('info', 'listening', {
        address: urlOf(server),
        ...(adminServer ? { admin_address: urlOf(adminServer) } : {}),
        seal_key: sealKey,
      });
      return {
        url: urlOf(server),
        adminUrl: adminServer ? urlOf(adminServer) : undefined,
        sealKey,
        server: tokenizerServer,
        close: () => tokenizerServer.close(),
      };
    },
    close() {
      closing ??= (async () => {
        const closed = server.listening ? once(server, 'close') : Promise.resolve();
        server.close();
        for (const connection of connections) if (connection.idle) connection.socket.destroy();
        if (inFlight > 0) {
          const timeout = options.shutdownTimeoutMs ?? 30_000;
          await Promise.race([
            new Promise<void>((resolve) => {
              drained = resolve;
            }),
            new Promise<void>((resolve) => setTimeout(resolve, timeout).unref()),
          ]);
        }
        for (const connection of connections) connection.socket.destroy();
        clearInterval(sweeper);
        await closed;
        if (adminServer?.listening) {
          const adminClosed = once(adminServer, 'close');
          adminServer.close();
          adminServer.closeAllConnections();
          await adminClosed;
        }
        await pool.close();
      })();
      return closing;
    },
  };
  return tokenizerServer;
}

interface Exchange {
  entry: AuditEntry;
  upstream: UpstreamExchange | undefined;
  upstreamDone: boolean;
}

interface ScannedHeaders {
  /** Forwardable headers, lowercase names; proxy and hop-by-hop headers removed. */
  headers: OutgoingHeaders;
  tokenizerLines: string[];
  authorizationLines: string[];
  host: string | undefined;
}

const NO_PARAMS: Params = Object.freeze(Object.create(null));
const NO_PROCESSORS: ResponseProcessor[] = [];
const NO_HEADERS: string[] = [];

/** One pass over the request's [name, value] list (names are already lowercase). */
function scanHeaders(raw: string[]): ScannedHeaders {
  const headers: OutgoingHeaders = Object.create(null);
  const tokenizerLines: string[] = [];
  const authorizationLines: string[] = [];
  let host: string | undefined;
  let connectionTokens: string[] | undefined;
  for (let index = 0; index < raw.length; index += 2) {
    const name = raw[index] as string;
    const value = raw[index + 1] as string;
    if (REQUEST_HEADERS_DROPPED.has(name)) {
      if (name === 'proxy-tokenizer') tokenizerLines.push(value);
      else if (name === 'proxy-authorization') authorizationLines.push(value);
      else if (name === 'host') host ??= value;
      else if (name === 'connection') {
        connectionTokens = (connectionTokens ?? []).concat(
          value.split(',').map((token) => token.trim().toLowerCase()),
        );
      }
      continue;
    }
    const existing = headers[name];
    if (existing === undefined) headers[name] = value;
    else if (Array.isArray(existing)) existing.push(value);
    else headers[name] = [existing, value];
  }
  if (connectionTokens) for (const token of connectionTokens) delete headers[token];
  return { headers, tokenizerLines, authorizationLines, host };
}

interface PreparedRequest extends OutgoingRequest {
  responseProcessors?: ResponseProcessor[];
}

function unwrapUpstreamError(error: Error): unknown {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current; depth++) {
    if (current instanceof UpstreamDeniedError || current instanceof TokenizerError) return current;
    current = (current as { cause?: unknown }).cause;
  }
  return error;
}

function upstreamErrorText(error: unknown): string {
  if (!(error instanceof Error)) return 'upstream request failed';
  const code = (error as NodeJS.ErrnoException).code;
  return `upstream request failed: ${error.message}${code && !error.message.includes(code) ? ` (${code})` : ''}`;
}

function parseAllowedTokens(entries: readonly string[]): Set<string> {
  const digests = new Set<string>();
  for (const [index, entry] of entries.entries()) {
    const digest = parseTokenDigest(entry);
    if (digest === undefined) {
      throw new ConfigError(
        `allowed token ${index + 1} is not a SHA-256 digest (64 hex characters, optionally prefixed sha256:)`,
      );
    }
    digests.add(digest);
  }
  return digests;
}

/** Creates the proxy and starts listening. */
export async function startTokenizerServer(options: TokenizerServerOptions): Promise<RunningTokenizerServer> {
  return createTokenizerServer(options).listen();
}
