// STAND-IN AGENT. Real agent images (OpenClaw) cannot be pulled on keyward's CI
// machines, so this program offers exactly the interface the deployer relies on:
// an HTTP port (PORT, default 18789) with a health path (/health). The image keeps
// `node` so that `verify()` can exec a Node script inside the agent container.
import { createServer } from 'node:http';

const port = Number(process.env['PORT'] ?? 18789);
const startedAt = new Date().toISOString();

const server = createServer((request, response) => {
  if (request.url === '/health') {
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ status: 'ok', startedAt }));
    return;
  }
  if (request.url === '/') {
    response.writeHead(200, { 'content-type': 'text/plain' });
    response.end('keyward stand-in agent\n');
    return;
  }
  response.writeHead(404);
  response.end();
});

server.listen(port, '0.0.0.0', () => {
  console.log(`stand-in agent listening on ${port}`);
});

// As PID 1 node gets no default signal handlers: exit on SIGTERM so `stop` is quick.
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    server.close();
    process.exit(0);
  });
}
