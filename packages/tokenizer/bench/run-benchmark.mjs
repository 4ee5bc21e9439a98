// @ts-check
// Benchmark: direct HTTPS vs nginx (static Authorization) vs keyward-tokenizer (bearer auth +
// inject) vs Fly.io's tokenizer (the Go reference, same secret), all in front of the same
// loopback HTTPS upstream, measured with wrk in one run.
// Not a test. Run: pnpm --filter @keyward/tokenizer bench   (needs root to apt-get nginx/wrk;
// builds the reference once per machine with scripts/reference-tokenizer/build.sh).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { measureTelemetryHooks } from './telemetry-hooks.mjs';

const packageDirectory = join(dirname(fileURLToPath(import.meta.url)), '..');
const repositoryRoot = join(packageDirectory, '..', '..');
const DURATION = Number(process.env.BENCH_DURATION_SECONDS ?? 10);
const CONCURRENCY = (process.env.BENCH_CONCURRENCY ?? '64,256').split(',').map(Number);
// Each worker count is measured twice: nginx with that many worker processes, then this
// proxy with that many cluster workers; ratios compare the two (same worker count).
const WORKER_COUNTS = (process.env.BENCH_WORKERS ?? '1,2').split(',').map(Number);
const IDLE_CLIENTS = Number(process.env.BENCH_IDLE_CLIENTS ?? 1000);
// The shared VMs this runs on are noisy: nginx and the proxy are measured in alternating
// rounds and the medians are compared (the per-round ratios are printed too).
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3));
// Another build of the CLI to measure (for before/after comparisons); default: this package's dist.
const CLI = process.env.BENCH_CLI ?? join(packageDirectory, 'dist', 'cli.js');
const OPEN_KEY = '0d88a36d5c41d5c3d97b929fdebf0bea57e5fb4616da88121ba972431a161cab';
// The same Node options as the keyward-tokenizer image (packages/images): a 64 MiB young
// generation keeps request objects out of old space. BENCH_NODE_OPTIONS='' measures without.
const NODE_OPTIONS = process.env.BENCH_NODE_OPTIONS ?? '--max-semi-space-size=64';
// The reference closes every client connection after its answer; these concurrencies are also
// measured with a client that closes its connection each time (both sides then pay the handshake).
const CLOSE_CONCURRENCY = (process.env.BENCH_CLOSE_CONCURRENCY ?? '64')
  .split(',')
  .filter(Boolean)
  .map(Number);
// What OpenTelemetry costs (spans and metrics exported over OTLP/HTTP protobuf to a local sink), at
// these concurrencies, 1 worker: one proxy under one constant wrk load, its telemetry switched on
// and off every BENCH_TELEMETRY_PHASE_MS (bench/telemetry-toggle.mjs), BENCH_TELEMETRY_PAIRS
// on/off pairs; with the default sampling, then with every request traced.
const TELEMETRY_CONCURRENCY = (process.env.BENCH_TELEMETRY_CONCURRENCY ?? '64')
  .split(',')
  .filter(Boolean)
  .map(Number);
const TELEMETRY_PAIRS = Math.max(1, Number(process.env.BENCH_TELEMETRY_PAIRS ?? 20));
const TELEMETRY_PHASE_MS = Number(process.env.BENCH_TELEMETRY_PHASE_MS ?? 1000);
const TELEMETRY_SETTLE_MS = Number(process.env.BENCH_TELEMETRY_SETTLE_MS ?? 200);
const TELEMETRY_WARMUP_MS = 3000;
// Which samplings: default (10%), every (every request traced), none (metrics only).
const TELEMETRY_VARIANTS = (process.env.BENCH_TELEMETRY_VARIANTS ?? 'default,every,none').split(',');
// BENCH_TELEMETRY_ONLY=1: only the OpenTelemetry measurement (no nginx rounds, no reference).
const TELEMETRY_ONLY = process.env.BENCH_TELEMETRY_ONLY === '1';
const CLOCK_TICKS = 100;
// BENCH_DIAGNOSTICS=1: the proxy runs with bench/event-loop-probe.cjs, and every round of it
// reports its event-loop delay and GC pauses (a timer every millisecond: not for the figures).
const DIAGNOSTICS = process.env.BENCH_DIAGNOSTICS === '1';
const diagnostics = new Map();

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const work = mkdtempSync(join(tmpdir(), 'keyward-bench-'));
const file = (name) => join(work, name);
const children = [];

function ensureTools() {
  const missing = [];
  if (!existsSync('/usr/sbin/nginx')) missing.push('nginx-light');
  if (!existsSync('/usr/bin/wrk')) missing.push('wrk');
  if (missing.length === 0) return;
  console.log(`installing ${missing.join(' ')} with apt-get`);
  execFileSync('apt-get', ['update'], { stdio: 'inherit' });
  execFileSync('apt-get', ['install', '-y', ...missing], {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
}

function makeCertificates() {
  const openssl = (...args) => execFileSync('openssl', args, { stdio: 'pipe' });
  openssl(
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=bench CA',
    '-keyout',
    file('ca.key'),
    '-out',
    file('ca.pem'),
  );
  openssl(
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-subj',
    '/CN=localhost',
    '-keyout',
    file('server.key'),
    '-out',
    file('server.csr'),
  );
  writeFileSync(file('ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  openssl(
    'x509',
    '-req',
    '-in',
    file('server.csr'),
    '-CA',
    file('ca.pem'),
    '-CAkey',
    file('ca.key'),
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    file('ext.cnf'),
    '-out',
    file('server.pem'),
  );
}

/** A base port whose next `size` ports are all free now (other benchmarks and tests share the VM). */
async function freePortBlock(size) {
  const { createServer } = await import('node:net');
  const free = (port) =>
    new Promise((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
  for (;;) {
    const base = 20000 + Math.floor(Math.random() * 20000);
    let ok = true;
    for (let port = base; ok && port < base + size; port++) ok = await free(port);
    if (ok) return base;
  }
}

async function waitForPort(port) {
  for (let attempt = 0; attempt < 100; attempt++) {
    const ok = await new Promise((resolve) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`nothing listening on ${port}`);
}

function startNginx(name, serverBlock, workers) {
  const config = `worker_processes ${workers};
daemon off;
pid ${file(`${name}.pid`)};
error_log ${file(`${name}.error.log`)} warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${work};
  proxy_temp_path ${work};
  fastcgi_temp_path ${work};
  uwsgi_temp_path ${work};
  scgi_temp_path ${work};
  keepalive_requests 1000000;
  ${serverBlock}
}
`;
  writeFileSync(file(`${name}.conf`), config);
  const child = spawn('/usr/sbin/nginx', ['-c', file(`${name}.conf`), '-p', work], { stdio: 'inherit' });
  children.push(child);
  return child;
}

function parseDuration(text) {
  const match = /^([\d.]+)(us|ms|s|m)$/.exec(text);
  if (!match) return Number.NaN;
  const value = Number(match[1]);
  return { us: value / 1000, ms: value, s: value * 1000, m: value * 60_000 }[match[2]];
}

/** CPU seconds (user + system) the processes have used so far. */
function cpuSeconds(pids) {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {}
  }
  return ticks / CLOCK_TICKS;
}

/** One wrk run; `pids()` lists the processes whose CPU per request is measured. */
function wrk(url, concurrency, script, pids = () => [], seconds = DURATION) {
  const args = ['-t', '2', '-c', String(concurrency), '-d', `${seconds}s`, '--latency', '--timeout', '10s'];
  if (script) args.push('-s', script);
  args.push(url);
  const cpuBefore = cpuSeconds(pids());
  const result = spawnSync('/usr/bin/wrk', args, { encoding: 'utf8' });
  const cpu = cpuSeconds(pids()) - cpuBefore;
  const output = result.stdout;
  const requests = Number(/(\d+) requests in/.exec(output)?.[1] ?? Number.NaN);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(output)?.[1] ?? Number.NaN);
  const p50 = parseDuration(/\s50%\s+(\S+)/.exec(output)?.[1] ?? '');
  const p99 = parseDuration(/\s99%\s+(\S+)/.exec(output)?.[1] ?? '');
  const errors = /Non-2xx or 3xx responses: (\d+)/.exec(output)?.[1];
  const socketErrors = /Socket errors: (.*)/.exec(output)?.[1];
  if (errors || socketErrors)
    console.log(
      `  note: ${url} c=${concurrency}: non-2xx=${errors ?? 0} socket errors: ${socketErrors ?? 'none'}`,
    );
  return { rps, p50, p99, cpuMicroseconds: (cpu / requests) * 1e6 };
}

/** The proxy's event-loop delay and GC pauses since the last call (BENCH_DIAGNOSTICS=1). */
function roundDiagnostics(pid) {
  if (!DIAGNOSTICS) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), 2000);
    diagnostics.set(pid, (report) => {
      clearTimeout(timer);
      diagnostics.delete(pid);
      resolve(report);
    });
    process.kill(pid, 'SIGUSR2');
  });
}

function warmUp(url, script) {
  const args = ['-t', '2', '-c', '32', '-d', '2s'];
  if (script) args.push('-s', script);
  spawnSync('/usr/bin/wrk', [...args, url]);
}

/** Resident memory split: anonymous (the process's own) and file-backed (mapped executable and libraries). */
function rssSplitOf(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const field = (name) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1] ?? Number.NaN) / 1024;
    return { total: field('VmRSS'), anonymous: field('RssAnon'), file: field('RssFile') };
  } catch {
    return { total: Number.NaN, anonymous: Number.NaN, file: Number.NaN };
  }
}

function rssOf(pids) {
  let kib = 0;
  for (const pid of pids) {
    try {
      kib += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
    } catch {}
  }
  return kib / 1024;
}

function childPids(pid) {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

/**
 * An OTLP/HTTP sink in its own process (wrk blocks this one): answers every export with an empty
 * success response, as a collector's receiver does, and keeps nothing.
 */
async function startOtlpSink(port) {
  const source = `require('node:http').createServer((req, res) => { req.resume(); req.on('end', () => { res.writeHead(200, { 'content-type': 'application/x-protobuf' }); res.end(); }); }).listen(${port}, '127.0.0.1');`;
  const child = spawn(process.execPath, ['-e', source], { stdio: ['ignore', 'ignore', 'inherit'] });
  children.push(child);
  await waitForPort(port);
  return child;
}

async function startTokenizer(port, workers, extraEnv = {}, extraNodeOptions = '') {
  const probe = DIAGNOSTICS && workers === 1 && !extraNodeOptions;
  const nodeOptions = extraNodeOptions ? `${NODE_OPTIONS} ${extraNodeOptions}` : NODE_OPTIONS;
  const child = spawn(process.execPath, [CLI, 'serve'], {
    env: {
      ...process.env,
      ...extraEnv,
      OPEN_KEY,
      LISTEN_ADDRESS: `127.0.0.1:${port}`,
      TOKENIZER_ALLOW_PRIVATE_UPSTREAMS: 'true',
      TOKENIZER_UPSTREAM_CA_FILE: file('ca.pem'),
      TOKENIZER_WORKERS: String(workers),
      NODE_OPTIONS: probe
        ? `${nodeOptions} --require ${join(packageDirectory, 'bench', 'event-loop-probe.cjs')}`
        : nodeOptions,
    },
    // Audit lines stay on (as in production) and go to /dev/null.
    stdio: ['ignore', 'ignore', probe ? 'pipe' : 'inherit'],
  });
  if (probe) {
    let partial = '';
    child.stderr.on('data', (chunk) => {
      const lines = `${partial}${chunk}`.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        if (line.startsWith('BENCH_DIAGNOSTICS ')) diagnostics.get(child.pid)?.(JSON.parse(line.slice(18)));
        else process.stderr.write(`${line}\n`);
      }
    });
  }
  children.push(child);
  await waitForPort(port);
  await sleep(300 * workers);
  return child;
}

/** The q-quantile (0–1) of the finite values, interpolated. */
function quantile(values, q) {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const position = (sorted.length - 1) * q;
  const below = Math.floor(position);
  const above = Math.min(below + 1, sorted.length - 1);
  return sorted[below] + (sorted[above] - sorted[below]) * (position - below);
}

/**
 * OpenTelemetry's cost in one proxy process under one constant wrk load: bench/telemetry-toggle.mjs
 * switches the proxy's telemetry on and off and records every phase; adjacent on/off phases make a
 * pair. Returns, per sampling variant and concurrency, the pairs' ratios and the sums.
 */
async function measureTelemetry({ variants, port, url }) {
  const results = [];
  for (const concurrency of TELEMETRY_CONCURRENCY) {
    for (const variant of variants) {
      const toggleFile = file(`toggle-${variant.hooks}-${concurrency}.jsonl`);
      const loadBefore = loadavg();
      const child = await startTokenizer(
        port,
        1,
        {
          ...variant.env,
          BENCH_TOGGLE_DIST: dirname(CLI),
          BENCH_TOGGLE_FILE: toggleFile,
          BENCH_TOGGLE_PHASE_MS: String(TELEMETRY_PHASE_MS),
          BENCH_TOGGLE_SETTLE_MS: String(TELEMETRY_SETTLE_MS),
          BENCH_TOGGLE_WARMUP_MS: String(TELEMETRY_WARMUP_MS),
        },
        `--import ${join(packageDirectory, 'bench', 'telemetry-toggle.mjs')}`,
      );
      // Phases run a little longer than their nominal length (exports, timers on a busy loop).
      const seconds =
        Math.ceil(((TELEMETRY_WARMUP_MS + 2 * TELEMETRY_PAIRS * TELEMETRY_PHASE_MS) * 1.15) / 1000) + 2;
      const overall = wrk(url, concurrency, file('tokenizer.lua'), () => [child.pid], seconds);
      const wrkEnded = Date.now();
      const loadAfter = loadavg();
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
      const phases = readFileSync(toggleFile, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line))
        // A phase that ended after the load stopped is not a loaded phase.
        .filter((phase) => phase.endedAt <= wrkEnded && phase.requests > 0);
      const pairs = [];
      for (const on of phases) {
        const off = phases.find((phase) => phase.phase === on.phase + 1);
        if (!on.telemetry || off === undefined || pairs.length >= TELEMETRY_PAIRS) continue;
        pairs.push({ on, off });
      }
      const rate = (phase) => (phase.requests * 1000) / phase.ms;
      const cpu = (phase) => phase.cpuMicroseconds / phase.requests;
      const sum = (list, key) => list.reduce((total, phase) => total + phase[key], 0);
      const total = (side) => {
        const list = pairs.map((pair) => pair[side]);
        return {
          rps: (sum(list, 'requests') * 1000) / sum(list, 'ms'),
          cpuMicroseconds: sum(list, 'cpuMicroseconds') / sum(list, 'requests'),
        };
      };
      results.push({
        label: variant.label,
        hooks: variant.hooks,
        concurrency,
        seconds,
        overall,
        loadBefore,
        loadAfter,
        pairs: pairs.map(({ on, off }) => ({
          rps: rate(on) / rate(off),
          cpu: cpu(on) / cpu(off),
          onCpu: cpu(on),
          offCpu: cpu(off),
        })),
        on: total('on'),
        off: total('off'),
      });
    }
  }
  // The hooks alone, in a process of their own, for comparison.
  const hooks = {};
  for (const result of results) {
    hooks[result.hooks] ??= await measureTelemetryHooks(result.hooks, undefined, dirname(CLI));
    result.hooksMicroseconds = hooks[result.hooks].microsecondsPerRequest;
  }
  return results;
}

function printTelemetry(results, median) {
  if (results.length === 0) return;
  const format = (value, digits = 2) => (Number.isFinite(value) ? value.toFixed(digits) : 'n/a');
  const load = (values) => values.map((value) => value.toFixed(2)).join(' ');
  console.log(
    `\nOpenTelemetry on vs off in one proxy (1 worker, spans + metrics over OTLP/HTTP protobuf to a sink on loopback) under one constant wrk -t2 load; telemetry switched every ${TELEMETRY_PHASE_MS} ms (the first ${TELEMETRY_SETTLE_MS} ms of each phase not measured), ${TELEMETRY_PAIRS} on/off pairs per line; proxy NODE_OPTIONS=${JSON.stringify(NODE_OPTIONS)}, ${new Date().toISOString()}`,
  );
  console.log(
    '| sampling | c | req/s on ÷ off: median of pairs (p25–p75) | all pairs summed | throughput cost | CPU µs/req off → on (summed) | CPU on ÷ off: median (p25–p75) | hooks alone µs/req | load average before → after |',
  );
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const result of results) {
    const rps = result.pairs.map((pair) => pair.rps);
    const cpu = result.pairs.map((pair) => pair.cpu);
    const rpsMedian = median(rps);
    console.log(
      `| ${result.label} | ${result.concurrency} | ${format(rpsMedian)} (${format(quantile(rps, 0.25))}–${format(quantile(rps, 0.75))}) | ${format(result.on.rps / result.off.rps)} | ${format((1 - rpsMedian) * 100, 1)}% | ${format(result.off.cpuMicroseconds, 1)} → ${format(result.on.cpuMicroseconds, 1)} | ${format(median(cpu))}× (${format(quantile(cpu, 0.25))}–${format(quantile(cpu, 0.75))}) | ${format(result.hooksMicroseconds)} | ${load(result.loadBefore)} → ${load(result.loadAfter)} |`,
    );
  }
  for (const result of results) {
    console.log(
      `  ${result.label}, c=${result.concurrency}: ${result.pairs.length} pairs (wrk ${format(result.overall.rps, 0)} req/s over ${result.seconds} s); per pair req/s on÷off; CPU µs/req off → on:`,
    );
    console.log(
      `    ${result.pairs.map((pair) => `${format(pair.rps)}; ${format(pair.offCpu, 0)} → ${format(pair.onCpu, 0)}`).join('  |  ')}`,
    );
  }
}

/** The reference's binary, or undefined where the module proxy refuses its pinned commit (exit 3). */
function buildReference() {
  try {
    const output = execFileSync(
      'bash',
      [join(repositoryRoot, 'scripts', 'reference-tokenizer', 'build.sh')],
      {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    return join(output.trim().split('\n').at(-1), 'tokenizer');
  } catch (error) {
    if (error.status === 3) {
      console.log('reference tokenizer: not available on this machine; its rows are left out.');
      return undefined;
    }
    throw error;
  }
}

/** Fly.io's tokenizer (Go; GOMAXPROCS = all cores), trusting the bench CA through SSL_CERT_FILE. */
async function startReference(binary, port) {
  const child = spawn(binary, ['serve'], {
    env: {
      PATH: process.env.PATH,
      OPEN_KEY,
      LISTEN_ADDRESS: `127.0.0.1:${port}`,
      SSL_CERT_FILE: file('ca.pem'),
    },
    // Its one log line per request goes to /dev/null, like our audit lines.
    stdio: ['ignore', 'ignore', 'ignore'],
  });
  children.push(child);
  await waitForPort(port);
  return child;
}

/** RSS of a proxy holding IDLE_CLIENTS connections that have not sent a request yet. */
async function connectedIdleRss(pid, port) {
  const before = rssOf([pid]);
  const splitBefore = rssSplitOf(pid);
  const sockets = [];
  for (let index = 0; index < IDLE_CLIENTS; index++) {
    sockets.push(
      await new Promise((resolve, reject) => {
        const socket = connect(port, '127.0.0.1', () => resolve(socket));
        socket.on('error', reject);
      }),
    );
  }
  await sleep(1000);
  const after = rssOf([pid]);
  const splitAfter = rssSplitOf(pid);
  for (const socket of sockets) socket.destroy();
  return { before, after, splitBefore, splitAfter };
}

/** A Node process that does nothing (the floor any Node server starts from), with the proxy's Node options. */
async function idleNodeRss() {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], {
    env: { PATH: process.env.PATH, NODE_OPTIONS },
    stdio: 'ignore',
  });
  children.push(child);
  await sleep(1000);
  const split = rssSplitOf(child.pid);
  child.kill('SIGTERM');
  await new Promise((resolve) => child.once('exit', resolve));
  return split;
}

async function idleKeepAliveRss(proxyPort, upstreamPort, token) {
  const child = await startTokenizer(proxyPort, 1);
  const before = rssOf([child.pid]);
  const request = `GET http://127.0.0.1:${upstreamPort}/ HTTP/1.1\r\nHost: 127.0.0.1:${upstreamPort}\r\nProxy-Tokenizer: ${token}\r\nProxy-Authorization: Bearer trustno1\r\n\r\n`;
  const sockets = [];
  for (let index = 0; index < IDLE_CLIENTS; index++) {
    sockets.push(
      await new Promise((resolve, reject) => {
        const socket = connect(proxyPort, '127.0.0.1', () => socket.write(request));
        socket.once('data', () => resolve(socket));
        socket.on('error', reject);
      }),
    );
  }
  await sleep(1000);
  const after = rssOf([child.pid]);
  for (const socket of sockets) socket.destroy();
  child.kill('SIGTERM');
  await new Promise((resolve) => child.once('exit', resolve));
  return { before, after };
}

async function main() {
  ensureTools();
  const referenceBinary = TELEMETRY_ONLY ? undefined : buildReference();
  execFileSync('pnpm', ['run', 'build'], { cwd: packageDirectory, stdio: 'inherit' });
  const library = await import(join(packageDirectory, 'dist', 'index.js'));
  makeCertificates();

  // Crypto throughput (one core, in this process).
  const sealKey = library.sealKeyFromOpenKey(OPEN_KEY);
  const openKey = library.OpenKey.fromHex(OPEN_KEY);
  const secret = {
    processor: { type: 'inject', token: 'bench-upstream-token' },
    auth: { type: 'bearer', digest: library.bearerDigest('trustno1') },
  };
  const measure = (fn) => {
    for (let index = 0; index < 200; index++) fn();
    const start = performance.now();
    let count = 0;
    while (performance.now() - start < 1000) {
      fn();
      count++;
    }
    return count / ((performance.now() - start) / 1000);
  };
  const token = library.sealSecret(secret, sealKey);
  const sealsPerSecond = measure(() => library.sealSecret(secret, sealKey));
  const opensPerSecond = measure(() => library.openSecret(token, openKey));

  const upstreamPort = await freePortBlock(16);
  const proxyPort = upstreamPort + 1;
  const referencePort = upstreamPort + 2;
  const telemetryProxyPort = upstreamPort + 3;
  const otlpSinkPort = upstreamPort + 4;
  const telemetryEnv = {
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${otlpSinkPort}`,
    OTEL_SERVICE_NAME: 'bench-tokenizer',
  };
  // wrk sends no traceparent: the default sampling traces one request in ten; parentbased_always_on
  // traces every request (as a caller that samples all its traces would). Metrics count every request.
  // (c): metrics and the sampling decision only, no span: what is left when no request is traced.
  const telemetryVariants = [
    { label: '(a) default sampling (10%)', hooks: 'default', env: telemetryEnv },
    {
      label: '(b) every request traced',
      hooks: 'every',
      env: { ...telemetryEnv, OTEL_TRACES_SAMPLER: 'parentbased_always_on' },
    },
    {
      label: '(c) no request traced, metrics only',
      hooks: 'none',
      env: { ...telemetryEnv, OTEL_TRACES_SAMPLER: 'parentbased_always_off' },
    },
  ].filter((variant) => TELEMETRY_VARIANTS.includes(variant.hooks));
  if (TELEMETRY_CONCURRENCY.length > 0) await startOtlpSink(otlpSinkPort);
  const nginxPortFor = (workers) => upstreamPort + 10 + workers;
  startNginx(
    'upstream',
    `server {
    listen 127.0.0.1:${upstreamPort} ssl;
    ssl_certificate ${file('server.pem')};
    ssl_certificate_key ${file('server.key')};
    location / { return 200 "ok\\n"; }
  }`,
    1,
  );
  for (const workers of WORKER_COUNTS) {
    startNginx(
      `proxy-${workers}`,
      `upstream backend { server 127.0.0.1:${upstreamPort}; keepalive 256; }
  server {
    listen 127.0.0.1:${nginxPortFor(workers)};
    location / {
      proxy_pass https://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host 127.0.0.1:${upstreamPort};
      proxy_set_header Authorization "Bearer bench-upstream-token";
      proxy_ssl_trusted_certificate ${file('ca.pem')};
      proxy_ssl_verify on;
      proxy_ssl_name localhost;
      proxy_ssl_session_reuse on;
    }
  }`,
      workers,
    );
  }
  await waitForPort(upstreamPort);
  for (const workers of WORKER_COUNTS) await waitForPort(nginxPortFor(workers));
  const loadBefore = loadavg();
  writeFileSync(
    file('tokenizer.lua'),
    `wrk.method = "GET"
wrk.path = "http://127.0.0.1:${upstreamPort}/"
wrk.headers["Host"] = "127.0.0.1:${upstreamPort}"
wrk.headers["Proxy-Tokenizer"] = "${token}"
wrk.headers["Proxy-Authorization"] = "Bearer trustno1"
`,
  );
  // The same request from a client that closes its connection after each answer.
  writeFileSync(
    file('tokenizer-close.lua'),
    `${readFileSync(file('tokenizer.lua'), 'utf8')}wrk.headers["Connection"] = "close"\n`,
  );
  writeFileSync(file('close.lua'), 'wrk.headers["Connection"] = "close"\n');

  const median = (values) => {
    const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
    if (sorted.length === 0) return Number.NaN;
    const middle = Math.floor(sorted.length / 2);
    return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
  };
  const summarise = (results) => ({
    rps: median(results.map((result) => result.rps)),
    p50: median(results.map((result) => result.p50)),
    p99: median(results.map((result) => result.p99)),
    cpuMicroseconds: median(results.map((result) => result.cpuMicroseconds)),
  });
  const nginxPids = (workers) => () => {
    try {
      const master = Number(readFileSync(file(`proxy-${workers}.pid`), 'utf8').trim());
      return childPids(master);
    } catch {
      return [];
    }
  };
  const rows = [];
  const diagnosticRows = [];
  const roundRatios = [];
  const telemetry = await measureTelemetry({
    variants: telemetryVariants,
    port: telemetryProxyPort,
    url: `http://127.0.0.1:${telemetryProxyPort}`,
    median,
  });
  if (TELEMETRY_ONLY) {
    printTelemetry(telemetry, median);
    return;
  }
  for (const concurrency of CONCURRENCY) {
    const directUrl = `https://127.0.0.1:${upstreamPort}/`;
    warmUp(directUrl);
    const direct = [];
    for (let round = 0; round < ROUNDS; round++) direct.push(wrk(directUrl, concurrency));
    rows.push({ name: 'direct https', concurrency, ...summarise(direct) });
    for (const workers of WORKER_COUNTS) {
      const plural = workers > 1 ? 's' : '';
      const nginxUrl = `http://127.0.0.1:${nginxPortFor(workers)}/`;
      const proxyUrl = `http://127.0.0.1:${proxyPort}`;
      const child = await startTokenizer(proxyPort, workers);
      const reference = referenceBinary ? await startReference(referenceBinary, referencePort) : undefined;
      const referenceUrl = `http://127.0.0.1:${referencePort}`;
      const proxyPids = () => [child.pid, ...childPids(child.pid)];
      const nginxResults = [];
      const proxyResults = [];
      const referenceResults = [];
      let rss = 0;
      let referenceRss = 0;
      for (let round = 0; round < ROUNDS; round++) {
        warmUp(nginxUrl);
        nginxResults.push(wrk(nginxUrl, concurrency, undefined, nginxPids(workers)));
        warmUp(proxyUrl, file('tokenizer.lua'));
        await roundDiagnostics(child.pid);
        proxyResults.push(wrk(proxyUrl, concurrency, file('tokenizer.lua'), proxyPids));
        const report = await roundDiagnostics(child.pid);
        if (report) diagnosticRows.push({ concurrency, round: round + 1, ...proxyResults.at(-1), report });
        rss = Math.max(rss, rssOf(proxyPids()));
        if (reference) {
          warmUp(referenceUrl, file('tokenizer.lua'));
          referenceResults.push(wrk(referenceUrl, concurrency, file('tokenizer.lua'), () => [reference.pid]));
          referenceRss = Math.max(referenceRss, rssOf([reference.pid]));
        }
      }
      roundRatios.push({
        label: `c=${concurrency}, ${workers} worker${plural}`,
        ratios: proxyResults.map((result, round) => ({
          rps: result.rps / (nginxResults[round]?.rps ?? Number.NaN),
          p99: result.p99 / (nginxResults[round]?.p99 ?? Number.NaN),
          referenceRps: result.rps / (referenceResults[round]?.rps ?? Number.NaN),
          referenceP99: result.p99 / (referenceResults[round]?.p99 ?? Number.NaN),
        })),
      });
      rows.push({
        name: `nginx (${workers} worker${plural})`,
        concurrency,
        workers,
        nginx: true,
        ...summarise(nginxResults),
      });
      rows.push({
        name: `keyward-tokenizer (${workers} worker${plural})`,
        concurrency,
        workers,
        rss,
        ...summarise(proxyResults),
      });
      if (reference) {
        rows.push({
          name: `Fly.io tokenizer (Go), ${workers}-worker rounds`,
          concurrency,
          workers,
          reference: true,
          rss: referenceRss,
          ...summarise(referenceResults),
        });
      }
      for (const running of [child, reference].filter(Boolean)) {
        running.kill('SIGTERM');
        await new Promise((resolve) => running.once('exit', resolve));
      }
      await sleep(300);
    }
  }

  // A client that closes its connection after every answer, as the reference makes its clients
  // do anyway: both proxies then pay a client connection per request (1 worker).
  const closeRows = [];
  for (const concurrency of referenceBinary ? CLOSE_CONCURRENCY : []) {
    const child = await startTokenizer(proxyPort, 1);
    const reference = await startReference(referenceBinary, referencePort);
    const results = { nginx: [], keyward: [], reference: [] };
    const nginxUrl = `http://127.0.0.1:${nginxPortFor(WORKER_COUNTS[0])}/`;
    for (let round = 0; round < ROUNDS; round++) {
      results.nginx.push(wrk(nginxUrl, concurrency, file('close.lua'), nginxPids(WORKER_COUNTS[0])));
      results.keyward.push(
        wrk(`http://127.0.0.1:${proxyPort}`, concurrency, file('tokenizer-close.lua'), () => [
          child.pid,
          ...childPids(child.pid),
        ]),
      );
      results.reference.push(
        wrk(`http://127.0.0.1:${referencePort}`, concurrency, file('tokenizer-close.lua'), () => [
          reference.pid,
        ]),
      );
    }
    closeRows.push({
      concurrency,
      nginx: summarise(results.nginx),
      keyward: summarise(results.keyward),
      reference: summarise(results.reference),
    });
    for (const running of [child, reference]) {
      running.kill('SIGTERM');
      await new Promise((resolve) => running.once('exit', resolve));
    }
    await sleep(300);
  }
  const loadAfter = loadavg();
  const idle = await idleKeepAliveRss(proxyPort, upstreamPort, token);
  const idleConnected = {};
  const nodeFloor = await idleNodeRss();
  {
    const child = await startTokenizer(proxyPort, 1);
    idleConnected.keyward = await connectedIdleRss(child.pid, proxyPort);
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
    if (referenceBinary) {
      const reference = await startReference(referenceBinary, referencePort);
      await sleep(300);
      idleConnected.reference = await connectedIdleRss(reference.pid, referencePort);
      reference.kill('SIGTERM');
      await new Promise((resolve) => reference.once('exit', resolve));
    }
  }

  const format = (value, digits = 2) => (Number.isFinite(value) ? value.toFixed(digits) : 'n/a');
  console.log(
    `\nkeyward-tokenizer benchmark — wrk -t2 -d${DURATION}s, loopback HTTPS upstream (nginx, 1 worker), medians of ${ROUNDS} alternating round(s), ${new Date().toISOString()}`,
  );
  console.log(
    `proxy started with NODE_OPTIONS=${JSON.stringify(NODE_OPTIONS)}; load average before ${loadBefore.map((value) => value.toFixed(2)).join(' ')}, after ${loadAfter.map((value) => value.toFixed(2)).join(' ')} — ratios compare equal worker counts`,
  );
  console.log(
    '| target | c | req/s | p50 ms | p99 ms | CPU µs/req | RSS MiB | req/s vs nginx | p99 vs nginx | req/s vs reference | p99 vs reference |',
  );
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const row of rows) {
    // Direct rows are compared with nginx and the reference of the first worker count.
    const workers = row.workers ?? WORKER_COUNTS[0];
    const find = (kind) =>
      rows.find(
        (candidate) =>
          candidate[kind] && candidate.concurrency === row.concurrency && candidate.workers === workers,
      );
    const nginx = find('nginx');
    const reference = find('reference');
    console.log(
      `| ${row.name} | ${row.concurrency} | ${format(row.rps, 0)} | ${format(row.p50)} | ${format(row.p99)} | ${format(row.cpuMicroseconds, 0)} | ${row.rss ? format(row.rss, 0) : ''} | ${format(row.rps / nginx.rps)} | ${format(row.p99 / nginx.p99)} | ${format(row.rps / reference?.rps)} | ${format(row.p99 / reference?.p99)} |`,
    );
  }
  console.log(
    '\nper-round ratios of keyward-tokenizer to nginx (req/s; p99) and to the reference (req/s; p99):',
  );
  for (const { label, ratios } of roundRatios) {
    console.log(
      `  ${label}: ${ratios.map((ratio) => `${format(ratio.rps)}; ${format(ratio.p99)} / ${format(ratio.referenceRps)}; ${format(ratio.referenceP99)}`).join('  |  ')}`,
    );
  }
  printTelemetry(telemetry, median);
  if (closeRows.length > 0) {
    console.log('\nclient closes its connection after every answer (Connection: close), 1 worker:');
    console.log(
      '| target | c | req/s | p50 ms | p99 ms | CPU µs/req | req/s vs reference | p99 vs reference |',
    );
    console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
    for (const row of closeRows) {
      for (const [name, result] of [
        ['nginx (close)', row.nginx],
        ['keyward-tokenizer (close)', row.keyward],
        ['Fly.io tokenizer (Go)', row.reference],
      ]) {
        console.log(
          `| ${name} | ${row.concurrency} | ${format(result.rps, 0)} | ${format(result.p50)} | ${format(result.p99)} | ${format(result.cpuMicroseconds, 0)} | ${format(result.rps / row.reference.rps)} | ${format(result.p99 / row.reference.p99)} |`,
        );
      }
    }
  }
  console.log(
    `\nseals/s: ${format(sealsPerSecond, 0)}   opens/s (openSecret, no cache): ${format(opensPerSecond, 0)}`,
  );
  console.log(
    `RSS with ${IDLE_CLIENTS} idle keep-alive clients (each after one request): keyward-tokenizer ${format(idle.after, 1)} MiB (${format(idle.before, 1)} MiB before); the reference closes connections after each answer, so it has none`,
  );
  console.log(
    `RSS with ${IDLE_CLIENTS} connected clients that have not sent a request yet: keyward-tokenizer ${format(idleConnected.keyward.after, 1)} MiB (${format(idleConnected.keyward.before, 1)} before), Fly.io tokenizer ${format(idleConnected.reference?.after, 1)} MiB (${format(idleConnected.reference?.before, 1)} before): ratio ${format(idleConnected.keyward.after / idleConnected.reference?.after)}`,
  );
  const split = (value) =>
    value
      ? `${format(value.total, 1)} = ${format(value.anonymous, 1)} anonymous + ${format(value.file, 1)} file-backed`
      : 'n/a';
  console.log(
    'resident memory split (MiB; file-backed: pages of the executable and libraries, shared between processes):',
  );
  console.log(`  a Node process doing nothing (same Node options): ${split(nodeFloor)}`);
  console.log(
    `  keyward-tokenizer: ${split(idleConnected.keyward.splitBefore)} before, ${split(idleConnected.keyward.splitAfter)} with ${IDLE_CLIENTS} connected clients (+${format(idleConnected.keyward.splitAfter.anonymous - idleConnected.keyward.splitBefore.anonymous, 1)} anonymous)`,
  );
  if (idleConnected.reference)
    console.log(
      `  Fly.io tokenizer: ${split(idleConnected.reference.splitBefore)} before, ${split(idleConnected.reference.splitAfter)} with ${IDLE_CLIENTS} connected clients (+${format(idleConnected.reference.splitAfter.anonymous - idleConnected.reference.splitBefore.anonymous, 1)} anonymous)`,
    );
  if (diagnosticRows.length > 0) {
    console.log(
      '\nkeyward-tokenizer (1 worker) per round: event-loop delay and GC pauses (BENCH_DIAGNOSTICS=1):',
    );
    for (const row of diagnosticRows) {
      const gc = Object.entries(row.report.gc)
        .map(([kind, value]) => `${kind} ${value.count}× total ${value.totalMs} ms max ${value.maxMs} ms`)
        .join('; ');
      console.log(
        `  c=${row.concurrency} round ${row.round}: p99 ${format(row.p99)} ms; loop delay p50 ${row.report.loopDelayMs.p50} p99 ${row.report.loopDelayMs.p99} max ${row.report.loopDelayMs.max} ms; ${gc || 'no GC'}`,
      );
    }
  }
  // For the root `pnpm bench` table (scripts/reliability/run-suites.mjs): JSON lines, one figure each.
  const figuresFile = process.env.BENCH_FIGURES_FILE;
  if (figuresFile) {
    const figures = [];
    for (const row of rows) {
      const nginx = rows.find(
        (candidate) =>
          candidate.nginx &&
          candidate.concurrency === row.concurrency &&
          candidate.workers === (row.workers ?? WORKER_COUNTS[0]),
      );
      const what = `${row.name}, c=${row.concurrency}`;
      figures.push({ figure: `${what}: req/s`, value: Math.round(row.rps) });
      figures.push({ figure: `${what}: p99`, value: row.p99, unit: 'ms' });
      if (!row.nginx && nginx)
        figures.push({ figure: `${what}: req/s vs nginx`, value: row.rps / nginx.rps });
    }
    figures.push({ figure: 'seals/s', value: Math.round(sealsPerSecond) });
    figures.push({ figure: 'opens/s', value: Math.round(opensPerSecond) });
    figures.push({ figure: `RSS, ${IDLE_CLIENTS} idle keep-alive clients`, value: idle.after, unit: 'MiB' });
    figures.push({ figure: 'load average (1 min) before', value: loadBefore[0] });
    appendFileSync(figuresFile, figures.map((figure) => `${JSON.stringify(figure)}\n`).join(''));
  }
}

try {
  await main();
} finally {
  for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
  await sleep(300);
  rmSync(work, { recursive: true, force: true });
}
