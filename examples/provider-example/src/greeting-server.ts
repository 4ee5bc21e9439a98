/**
 * The greeting service itself: a tiny HTTP server the sidecar's container runs with plain
 * `node`. It is delivered as a file into the container, so any image with Node.js will do.
 */
export const greetingServerSource = `import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
const port = Number(process.env.GREETING_PORT || 4600);
const greeting = readFileSync(process.env.GREETING_FILE || '/etc/greeting/greeting.txt', 'utf8').trim();
createServer((request, response) => {
  if (request.url === '/health') return response.end('ok');
  if (request.url === '/greeting') {
    response.setHeader('content-type', 'application/json');
    return response.end(JSON.stringify({ greeting }));
  }
  response.statusCode = 404;
  response.end('not found');
}).listen(port, '0.0.0.0');
`;
