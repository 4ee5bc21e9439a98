// A small HTTPS API for demos and tests of the credential proxy. It answers 200 only
// when the request carries `Authorization: Bearer <token>` with an accepted token, and
// records the headers of every request so a test can see what the proxy injected.
//
//   LISTEN_PORT (8443)        HTTPS API
//   ADMIN_PORT (9090)         plain HTTP: GET /_received, DELETE /_received, PUT /_tokens
//   TLS_CERT_FILE, TLS_KEY_FILE
//   ACCEPTED_TOKENS_FILE      one accepted bearer token per line (optional)
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';

const listenPort = Number(process.env['LISTEN_PORT'] ?? 8443);
const adminPort = Number(process.env['ADMIN_PORT'] ?? 9090);
const certificateFile = process.env['TLS_CERT_FILE'];
const keyFile = process.env['TLS_KEY_FILE'];
if (!certificateFile || !keyFile) {
  console.error('demo-upstream: set TLS_CERT_FILE and TLS_KEY_FILE to a PEM certificate and key');
  process.exit(2);
}

const parseTokens = (text: string) =>
  new Set(
    text
      .split('\n')
      .map((line) => line.trim())
      .filter(Boolean),
  );
let acceptedTokens = process.env['ACCEPTED_TOKENS_FILE']
  ? parseTokens(readFileSync(process.env['ACCEPTED_TOKENS_FILE'], 'utf8'))
  : new Set<string>();

interface ReceivedRequest {
  time: string;
  method: string;
  url: string;
  host: string | undefined;
  headers: Record<string, string | string[] | undefined>;
  status: number;
}
// Bounded so a long-running demo does not grow without limit.
const received: ReceivedRequest[] = [];
const maximumRecorded = 500;

// Stands in for an OpenAI-compatible model API too (the LiteLLM chain): a chat completion
// gets a fixed assistant message, a model list one model.
function answer(method: string | undefined, url: string | undefined): unknown {
  const path = (url ?? '/').split('?')[0] ?? '/';
  if (method === 'POST' && path.endsWith('/chat/completions')) {
    return {
      id: 'chatcmpl-keyward-demo-upstream',
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model: 'demo-model',
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: 'hello from the demo upstream' },
          finish_reason: 'stop',
        },
      ],
      usage: { prompt_tokens: 1, completion_tokens: 5, total_tokens: 6 },
    };
  }
  if (method === 'GET' && path.endsWith('/models')) {
    return { object: 'list', data: [{ id: 'demo-model', object: 'model', owned_by: 'keyward' }] };
  }
  return { ok: true, path: url };
}

const api = createHttpsServer(
  { cert: readFileSync(certificateFile), key: readFileSync(keyFile) },
  (request, response) => {
    const authorization = request.headers.authorization ?? '';
    const token = authorization.startsWith('Bearer ') ? authorization.slice('Bearer '.length) : '';
    const status = token !== '' && acceptedTokens.has(token) ? 200 : 401;
    received.push({
      time: new Date().toISOString(),
      method: request.method ?? 'GET',
      url: request.url ?? '/',
      host: request.headers.host,
      headers: { ...request.headers },
      status,
    });
    if (received.length > maximumRecorded) received.shift();
    request.resume();
    response.writeHead(status, { 'content-type': 'application/json' });
    response.end(
      JSON.stringify(status === 200 ? answer(request.method, request.url) : { error: 'unauthorized' }),
    );
  },
);

const admin = createHttpServer((request, response) => {
  if (request.url === '/_received' && request.method === 'GET') {
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(JSON.stringify(received));
    return;
  }
  if (request.url === '/_received' && request.method === 'DELETE') {
    received.length = 0;
    response.writeHead(204);
    response.end();
    return;
  }
  if (request.url === '/_tokens' && request.method === 'PUT') {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => {
      body += chunk;
    });
    request.on('end', () => {
      acceptedTokens = parseTokens(body);
      response.writeHead(204);
      response.end();
    });
    return;
  }
  if (request.url === '/health') {
    response.writeHead(200);
    response.end('ok');
    return;
  }
  response.writeHead(404);
  response.end();
});

api.listen(listenPort, '0.0.0.0', () => console.log(`demo-upstream: HTTPS on ${listenPort}`));
admin.listen(adminPort, '0.0.0.0', () => console.log(`demo-upstream: admin on ${adminPort}`));

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => process.exit(0));
}
