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
  /** A DNS query for a name (through the container's resolv.conf servers, or `servers` when given). */
  | { kind: 'dns'; name: string; servers?: string[] };

export interface ProbeOutcome {
  target: string;
  /** `connected`, an errno code (`ECONNREFUSED`, `ENETUNREACH`), `timeout`, `no-route`, `no-interface`. */
  outcome: string;
  /** DNS: the resolver's servers. */
  servers?: string[];
  /** DNS: the same query sent to each server over UDP by the script itself (`answered`, an errno code, `timeout`). */
  direct?: { server: string; outcome: string }[];
}

const script = String.raw`
const net = require('node:net');
const dns = require('node:dns');
const dgram = require('node:dgram');
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
function serverAddress(server) {
  const bracketed = server.match(/^\[(.*)\]:(\d+)$/);
  if (bracketed) return { address: bracketed[1], port: Number(bracketed[2]) };
  const withPort = server.match(/^([^:]+):(\d+)$/);
  if (withPort) return { address: withPort[1], port: Number(withPort[2]) };
  return { address: server, port: 53 };
}
// c-ares reports ECONNREFUSED both for a server that refused and for one it could not send to
// at all (no route, no interface): the same query over a connected UDP socket tells them apart.
function queryDirectly(server, name) {
  return new Promise((done) => {
    const { address, port } = serverAddress(server);
    const labels = name.split('.').filter(Boolean).map((label) => Buffer.concat([Buffer.from([label.length]), Buffer.from(label)]));
    const query = Buffer.concat([Buffer.from([0x6b, 0x77, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]), ...labels, Buffer.from([0, 0, 1, 0, 1])]);
    let socket;
    let finished = false;
    const finish = (outcome) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      try { socket.close(); } catch {}
      done({ server: address + ':' + port, outcome });
    };
    const timer = setTimeout(() => finish('timeout'), timeoutMs);
    try {
      socket = dgram.createSocket(address.includes(':') ? 'udp6' : 'udp4');
      socket.on('error', (error) => finish(error.code || error.message));
      socket.on('message', () => finish('answered'));
      socket.connect(port, address, (error) => {
        if (error) return finish(error.code || error.message);
        socket.send(query, (sendError) => { if (sendError) finish(sendError.code || sendError.message); });
      });
    } catch (error) {
      finish(error.code || error.message);
    }
  });
}
function resolve(name, configured) {
  return new Promise((done) => {
    const resolver = new dns.Resolver({ timeout: timeoutMs, tries: 1 });
    if (configured) resolver.setServers(configured);
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
      const { outcome, servers } = await resolve(probe.name, probe.servers);
      const direct = [];
      for (const server of servers) direct.push(await queryDirectly(server, probe.name));
      results.push({ target: 'dns ' + probe.name + ' via ' + (servers.join(',') || '(no servers)'), outcome, servers, direct });
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

const isLoopback = (server: string) => /^(127\.|::1$|\[::1\]|::1:)/.test(server);

/**
 * Whether a probe's outcome means it was blocked. `ECONNREFUSED` is an answer (a host sent a
 * reset), so it counts as reachable — except from the container's own loopback, which is not
 * outside it. For a DNS query, any answer (even NXDOMAIN, `ENOTFOUND`) is reachable; when the
 * resolver got none, the direct query to each server decides (c-ares's `ECONNREFUSED` also
 * stands for "could not send": docker gives a loopback-only container the host's resolver,
 * which it has no route to).
 */
export function isBlocked(result: ProbeOutcome): boolean {
  if (result.target.startsWith('dns ')) {
    if (result.outcome === 'no-servers') return true;
    if (!['timeout', 'ETIMEOUT', 'ECONNREFUSED'].includes(result.outcome)) return false;
    if (result.direct && result.direct.length > 0) {
      return result.direct.every(
        (item) =>
          blockedOutcomes.has(item.outcome) || (item.outcome === 'ECONNREFUSED' && isLoopback(item.server)),
      );
    }
    return result.outcome !== 'ECONNREFUSED' || (result.servers ?? []).every(isLoopback);
  }
  return blockedOutcomes.has(result.outcome);
}

/** One probe's outcome as evidence; DNS adds what each server did with the direct query. */
export function formatOutcome(result: ProbeOutcome): string {
  const direct = result.direct?.length
    ? ` (asked directly: ${result.direct.map((item) => `${item.server} ${item.outcome}`).join(', ')})`
    : '';
  return `${result.target} ${result.outcome}${direct}`;
}

export function parseProbeOutput(stdout: string): ProbeOutcome[] | undefined {
  const line = stdout.trim().split('\n').pop() ?? '';
  try {
    return (JSON.parse(line) as { results: ProbeOutcome[] }).results;
  } catch {
    return undefined;
  }
}
