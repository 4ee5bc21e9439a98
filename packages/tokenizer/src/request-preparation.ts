import type { AuditEntry } from './audit-log.js';
import type { ClientConnection, ClientRequest } from './client-connection.js';
import { BadRequestError } from './errors.js';
import { type JsonValue, parseJsonTree } from './go-json.js';
import { HeaderNameSet } from './header-name-set.js';
import { type Params, PROXY_CONTROLLED_HEADERS } from './header-rules.js';
import { OutgoingBody, type OutgoingHeaders, type OutgoingRequest } from './outgoing-request.js';
import { createProcessor, type RequestProcessor, type ResponseProcessor } from './processors.js';
import { authorize, detachedCopy, ProxyCredentials } from './proxy-auth.js';
import { AuthorityMemo, type RequestTarget } from './request-target.js';
import { type ResolvedSecret, type SecretResolver, tokenDigest, validateHost } from './secret-resolver.js';

// Never forwarded: hop-by-hop headers and the proxy's own headers (framing is re-done upstream).
const REQUEST_HEADERS_DROPPED = new HeaderNameSet([...PROXY_CONTROLLED_HEADERS, 'http2-settings']);

const NO_PARAMS: Params = Object.freeze(Object.create(null));

export interface ScannedHeaders {
  /** Forwardable headers, lowercase names; proxy and hop-by-hop headers removed. */
  headers: OutgoingHeaders;
  tokenizerLines: string[];
  authorizationLines: string[];
  host: string | undefined;
}

/**
 * What a connection's previous request needed hashed: a kept-alive client sends the same
 * Proxy-Tokenizer and Proxy-Authorization lines with every request, and their SHA-256 digests
 * (the secret cache's key, the bearer check) were the largest single cost of a request. Matched
 * by exact text, and kept only as long as the connection (the cache itself never holds token
 * text).
 */
export class ConnectionCredentials {
  tokens: string[] = [];
  tokenDigests: string[] = [];
  proxyCredentials: ProxyCredentials | undefined = undefined;
  /** The previous request's authority, resolved (request-target.ts). */
  readonly authority = new AuthorityMemo();

  /** tokenDigest(token), from the previous request when it carried the same token at `index`. */
  digestOf(token: string, index: number): string {
    if (this.tokens[index] === token) return this.tokenDigests[index] as string;
    const digest = tokenDigest(token);
    // Most requests carry one token; a handful is all a connection remembers.
    if (index < 4) {
      this.tokens[index] = detachedCopy(token);
      this.tokenDigests[index] = digest;
    }
    return digest;
  }
}

/** What a client connection remembers from one request to the next (created with its first). */
export function connectionMemory(connection: ClientConnection): ConnectionCredentials {
  let remembered = connection.handlerState as ConnectionCredentials | undefined;
  if (remembered === undefined) {
    remembered = new ConnectionCredentials();
    connection.handlerState = remembered;
  }
  return remembered;
}

/** The request to send upstream, with the response processors its secrets asked for. */
export interface PreparedRequest extends OutgoingRequest {
  responseProcessors?: ResponseProcessor[];
}

/** One pass over the request's [name, value] list (names are already lowercase). */
export function scanHeaders(raw: string[]): ScannedHeaders {
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

/** The JSON after `;` in a Proxy-Tokenizer line, decoded as Go's map[string]string would be. */
export function parseParams(text: string): Params {
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

export interface RequestPreparerOptions {
  resolver: SecretResolver;
  maxBodyBytes: number;
  /** Forward requests that carry no Proxy-Tokenizer header. */
  openProxy: boolean;
  /** Request headers always removed before forwarding (lowercase). */
  filteredHeaders: readonly string[];
  /** The key token exchanges seal the tokens they mint to. */
  mintSealKey: string;
}

/**
 * Everything before dialling (§3.5): Proxy-Tokenizer lines parsed, secrets opened, the
 * client's proxy credentials and the target host checked, processors applied to the headers.
 */
export class RequestPreparer {
  private readonly resolver: SecretResolver;
  private readonly maxBodyBytes: number;
  private readonly openProxy: boolean;
  private readonly filteredHeaders: readonly string[];
  private readonly filteredSet: ReadonlySet<string>;
  private readonly mintSealKey: string;

  constructor(options: RequestPreparerOptions) {
    this.resolver = options.resolver;
    this.maxBodyBytes = options.maxBodyBytes;
    this.openProxy = options.openProxy;
    this.filteredHeaders = options.filteredHeaders;
    this.filteredSet = new Set(options.filteredHeaders);
    this.mintSealKey = options.mintSealKey;
  }

  /** Synchronous unless a processor needs I/O (token exchanges, whole-body HMAC). Throws refusals. */
  prepare(
    req: ClientRequest,
    scanned: ScannedHeaders,
    target: RequestTarget,
    entry: AuditEntry,
    hasBody: boolean,
  ): PreparedRequest | Promise<PreparedRequest> {
    const { headers, tokenizerLines, authorizationLines } = scanned;
    headers.host = target.hostHeader;
    const request: PreparedRequest = {
      method: req.method,
      path: target.path,
      host: target.authority,
      headers,
      body: new OutgoingBody(hasBody ? req.body : undefined, this.maxBodyBytes),
    };
    const remembered = connectionMemory(req.connection);
    const credentials = ProxyCredentials.reuse(authorizationLines, remembered.proxyCredentials);
    remembered.proxyCredentials = credentials;
    const queryIndex = target.path.indexOf('?');
    const access = {
      method: request.method,
      path: queryIndex < 0 ? target.path : target.path.slice(0, queryIndex),
      host: target.authority,
    };
    const processors: RequestProcessor[] = [];
    const responseProcessors: ResponseProcessor[] = [];
    for (let lineIndex = 0; lineIndex < tokenizerLines.length; lineIndex++) {
      const line = tokenizerLines[lineIndex] as string;
      const semicolon = line.indexOf(';');
      const token = (semicolon < 0 ? line : line.slice(0, semicolon)).trim();
      const paramsText = semicolon < 0 ? '' : line.slice(semicolon + 1).trim();
      if (token === '')
        throw new BadRequestError('BAD_TOKENIZER_HEADER', 'bad request: bad tokenizer header');
      const params = paramsText === '' ? NO_PARAMS : parseParams(paramsText);
      const resolution = this.resolver.resolveWithDigest(token, remembered.digestOf(token, lineIndex));
      entry.credentials.push(resolution.fingerprint);
      if (resolution.error) throw resolution.error;
      const resolved = resolution.resolved;
      authorize(resolved.secret.auth, resolved.bearerDigest, credentials, access);
      validateHost(resolved, target.authority);
      const processor = this.processorFor(resolved, paramsText, params);
      processors.push(processor);
      if (processor.responseProcessor) responseProcessors.push(processor.responseProcessor);
    }
    if (processors.length === 0 && !this.openProxy) throw new BadRequestError('NO_SECRETS', 'bad request');
    request.responseProcessors = responseProcessors;
    for (let index = 0; index < processors.length; index++) {
      const result = (processors[index] as RequestProcessor).apply(request);
      if (result instanceof Promise) return this.applyRest(result, processors, index + 1, request);
    }
    return this.finishHeaders(request);
  }

  /** Processors are pure functions of (secret, params): reuse them per params text. */
  private processorFor(resolved: ResolvedSecret, paramsText: string, params: Params): RequestProcessor {
    // A constant key (no string to build and hash) for the usual line without params.
    const key = paramsText === '' ? 'processor:' : `processor:${paramsText}`;
    const cached = resolved.memo.get(key) as RequestProcessor | undefined;
    if (cached) return cached;
    const processor = createProcessor(resolved.secret.processor, params, {
      secret: resolved.secret,
      sealKey: this.mintSealKey,
      memo: resolved.memo,
      filteredHeaders: this.filteredHeaders,
    });
    if (resolved.memo.size < 64) resolved.memo.set(key, processor);
    return processor;
  }

  private async applyRest(
    pending: Promise<void>,
    processors: RequestProcessor[],
    next: number,
    request: PreparedRequest,
  ): Promise<PreparedRequest> {
    await pending;
    for (let index = next; index < processors.length; index++)
      await (processors[index] as RequestProcessor).apply(request);
    return this.finishHeaders(request);
  }

  private finishHeaders(request: PreparedRequest): PreparedRequest {
    // Filtered after the processors, so a dst naming a filtered header has no effect (§3.7).
    for (const name of this.filteredSet) delete request.headers[name];
    delete request.headers['proxy-authorization'];
    delete request.headers['proxy-tokenizer'];
    return request;
  }
}
