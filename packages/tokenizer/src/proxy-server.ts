import { once } from 'node:events';
import type { Server as HttpServer } from 'node:http';
import type { AddressInfo, Server, Socket } from 'node:net';
import { createServer, isIP } from 'node:net';
import { createSecureContext, rootCertificates } from 'node:tls';
import { createGuardedLookup } from './address-policy.js';
import { createAdminServer } from './admin-server.js';
import { type AuditSink, createStdoutAuditSink } from './audit-log.js';
import { ConnectionSupervisor } from './connection-supervisor.js';
import { ConfigError } from './errors.js';
import { type MetricsSnapshot, ProxyMetrics } from './metrics.js';
import { type OperationalLog, ProxyRequestHandler } from './proxy-request-handler.js';
import { RequestPreparer } from './request-preparation.js';
import { type OpenKey, toOpenKey } from './sealed-box.js';
import {
  fingerprintOfDigest,
  mintedTokenKey,
  parseAllowedTokenEntry,
  SecretResolver,
} from './secret-resolver.js';
import { loadTelemetry, type RequestTelemetry, type TokenizerTelemetryOptions } from './telemetry.js';
import { UpstreamPool } from './upstream-pool.js';

// The proxy's parts: request-target.ts (where a request goes, the secure-default refusals),
// request-preparation.ts (Proxy-Tokenizer lines, secrets, header injection),
// upstream-response-relay.ts (the upstream's answer back to the client),
// connection-supervisor.ts (client connections and their timeouts), proxy-request-handler.ts
// (one request end to end). This file wires them and owns start-up and shutdown.

/** Parses `host[:port]`; exported here too, where callers have always found it. */
export { splitAuthority } from './request-target.js';

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
   * its own token to make the proxy forward to hosts no issued credential allows. An entry may
   * name its credential after a space (`sha256:<digest> github`): spans show the name.
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
  log?: OperationalLog;
  /** How long close() waits for in-flight requests before cutting them. Default 30 s. */
  shutdownTimeoutMs?: number;
  /**
   * Spans and metrics over OTLP/HTTP (the CLI reads OTEL_EXPORTER_OTLP_ENDPOINT and friends).
   * Off when unset: the OpenTelemetry SDK is then never loaded.
   */
  telemetry?: TokenizerTelemetryOptions | undefined;
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
  const ownHostnames = new Set(
    (options.tokenizerHostnames ?? []).map((name) => name.toLowerCase()).filter(Boolean),
  );
  const maxBodyBytes = options.maxBodyBytes ?? 32 * 1024 * 1024;
  const allowPrivate = options.allowPrivateUpstreams === true;
  const allowList =
    options.allowedTokens === undefined ? undefined : parseAllowedTokens(options.allowedTokens);
  const allowedTokens = allowList?.digests;
  // Tokens minted in token exchanges are sealed to an unpublished key when the list is on.
  const mintKey = allowedTokens === undefined ? undefined : mintedTokenKey(openKey);
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
  const handler = new ProxyRequestHandler({
    preparer: new RequestPreparer({
      resolver,
      maxBodyBytes,
      openProxy: options.openProxy === true,
      filteredHeaders,
      mintSealKey: mintKey?.sealKeyHex ?? sealKey,
    }),
    pool,
    metrics,
    audit,
    log,
    debug: options.debug === true,
    allowPrivateUpstreams: allowPrivate,
    maxHeaderBytes: options.maxHeaderBytes ?? 64 * 1024,
    maxBodyBytes,
    ownHostnames,
  });
  const supervisor = new ConnectionSupervisor(handler, {
    keepAliveTimeoutMs: options.keepAliveTimeoutMs ?? 65_000,
    headersTimeoutMs: options.headersTimeoutMs ?? 30_000,
    // Idle sockets are cut; a request in flight is bounded by the upstream's own timeouts.
    activeTimeoutMs: upstreamTimeout + 5_000,
  });
  const server = createServer({ noDelay: true }, (socket: Socket) => supervisor.accept(socket));

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
      if (options.telemetry !== undefined && handler.telemetry === undefined) {
        const telemetry: RequestTelemetry = await loadTelemetry(options.telemetry, {
          credentialNames: allowList?.names ?? new Map(),
        });
        telemetry.observeInFlight(() => handler.inFlight);
        handler.telemetry = telemetry;
      }
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
        ...(options.telemetry ? { otlp_endpoint: options.telemetry.endpoint } : {}),
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
        supervisor.stopAccepting();
        await handler.settle(options.shutdownTimeoutMs ?? 30_000);
        supervisor.destroyAll();
        await closed;
        if (adminServer?.listening) {
          const adminClosed = once(adminServer, 'close');
          adminServer.close();
          adminServer.closeAllConnections();
          await adminClosed;
        }
        await pool.close();
        await handler.telemetry?.shutdown();
      })();
      return closing;
    },
  };
  return tokenizerServer;
}

/** The digests to accept, and the credential names by fingerprint (for spans). */
function parseAllowedTokens(entries: readonly string[]): {
  digests: Set<string>;
  names: Map<string, string>;
} {
  const digests = new Set<string>();
  const names = new Map<string, string>();
  for (const [index, text] of entries.entries()) {
    const entry = parseAllowedTokenEntry(text);
    if (entry === undefined) {
      throw new ConfigError(
        `allowed token ${index + 1} is not a SHA-256 digest (64 hex characters, optionally prefixed sha256:), optionally followed by a space and the credential's name (one line, at most 256 characters)`,
      );
    }
    digests.add(entry.digest);
    if (entry.name !== undefined) names.set(fingerprintOfDigest(entry.digest), entry.name);
  }
  return { digests, names };
}

/** Creates the proxy and starts listening. */
export async function startTokenizerServer(options: TokenizerServerOptions): Promise<RunningTokenizerServer> {
  return createTokenizerServer(options).listen();
}
