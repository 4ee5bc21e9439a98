// A Node script the network checks run inside a container (`node -`, script on stdin). It
// tries each probe and prints one JSON line: what happened to each, as an error code.
// `connected` and `ECONNREFUSED` mean something answered; only a timeout or an
// unreachable/unresolvable error means the probe was blocked.

export type NetworkProbe =
  | { kind: 'tcp'; host: string; port: number }
  /** The default IPv4 gateway from /proc/net/route (the host, on a bridge network). */
  | { kind: 'tcp-gateway'; port: number }
  /** Link-local IPv6 (`fe80::1` and any IPv6 default gateway) on every interface but lo. */
  | { kind: 'tcp-link-local'; port: number }
  /** A DNS query for a name (through the container's resolv.conf servers). */
  | { kind: 'dns'; name: string };

export interface ProbeOutcome {
  target: string;
  /** `connected`, an errno code (`ECONNREFUSED`, `ENETUNREACH`), `timeout`, `no-route`, `no-interface`. */
  outcome: string;
}

const script = String.raw`
const net = require('node:net');
const dns = require('node:dns');
const fs = require('node:fs');
const probes = JSON.parse(process.argv[2] || PROBES);
const timeoutMs = 2500;
function tcp(host, port) {
  return new Promise((resolve) => {
    let done = false;
    const finish = (outcome) => { if (!done) { done = true; socket.destroy(); resolve(outcome); } };
    const socket = net.connect({ host, port, family: host.includes(':') ? 6 : 0, lookup: (name, options, callback) => dns.lookup(name, options, callback) });
    socket.setTimeout(timeoutMs, () => finish('timeout'));
    socket.on('connect', () => finish('connected'));
    socket.on('error', (error) => finish(error.code || error.message));
  });
}
function gateway() {
  try {
    for (const line of fs.readFileSync('/proc/net/route', 'utf8').split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields[1] === '00000000' && fields[2] && fields[2] !== '00000000') {
        const hex = fields[2];
        return [3, 2, 1, 0].map((index) => parseInt(hex.slice(index * 2, index * 2 + 2), 16)).join('.');
      }
    }
  } catch {}
  return undefined;
}
function interfaces() {
  try { return fs.readdirSync('/sys/class/net').filter((name) => name !== 'lo'); } catch { return []; }
}
function ipv6Gateways() {
  const found = [];
  try {
    for (const line of fs.readFileSync('/proc/net/ipv6_route', 'utf8').split('\n')) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10 || fields[0] !== '0'.repeat(32) || fields[4] === '0'.repeat(32)) continue;
      found.push({ address: fields[4].match(/.{4}/g).join(':'), device: fields[9] });
    }
  } catch {}
  return found;
}
function resolve(name) {
  return new Promise((done) => {
    const resolver = new dns.Resolver({ timeout: timeoutMs, tries: 1 });
    const servers = resolver.getServers();
    const timer = setTimeout(() => done({ outcome: 'timeout', servers }), timeoutMs * 2);
    resolver.resolve4(name, (error, addresses) => {
      clearTimeout(timer);
      if (!error) return done({ outcome: 'answered ' + addresses.join(' '), servers });
      done({ outcome: error.code || error.message, servers });
    });
  });
}
(async () => {
  const results = [];
  for (const probe of probes) {
    if (probe.kind === 'tcp') {
      results.push({ target: probe.host + ':' + probe.port, outcome: await tcp(probe.host, probe.port) });
    } else if (probe.kind === 'tcp-gateway') {
      const address = gateway();
      results.push({ target: 'gateway ' + (address || '(none)') + ':' + probe.port, outcome: address ? await tcp(address, probe.port) : 'no-route' });
    } else if (probe.kind === 'tcp-link-local') {
      const devices = interfaces();
      if (devices.length === 0) results.push({ target: 'fe80::1:' + probe.port, outcome: 'no-interface' });
      const targets = [...devices.map((device) => ({ address: 'fe80::1', device })), ...ipv6Gateways()];
      for (const { address, device } of targets) {
        results.push({ target: '[' + address + '%' + device + ']:' + probe.port, outcome: await tcp(address + '%' + device, probe.port) });
      }
    } else if (probe.kind === 'dns') {
      const { outcome, servers } = await resolve(probe.name);
      results.push({ target: 'dns ' + probe.name + ' via ' + (servers.join(',') || '(no servers)'), outcome, servers });
    }
  }
  console.log(JSON.stringify({ results }));
})();
`;

/** The script with its probes; everything it needs travels on stdin. */
export function networkProbeScript(probes: readonly NetworkProbe[]): string {
  return `const PROBES = ${JSON.stringify(JSON.stringify(probes))};\n${script}`;
}

/** Codes that mean nothing answered: the probe was blocked. */
const blockedOutcomes = new Set([
  'timeout',
  'no-route',
  'no-interface',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'EADDRNOTAVAIL',
  'EAFNOSUPPORT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEOUT',
  'ETIMEDOUT',
  'EINVAL',
]);

/**
 * Whether a probe's outcome means it was blocked. `ECONNREFUSED` is an answer (a host sent a
 * reset), so it counts as reachable — except for DNS servers on the container's own loopback,
 * which are not outside it. For a DNS query, any answer (even NXDOMAIN, `ENOTFOUND`) is reachable.
 */
export function isBlocked(result: ProbeOutcome & { servers?: string[] }): boolean {
  if (result.target.startsWith('dns ')) {
    if (result.outcome === 'timeout' || result.outcome === 'ETIMEOUT' || result.outcome === 'ECONNREFUSED') {
      const servers = result.servers ?? [];
      return (
        result.outcome !== 'ECONNREFUSED' || servers.every((server) => /^(127\.|::1$|\[::1\])/.test(server))
      );
    }
    return result.outcome === 'no-servers';
  }
  return blockedOutcomes.has(result.outcome);
}

export function parseProbeOutput(stdout: string): (ProbeOutcome & { servers?: string[] })[] | undefined {
  const line = stdout.trim().split('\n').pop() ?? '';
  try {
    return (JSON.parse(line) as { results: (ProbeOutcome & { servers?: string[] })[] }).results;
  } catch {
    return undefined;
  }
}
