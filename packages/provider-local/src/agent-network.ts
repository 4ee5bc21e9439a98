// proxy-only: the agent's network namespace has no interface but loopback (`--network none`,
// held by the agent-network helper, which the agent joins). For each connection the plan
// allows from the agent, that helper listens on 127.0.0.1:<port> and relays to a unix socket
// in a volume it shares with the network helper outside, which relays on to <container>:<port>
// on the internal network; the agent's ingress goes the other way. Nothing else has a path
// out: no route, no DNS server, no gateway, no link-local address. True by construction.
import { AGENT_CONTAINER_NAME } from '@keyward/core';
import type { StoredPlan } from './instance-record.js';

/** Where both helpers mount the shared socket volume. */
export const SOCKET_DIRECTORY = '/keyward-sockets';

export type RelayEnd = { host: string; port: number } | { path: string };

export interface Relay {
  listen: RelayEnd;
  connect: RelayEnd;
}

export function connectionSocketPath(container: string, port: number): string {
  return `${SOCKET_DIRECTORY}/to-${container}-${port}.sock`;
}

export function ingressSocketPath(port: number): string {
  return `${SOCKET_DIRECTORY}/ingress-${port}.sock`;
}

/** The relays of both helpers, from the plan's connections (from the agent) and ingress. Pure. */
export function relayPlan(plan: Pick<StoredPlan, 'connections' | 'ingress'>): {
  inside: Relay[];
  outside: Relay[];
} {
  const seen = new Set<string>();
  const connections = plan.connections.filter((connection) => {
    const key = `${connection.to}:${connection.port}`;
    if (connection.from !== AGENT_CONTAINER_NAME || seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  const ingress = plan.ingress.filter((entry) => entry.container === AGENT_CONTAINER_NAME);
  return {
    inside: [
      ...connections.map((connection) => ({
        listen: { host: '127.0.0.1', port: connection.port },
        connect: { path: connectionSocketPath(connection.to, connection.port) },
      })),
      ...ingress.map((entry) => ({
        listen: { path: ingressSocketPath(entry.port) },
        connect: { host: '127.0.0.1', port: entry.port },
      })),
    ],
    outside: [
      ...connections.map((connection) => ({
        listen: { path: connectionSocketPath(connection.to, connection.port) },
        connect: { host: connection.to, port: connection.port },
      })),
      ...ingress.map((entry) => ({
        listen: { host: '0.0.0.0', port: entry.port },
        connect: { path: ingressSocketPath(entry.port) },
      })),
    ],
  };
}
