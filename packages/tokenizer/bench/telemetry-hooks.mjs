// @ts-check
// CPU the telemetry hooks of the request path cost per request, alone: startRequest + endRequest
// of the built package's telemetry (the span, its export over OTLP/HTTP protobuf to a sink in
// another process, the metrics), with no proxy around them. process.cpuUsage() counts every
// thread of this process (the GC's too), so the figure holds on a loaded machine where
// requests/s do not. Run by run-benchmark.mjs; alone:
//   node bench/telemetry-hooks.mjs <default|every|none> [requests] [dist directory]
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SAMPLING = {
  // No sampling option: the proxy's default (parent-based; one request in ten without trace context).
  default: undefined,
  every: { followParent: true, ratio: 1 },
  none: { followParent: true, ratio: 0 },
};
// Like the proxy at c=64: a few requests per event-loop turn, none carrying trace context (as wrk).
const REQUESTS_PER_TURN = 16;
const defaultDist = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist');

/** Measures one sampling in a fresh process (its heap and JIT state are its own). */
export function measureTelemetryHooks(mode, requests = 300_000, distDirectory = defaultDist) {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--max-semi-space-size=64', fileURLToPath(import.meta.url), mode, String(requests), distDirectory],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let output = '';
    child.stdout.on('data', (chunk) => {
      output += chunk;
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`telemetry-hooks.mjs ${mode} exited with ${code}`));
      else resolve(JSON.parse(output));
    });
  });
}

async function waitForPort(port) {
  for (;;) {
    const open = await new Promise((resolve) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function main(mode, requests, distDirectory) {
  if (!(mode in SAMPLING)) throw new Error(`usage: telemetry-hooks.mjs <${Object.keys(SAMPLING).join('|')}>`);
  const { loadTelemetry } = await import(join(distDirectory, 'telemetry.js'));
  const port = 20000 + Math.floor(Math.random() * 20000);
  const sinkSource = `require('node:http').createServer((req, res) => { req.resume(); req.on('end', () => { res.writeHead(200, { 'content-type': 'application/x-protobuf' }); res.end(); }); }).listen(${port}, '127.0.0.1');`;
  const sink = spawn(process.execPath, ['-e', sinkSource], { stdio: 'ignore' });
  try {
    await waitForPort(port);
    const sampling = SAMPLING[mode];
    const telemetry = await loadTelemetry(
      { endpoint: `http://127.0.0.1:${port}`, ...(sampling ? { sampling } : {}) },
      { credentialNames: new Map([['0123456789abcdef', 'bench credential']]) },
    );
    telemetry.observeInFlight(() => 0);
    const credentials = ['0123456789abcdef'];
    // What the request handler passes: the forwarded headers and the request's audit entry.
    const request = () => {
      const headers = Object.create(null);
      headers.host = 'api.example.com';
      headers.accept = '*/*';
      const span = telemetry.startRequest(headers, 'GET');
      telemetry.endRequest(
        span,
        {
          time: '',
          credentials,
          method: 'GET',
          host: 'api.example.com:8443',
          path: '/v1/charges',
          status: 200,
          durationMs: 0,
          decision: 'forwarded',
        },
        0.0015,
      );
    };
    const run = (count) =>
      new Promise((resolve) => {
        let made = 0;
        const turn = () => {
          for (let index = 0; index < REQUESTS_PER_TURN; index++) request();
          made += REQUESTS_PER_TURN;
          if (made >= count) resolve(undefined);
          else setImmediate(turn);
        };
        turn();
      });
    // The same loop without the hooks: what the harness itself costs, subtracted below.
    const bare = (count) =>
      new Promise((resolve) => {
        let made = 0;
        const turn = () => {
          for (let index = 0; index < REQUESTS_PER_TURN; index++) {
            const headers = Object.create(null);
            headers.host = 'api.example.com';
            headers.accept = '*/*';
            globalThis.benchSink = [headers, { credentials, status: 200 }];
          }
          made += REQUESTS_PER_TURN;
          if (made >= count) resolve(undefined);
          else setImmediate(turn);
        };
        turn();
      });
    const cpuOf = async (work) => {
      const before = process.cpuUsage();
      await work();
      // The last batches are exported within a span export delay (1 s).
      await new Promise((resolve) => setTimeout(resolve, 1500));
      const used = process.cpuUsage(before);
      return (used.user + used.system) / requests;
    };
    await run(50_000); // warm-up: optimised code, the exporter's connection open
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const harness = await cpuOf(() => bare(requests));
    const withHooks = await cpuOf(() => run(requests));
    await telemetry.shutdown();
    process.stdout.write(
      JSON.stringify({ mode, requests, microsecondsPerRequest: Math.max(0, withHooks - harness), harness }),
    );
  } finally {
    sink.kill();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await main(
    process.argv[2] ?? 'default',
    Number(process.argv[3] ?? 300_000),
    process.argv[4] ?? defaultDist,
  );
}
