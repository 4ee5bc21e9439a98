// keyward's network helper, one small program with three jobs:
//
//   (no arguments)     FORWARDS="<listenPort>=<host>:<port>,..." forwards TCP; with no
//                      FORWARDS it only holds the network namespace (open mode, like a
//                      pod's infra container).
//   probe tcp <host> <port>              exit 0 when a TCP connection succeeds
//   probe http <host> <port> <path>      exit 0 on an HTTP status below 500
//
// In proxy-only mode the agent sits on an internal network, where podman cannot
// publish ports; this helper sits on both the internal and a routable network,
// publishes the agent's port and forwards it. The agent itself keeps no route out.
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

if (command === 'probe') {
  probe(rest[0], rest[1], rest[2], rest[3]);
} else {
  const forwards = process.env['FORWARDS'] ?? '';
  if (forwards) forward(forwards);
  else console.log('network-helper: holding the network namespace');
  setInterval(() => {}, 1 << 30);
  // As PID 1 node gets no default signal handlers: exit on SIGTERM so `stop` is quick.
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => process.exit(0));
}
