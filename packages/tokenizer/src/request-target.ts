import { isIP } from 'node:net';
import { isPrivateAddress } from './address-policy.js';
import { BadRequestError } from './errors.js';
import { detachedCopy } from './proxy-auth.js';

/** Where a client request goes: what validators check, what is dialled, what is sent as Host. */
export interface RequestTarget {
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

/**
 * The last absolute-form authority (and Host header) a connection's requests named, with what it
 * resolved to: resolving it (splitting, the host rules, the Host check) is a few thousand
 * instructions, repeated for every request of a kept-alive connection. Kept as copies, so that
 * they do not hold the request head they came from.
 */
export class AuthorityMemo {
  authority: string | undefined = undefined;
  hostHeader: string | undefined = undefined;
  target: RequestTarget | undefined = undefined;
  hits = 0;
  private misses = 0;

  remember(authority: string, hostHeader: string | undefined, target: RequestTarget): void {
    // A connection whose requests keep changing authority would pay for the copies every time.
    if (++this.misses > 8 && this.misses > this.hits) return;
    this.authority = detachedCopy(authority);
    this.hostHeader = hostHeader === undefined ? undefined : detachedCopy(hostHeader);
    this.target = withPath(
      {
        ...target,
        authority: this.authority,
        hostname: detachedCopy(target.hostname),
        hostHeader: detachedCopy(target.hostHeader),
      },
      '/',
    );
  }
}

function withPath(target: RequestTarget, path: string): RequestTarget {
  return {
    authority: target.authority,
    hostname: target.hostname,
    dialPort: target.dialPort,
    hostHeader: target.hostHeader,
    authorityPort: target.authorityPort,
    path,
  };
}

/** A transparent-mode refusal: Go's http.Error writes these as text/plain with a trailing newline. */
export class PlainTextRequestError extends BadRequestError {
  readonly plainText = true;
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

/**
 * Refusals that come before the target is read. CONNECT is refused on purpose: a tunnel lets
 * the Host header and the dialled host diverge. HTTP/1.1 without Host is refused by RFC 9112
 * §3.2 (Go's server, the reference's, refuses it too).
 */
export function checkRequestForm(method: string, minorVersion: number, hostHeader: string | undefined): void {
  if (method === 'CONNECT') {
    throw new BadRequestError(
      'BAD_TARGET',
      'bad request: CONNECT is not supported; send absolute-form http:// requests',
    );
  }
  if (minorVersion === 1 && hostHeader === undefined)
    throw new BadRequestError('BAD_TARGET', 'bad request: missing Host header');
}

/**
 * The upstream of a request: absolute-form `http://` targets, or origin-form ("transparent")
 * targets when the proxy knows its own names (`ownHostnames`, §3.1). Throws the refusal.
 */
export function resolveRequestTarget(
  url: string,
  hostHeader: string | undefined,
  ownHostnames: ReadonlySet<string>,
  memo?: AuthorityMemo,
): RequestTarget {
  if (url.startsWith('http://') || url.slice(0, 7).toLowerCase() === 'http://') {
    let end = url.length;
    for (let index = 7; index < url.length; index++) {
      const code = url.charCodeAt(index);
      // '/', '?', '#'
      if (code === 0x2f || code === 0x3f || code === 0x23) {
        end = index;
        break;
      }
    }
    const authority = url.slice(7, end);
    let path = url.slice(end);
    const hash = path.indexOf('#');
    if (hash >= 0) path = path.slice(0, hash);
    if (!path.startsWith('/')) path = `/${path}`;
    if (authority.includes('@'))
      throw new BadRequestError('BAD_TARGET', 'bad request: userinfo in request target');
    // A kept-alive client names the same authority (and Host) request after request.
    if (
      memo !== undefined &&
      memo.target !== undefined &&
      memo.authority === authority &&
      memo.hostHeader === hostHeader
    ) {
      memo.hits++;
      return withPath(memo.target, path);
    }
    const target = targetOfAuthority(authority, path);
    if (hostHeader !== undefined && !sameHost(hostHeader, target)) {
      throw new BadRequestError('BAD_TARGET', 'bad request: Host header does not match the request target');
    }
    if (memo !== undefined) memo.remember(authority, hostHeader, target);
    return target;
  }
  // https:// would mean the client expects end-to-end TLS that we would silently drop.
  if (url.slice(0, 8).toLowerCase() === 'https://') throw mustBeHttp();
  if (!url.startsWith('/'))
    throw new BadRequestError('BAD_TARGET', 'bad request: unsupported request target');
  if (ownHostnames.size === 0) throw new PlainTextRequestError('BAD_TARGET', "I'm not that kind of server");
  const host = hostHeader ?? '';
  if (host === '') throw new PlainTextRequestError('BAD_TARGET', 'must specify host');
  const parts = splitAuthority(host);
  if (!parts) throw new PlainTextRequestError('BAD_TARGET', 'bad host');
  if (ownHostnames.has(parts.hostname)) throw new PlainTextRequestError('BAD_TARGET', 'circular request');
  return targetOfAuthority(host, url);
}

/** True when the target is an IP literal the address policy refuses (names are checked after DNS). */
export function isDeniedAddressLiteral(target: RequestTarget): boolean {
  return isIP(target.hostname) !== 0 && isPrivateAddress(target.hostname);
}

/** §3.2: port 443 refused, 80 or none → TLS 443, any other port kept (TLS). */
function targetOfAuthority(authority: string, path: string): RequestTarget {
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

function sameHost(hostHeader: string, target: RequestTarget): boolean {
  // The common case: the client repeats the authority verbatim.
  if (hostHeader === target.authority) return true;
  const parts = splitAuthority(hostHeader);
  if (!parts) return false;
  const port = parts.port ?? 80;
  const targetPort = target.authorityPort ?? 80;
  return parts.hostname === target.hostname && port === targetPort;
}
