import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';

// Never dialled unless private upstreams are explicitly allowed: private, loopback,
// link-local (cloud metadata 169.254.169.254, fe80::/10), CGNAT, unique-local (fc00::/7,
// Fly's fdaa::/16 included), multicast, reserved and unspecified addresses. IPv4-mapped
// IPv6 addresses (::ffff:a.b.c.d) are checked against the IPv4 rules by BlockList itself.
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

export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return false;
  return denied.check(address, family === 4 ? 'ipv4' : 'ipv6');
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
