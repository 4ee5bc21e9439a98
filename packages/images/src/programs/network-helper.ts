// keyward's network helper, one small program with these jobs:
//
//   (no arguments)     FORWARDS="<listenPort>=<host>:<port>,..." forwards TCP;
//                      RELAYS='[{"listen":<end>,"connect":<end>},...]' relays between TCP
//                      and unix sockets, where <end> is {"host","port"} or {"path"};
//                      with neither it only holds the network namespace (open mode, like
//                      a pod's infra container, or the agent's empty one in proxy-only).
//   probe tcp <host> <port>              exit 0 when a TCP connection succeeds
//   probe http <host> <port> <path>      exit 0 on an HTTP status below 500
//
// In proxy-only mode two copies run: one outside, on the instance's networks, that
// publishes the agent's port and reaches the sidecars; one that holds the agent's
// network namespace (no interface but loopback). Unix sockets in a shared volume join them.
import { chmodSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { connect, createServer, type Socket } from 'node:net';

const [command, ...rest] = process.argv.slice(2);

function probe(kind: string | undefined, host: string | undefined, portText: string | undefined, path = '/') {
  const port = Number(portText);
  if (!host || !Number.isInteger(port)) {
    console.error('usage: probe tcp|http <host> <port> [path]');
    process.exit(2);
  }
  const timer = setTimeout(() => {
    console.error(`probe: ${host}:${port} timed out`);
    process.exit(1);
  }, 3000);
  if (kind === 'tcp') {
    const socket = connect(port, host, () => {
      clearTimeout(timer);
      socket.destroy();
      process.exit(0);
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      console.error(`probe: ${host}:${port} ${error.code ?? error.message}`);
      process.exit(1);
    });
    return;
  }
  const outgoing = request({ host, port, path, method: 'GET' }, (response) => {
    clearTimeout(timer);
    response.resume();
    console.log(`probe: ${host}:${port}${path} -> ${response.statusCode}`);
    process.exit((response.statusCode ?? 500) < 500 ? 0 : 1);
  });
  outgoing.on('error', (error: NodeJS.ErrnoException) => {
    console.error(`probe: ${host}:${port}${path} ${error.code ?? error.message}`);
    process.exit(1);
  });
  outgoing.end();
}

function forward(specification: string) {
  for (const entry of specification.split(',').filter(Boolean)) {
    const match = /^(\d+)=([^:]+):(\d+)$/.exec(entry.trim());
    if (!match) {
      console.error(`network-helper: bad FORWARDS entry "${entry}", expected <port>=<host>:<port>`);
      process.exit(2);
    }
    const [, listenPort, host, targetPort] = match as unknown as [string, string, string, string];
    createServer((client: Socket) => {
      const upstream = connect(Number(targetPort), host);
      client.pipe(upstream);
      upstream.pipe(client);
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
    }).listen(Number(listenPort), '0.0.0.0', () =>
      console.log(`network-helper: forwarding ${listenPort} -> ${host}:${targetPort}`),
    );
  }
}

type RelayEnd = { host: string; port: number } | { path: string };

function describeEnd(end: RelayEnd): string {
  return 'path' in end ? `unix:${end.path}` : `${end.host}:${end.port}`;
}

/**
 * In proxy-only the agent's network namespace has no interface but loopback: this helper
 * listens there on 127.0.0.1 for each allowed connection and relays it to a unix socket in
 * a volume it shares with the helper outside, which relays it on to the sidecar (and the
 * ingress the other way). Nothing else can leave that namespace.
 */
function relay(specification: string) {
  const relays = JSON.parse(specification) as { listen: RelayEnd; connect: RelayEnd }[];
  for (const { listen, connect: target } of relays) {
    const server = createServer((client: Socket) => {
      const upstream = 'path' in target ? connect(target.path) : connect(target.port, target.host);
      client.pipe(upstream);
      upstream.pipe(client);
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
    });
    const announce = () =>
      console.log(`network-helper: relaying ${describeEnd(listen)} -> ${describeEnd(target)}`);
    if ('path' in listen) {
      // A socket left by an earlier run of this container would make listen fail.
      rmSync(listen.path, { force: true });
      server.listen(listen.path, () => {
        chmodSync(listen.path, 0o600);
        announce();
      });
    } else {
      server.listen(listen.port, listen.host, announce);
    }
  }
}

if (command === 'probe') {
  probe(rest[0], rest[1], rest[2], rest[3]);
} else {
  const forwards = process.env['FORWARDS'] ?? '';
  const relays = process.env['RELAYS'] ?? '';
  if (forwards) forward(forwards);
  if (relays) relay(relays);
  if (!forwards && !relays) console.log('network-helper: holding the network namespace');
  setInterval(() => {}, 1 << 30);
  // As PID 1 node gets no default signal handlers: exit on SIGTERM so `stop` is quick.
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => process.exit(0));
}
