import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sealKeyFromOpenKey } from '../src/sealed-box.js';
import { bearerDigest, sealSecret } from '../src/secret.js';
import { createLoopbackCertificates } from './tls-fixtures.js';

// Soak: the built `keyward-tokenizer serve` (one process, as in its image) with many keep-alive
// clients at once for a while, every request injecting a credential into a real HTTPS upstream
// on loopback (nginx, which answers 401 unless the injected header is exactly right). wrk holds
// the connections open and sends as fast as the proxy answers. Asserts: no socket error, no
// non-2xx, the proxy alive; reports peak RSS and latency percentiles (figures for
// `pnpm test:reliability` / `pnpm bench`; never timed assertions: the VMs are shared).
// CI: 1,000 clients for 10 s. Long run: KEYWARD_SOAK_SECONDS=60.
const clients = Number(process.env['KEYWARD_SOAK_CLIENTS'] ?? 1000);
const seconds = Number(process.env['KEYWARD_SOAK_SECONDS'] ?? 10);

const packageDirectory = join(dirname(fileURLToPath(import.meta.url)), '..');
const OPEN_KEY = '0d88a36d5c41d5c3d97b929fdebf0bea57e5fb4616da88121ba972431a161cab';
const upstreamToken = 'soak-upstream-credential-0123456789';
const directory = mkdtempSync(join(tmpdir(), 'keyward-soak-'));
const file = (name: string) => join(directory, name);
const children: ChildProcess[] = [];

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`nothing listens on 127.0.0.1:${port} after 60 s`);
}

function residentKibibytes(pid: number): { now: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return {
    now: Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN),
    peak: Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN),
  };
}

/** wrk's durations ("812.00us", "3.41ms", "1.02s") in milliseconds. */
function milliseconds(text: string | undefined): number {
  const match = /^([\d.]+)(us|ms|s|m)$/.exec(text ?? '');
  if (!match) return Number.NaN;
  const factor = { us: 0.001, ms: 1, s: 1000, m: 60_000 }[match[2] as 'us' | 'ms' | 's' | 'm'];
  return Number(match[1]) * factor;
}

let proxy: ChildProcess;
let proxyPort: number;
let upstreamPort: number;

beforeAll(async () => {
  for (const tool of ['/usr/sbin/nginx', '/usr/bin/wrk']) {
    if (!existsSync(tool)) {
      throw new Error(
        `${tool} is missing: run "bash scripts/setup.sh --tests" (it installs nginx-light and wrk)`,
      );
    }
  }
  execFileSync('pnpm', ['run', 'build'], { cwd: packageDirectory, stdio: 'pipe' });
  const certificates = createLoopbackCertificates();
  writeFileSync(file('ca.pem'), certificates.caCertificatePem);
  writeFileSync(file('server.pem'), certificates.serverCertificatePem);
  writeFileSync(file('server.key'), certificates.serverKeyPem);
  upstreamPort = await freePort();
  proxyPort = await freePort();
  writeFileSync(
    file('nginx.conf'),
    `worker_processes 1;
daemon off;
pid ${file('nginx.pid')};
error_log ${file('nginx.error.log')} warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${directory};
  proxy_temp_path ${directory};
  fastcgi_temp_path ${directory};
  uwsgi_temp_path ${directory};
  scgi_temp_path ${directory};
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:${upstreamPort} ssl;
    ssl_certificate ${file('server.pem')};
    ssl_certificate_key ${file('server.key')};
    location / {
      if ($http_authorization != "Bearer ${upstreamToken}") { return 401; }
      return 200 "ok\\n";
    }
  }
}
`,
  );
  const nginx = spawn('/usr/sbin/nginx', ['-c', file('nginx.conf'), '-p', directory], { stdio: 'ignore' });
  children.push(nginx);
  proxy = spawn(process.execPath, [join(packageDirectory, 'dist', 'cli.js'), 'serve'], {
    env: {
      PATH: process.env['PATH'] ?? '',
      OPEN_KEY,
      LISTEN_ADDRESS: `127.0.0.1:${proxyPort}`,
      TOKENIZER_ALLOW_PRIVATE_UPSTREAMS: 'true',
      TOKENIZER_UPSTREAM_CA_FILE: file('ca.pem'),
      // The image's Node options (packages/images).
      NODE_OPTIONS: '--max-semi-space-size=64',
    },
    // One audit line per request, as in production, to nowhere.
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  children.push(proxy);
  await waitForPort(upstreamPort);
  await waitForPort(proxyPort);
  const token = sealSecret(
    {
      processor: { type: 'inject', token: upstreamToken },
      auth: { type: 'bearer', digest: bearerDigest('soak-proxy-password') },
    },
    sealKeyFromOpenKey(OPEN_KEY),
  );
  writeFileSync(
    file('soak.lua'),
    `wrk.method = "GET"
wrk.path = "http://127.0.0.1:${upstreamPort}/"
wrk.headers["Host"] = "127.0.0.1:${upstreamPort}"
wrk.headers["Proxy-Tokenizer"] = "${token}"
wrk.headers["Proxy-Authorization"] = "Bearer soak-proxy-password"
`,
  );
}, 300_000);

afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
  await new Promise((resolve) => setTimeout(resolve, 300));
  rmSync(directory, { recursive: true, force: true });
});

describe('keyward-tokenizer under a soak', () => {
  it(
    `serves ${clients} keep-alive clients for ${seconds} s with no error, injecting every request`,
    async ({ task }) => {
      const load = loadavg();
      const before = residentKibibytes(proxy.pid!);
      let sampledPeak = before.now;
      const sampler = setInterval(() => {
        sampledPeak = Math.max(sampledPeak, residentKibibytes(proxy.pid!).now);
      }, 250);
      const output = await new Promise<string>((resolve, reject) => {
        const wrk = spawn(
          '/usr/bin/wrk',
          [
            '-t',
            '2',
            '-c',
            String(clients),
            '-d',
            `${seconds}s`,
            '--latency',
            '--timeout',
            '30s',
            '-s',
            file('soak.lua'),
            `http://127.0.0.1:${proxyPort}`,
          ],
          { stdio: ['ignore', 'pipe', 'inherit'] },
        );
        let text = '';
        wrk.stdout.on('data', (chunk) => {
          text += chunk;
        });
        wrk.on('error', reject);
        wrk.on('close', () => resolve(text));
      });
      clearInterval(sampler);
      const after = residentKibibytes(proxy.pid!);
      const requests = Number(/(\d+) requests in/.exec(output)?.[1] ?? Number.NaN);
      const nonSuccess = Number(/Non-2xx or 3xx responses: (\d+)/.exec(output)?.[1] ?? 0);
      // wrk prints this line only when there was one.
      const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(
        output,
      );
      const errorCount = (socketErrors?.slice(1) ?? []).reduce((sum, value) => sum + Number(value), 0);
      const percentile = (label: string) =>
        milliseconds(new RegExp(`\\s${label}%\\s+(\\S+)`).exec(output)?.[1]);
      const maximum = milliseconds(/Latency\s+\S+\s+\S+\s+(\S+)/.exec(output)?.[1]);
      const figures = [
        { figure: 'clients (keep-alive)', value: clients },
        { figure: 'duration', value: seconds, unit: 's' },
        { figure: 'requests', value: requests },
        { figure: 'requests per second', value: Math.round(requests / seconds) },
        { figure: 'errors (socket + non-2xx)', value: errorCount + nonSuccess },
        { figure: 'latency p50', value: percentile('50'), unit: 'ms' },
        { figure: 'latency p90', value: percentile('90'), unit: 'ms' },
        { figure: 'latency p99', value: percentile('99'), unit: 'ms' },
        { figure: 'latency max', value: maximum, unit: 'ms' },
        { figure: 'proxy RSS before', value: Math.round(before.now / 1024), unit: 'MiB' },
        {
          figure: 'proxy peak RSS',
          value: Math.round(Math.max(sampledPeak, after.peak) / 1024),
          unit: 'MiB',
        },
        { figure: 'load average (1 min) at start', value: load[0] },
      ];
      Object.assign(task.meta, { figures });
      console.log(
        `soak: ${figures.map((item) => `${item.figure} ${item.value}${item.unit ? ` ${item.unit}` : ''}`).join(', ')}; load ${load.map((value) => value.toFixed(2)).join(' ')}\n${output}`,
      );
      expect(errorCount, output).toBe(0);
      expect(nonSuccess, output).toBe(0);
      expect(requests).toBeGreaterThan(clients);
      expect(proxy.exitCode).toBeNull();
    },
    (seconds + 120) * 1000,
  );
});
