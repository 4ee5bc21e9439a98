import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';

// Never dialled unless private upstreams are explicitly allowed: private, loopback,
// link-local (cloud metadata 169.254.169.254, fe80::/10), CGNAT, unique-local (fc00::/7,
// Fly's fdaa::/16 included), multicast, reserved and unspecified addresses. IPv4-mapped
// IPv6 addresses (::ffff:a.b.c.d) are checked against the IPv4 rules by BlockList itself; the
// other IPv6 forms that embed an IPv4 address are handled below.
const denied = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  denied.addSubnet(network, prefix, 'ipv4');
}
for (const [network, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const) {
  denied.addSubnet(network, prefix, 'ipv6');
}

// IPv6 forms that carry an IPv4 address BlockList does not map (it maps only ::ffff:0:0/96).
// Refused whatever they embed: they are deprecated or network-specific, no public API is
// reached through them, and a gateway on the path would deliver them to the IPv4 address
// (http://[2002:a00:1::]/ to 10.0.0.1 through a 6to4 relay).
const embeddingIpv4 = new BlockList();
for (const [network, prefix] of [
  ['::', 96], // IPv4-compatible (RFC 4291, deprecated)
  ['::ffff:0:0:0', 96], // IPv4-translated (SIIT, RFC 2765)
  ['64:ff9b:1::', 48], // local-use NAT64 (RFC 8215): where the IPv4 bits sit is the network's choice
  ['2001::', 32], // Teredo (RFC 4380): server IPv4, then the client's IPv4 XORed
  ['2002::', 16], // 6to4 (RFC 3056, deprecated by RFC 7526)
] as const) {
  embeddingIpv4.addSubnet(network, prefix, 'ipv6');
}
// The NAT64 well-known prefix (RFC 6052) is how DNS64 networks reach IPv4-only hosts, so it is
// judged by the IPv4 address in its last 32 bits, like ::ffff:a.b.c.d.
const nat64 = new BlockList();
nat64.addSubnet('64:ff9b::', 96, 'ipv6');

export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return false;
  if (family === 4) return denied.check(address, 'ipv4');
  if (denied.check(address, 'ipv6') || embeddingIpv4.check(address, 'ipv6')) return true;
  return nat64.check(address, 'ipv6') && denied.check(lastIpv4(address), 'ipv4');
}

/** The IPv4 address in the last 32 bits of a valid IPv6 address (`64:ff9b::a00:1` → `10.0.0.1`). */
function lastIpv4(address: string): string {
  const zone = address.indexOf('%');
  const text = zone < 0 ? address : address.slice(0, zone);
  const tail = text.slice(text.lastIndexOf(':') + 1);
  if (tail.includes('.')) return tail;
  const gap = text.indexOf('::');
  let groups: string[];
  if (gap < 0) groups = text.split(':');
  else {
    const head = text.slice(0, gap).split(':').filter(Boolean);
    const rest = text
      .slice(gap + 2)
      .split(':')
      .filter(Boolean);
    groups = [...head, ...new Array<string>(8 - head.length - rest.length).fill('0'), ...rest];
  }
  const high = Number.parseInt(groups[6] as string, 16);
  const low = Number.parseInt(groups[7] as string, 16);
  return `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`;
}

/** Marks dial-policy refusals so that the proxy answers 400 instead of 502. */
export class UpstreamDeniedError extends Error {
  readonly code = 'KEYWARD_UPSTREAM_DENIED';
  constructor(host: string) {
    super(`bad request: dialing ${host} denied`);
    this.name = 'UpstreamDeniedError';
  }
}

/**
 * A `lookup` for net/tls connect that refuses private addresses after DNS resolution, so a
 * public name that resolves (or rebinds) to an internal address is still refused.
 */
export function createGuardedLookup(): LookupFunction {
  return ((hostname: string, options: { all?: boolean }, callback: (...args: unknown[]) => void) => {
    dnsLookup(hostname, { ...options, all: true }, (error, addresses: LookupAddress[]) => {
      if (error) return callback(error);
      if (addresses.length === 0 || addresses.some((entry) => isPrivateAddress(entry.address))) {
        return callback(new UpstreamDeniedError(hostname));
      }
      if (options.all) return callback(null, addresses);
      const first = addresses[0] as LookupAddress;
      return callback(null, first.address, first.family);
    });
  }) as LookupFunction;
}
