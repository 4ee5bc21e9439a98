import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundle } from './bundle.js';

// schemathesis (PyPI, installed by scripts/schemathesis/install-schemathesis.sh) fuzzes a real
// `keyward serve` on loopback from its own /api/openapi.json: every operation, with valid and
// invalid inputs, in its examples, coverage, fuzzing and stateful phases. Checks: no server error
// (a documented 501 aside, see openapi-fuzz/schemathesis.toml), responses conform to the declared
// schemas, and openapi-fuzz/keyward-checks.py's own: every 4xx/5xx is `{error:{code,message}}`, no
// response holds the seeded credential or the API token.
// The server's targets are in-memory ones (stand-ins for a runtime, loaded as a plugin like the
// CLI test's), `memory` and one named `local` so that bodies with the default target go past
// validation (fixtures/fuzz-plugin.ts): fuzzed deploys and deletes must never reach the shared
// podman, where a generated name could be another engineer's instance. Its sidecars are the real
// tokenizer and the mock.
//
// CI runs a small subset; `pnpm test:reliability` sets KEYWARD_FUZZ_MAX_EXAMPLES,
// KEYWARD_FUZZ_PROCESSES and KEYWARD_FUZZ_MINIMUM_CASES for the long run (at least 100,000 cases).
const maxExamples = Number(process.env['KEYWARD_FUZZ_MAX_EXAMPLES'] ?? 6);
const minimumCases = Number(process.env['KEYWARD_FUZZ_MINIMUM_CASES'] ?? 200);
// schemathesis' workers are threads of one Python process: generating the cases is CPU-bound and
// holds the GIL, so one process uses one core whatever its workers. More processes fuzz the same
// operations with other seeds (only the first runs the examples, coverage and stateful phases).
const processes = Number(process.env['KEYWARD_FUZZ_PROCESSES'] ?? 1);
const seed = Number(process.env['KEYWARD_FUZZ_SEED'] ?? randomBytes(4).readUInt32BE() >>> 1);
// A long run is about an hour on the shared 2-core VMs; CI's subset under a minute.
const runTimeout = Number(process.env['KEYWARD_FUZZ_TIMEOUT_SECONDS'] ?? 900) * 1000;

const repositoryRoot = fileURLToPath(new URL('../../../', import.meta.url));
const fuzzDirectory = fileURLToPath(new URL('./openapi-fuzz/', import.meta.url));
const instance = 'fuzz-seeded';
const seededSecret = `fuzz-credential-${randomBytes(18).toString('base64url')}`;

let directory: string;
let dataDirectory: string;
let server: ChildProcess;
let serverUrl: string;
let serverLog = '';
let token: string;
let schemathesis: string;

interface SchemathesisRun {
  code: number | null;
  output: string;
  /** Test cases run, as schemathesis' own summary counts them ("Test cases: N generated, …"). */
  generated: number;
  /** That summary line: "N generated, N passed" when every case was checked and passed. */
  summary: string;
}

function runSchemathesis(
  url: string,
  secrets: string[],
  runSeed: number,
  extra: string[],
): Promise<SchemathesisRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      schemathesis,
      [
        '--no-color',
        '--config-file',
        join(fuzzDirectory, 'schemathesis.toml'),
        'run',
        url,
        '--checks',
        'not_a_server_error,response_schema_conformance,error_body_shape,no_secret_in_response,server_errors_are_documented',
        '--request-timeout',
        '60',
        '--seed',
        String(runSeed),
        ...extra,
      ],
      {
        env: {
          ...process.env,
          SCHEMATHESIS_HOOKS: join(fuzzDirectory, 'keyward-checks.py'),
          KEYWARD_FUZZ_SECRETS: JSON.stringify(secrets),
          KEYWARD_FUZZ_INSTANCE: instance,
          // Its terminal width decides how reports wrap; keep lines whole for the test's reading.
          COLUMNS: '200',
        },
        // It keeps a cache (.schemathesis/) in its working directory.
        cwd: directory,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    child.stdout.on('data', (chunk) => {
      output += chunk;
    });
    child.stderr.on('data', (chunk) => {
      output += chunk;
    });
    const timer = setTimeout(() => child.kill('SIGTERM'), runTimeout);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      const summary = /Test cases:\s*\n\s*(\d+) generated[^\n]*/.exec(output);
      resolve({
        code,
        output,
        generated: Number(summary?.[1] ?? Number.NaN),
        summary: summary?.[0].replace(/^Test cases:\s*/, '') ?? '',
      });
    });
  });
}

async function api(method: string, path: string, body?: unknown): Promise<Response> {
  return fetch(`${serverUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

beforeAll(async () => {
  schemathesis = execFileSync(
    'bash',
    [join(repositoryRoot, 'scripts/schemathesis/install-schemathesis.sh')],
    {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  )
    .trim()
    .split('\n')
    .at(-1)!;
  directory = mkdtempSync(join(tmpdir(), 'keyward-fuzz-'));
  dataDirectory = join(directory, 'data');
  const cli = join(directory, 'keyward.mjs');
  await bundle(fileURLToPath(new URL('../src/cli.ts', import.meta.url)), cli);
  execFileSync('mkdir', ['-p', dataDirectory]);
  await bundle(
    fileURLToPath(new URL('./fixtures/fuzz-plugin.ts', import.meta.url)),
    join(dataDirectory, 'fuzz-plugin.mjs'),
  );
  writeFileSync(join(dataDirectory, 'plugins.json'), JSON.stringify({ plugins: ['./fuzz-plugin.mjs'] }));
  server = spawn(process.execPath, [cli, 'serve', '--port', '0'], {
    env: {
      ...process.env,
      KEYWARD_DATA_DIR: dataDirectory,
      // Only the tokenizer among the built-ins: no provider-local, so nothing reaches podman.
      KEYWARD_BUILTINS: '@keyward/provider-tokenizer',
      // The fuzzer sends thousands of requests a minute; the limits themselves are tested in routes.test.ts.
      KEYWARD_REQUESTS_PER_MINUTE: '100000000',
      KEYWARD_DEPLOYS_PER_MINUTE: '100000000',
      KEYWARD_ROTATIONS_PER_MINUTE: '100000000',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  server.stdout!.on('data', (chunk) => {
    serverLog += chunk;
  });
  serverUrl = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`keyward serve did not start:\n${serverLog}`)), 60_000);
    let listening = false;
    server.stderr!.on('data', (chunk) => {
      serverLog += chunk;
      // Only until it listens: a regular expression flattens the whole log (one request line each,
      // megabytes in a long run) into a copy, on every chunk.
      if (listening) return;
      const match = /keyward API on (http:\/\/127\.0\.0\.1:\d+)/.exec(serverLog);
      if (match) {
        listening = true;
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    server.on('exit', (code) => reject(new Error(`keyward serve exited with ${code}:\n${serverLog}`)));
  });
  token = readFileSync(join(dataDirectory, 'api-token'), 'utf8').trim();

  // The seeded instance: the secret the fuzzer must never see come back.
  const deployed = await api('POST', '/api/instances', {
    name: instance,
    target: 'memory',
    agent: { image: 'localhost/agent:fuzz', port: 18789, skillsDirectory: '/skills' },
    sidecars: {
      mock: {},
      tokenizer: {
        credentials: [{ name: 'seeded', secret: seededSecret, allowedHosts: ['api.example.com'] }],
      },
    },
  });
  expect(deployed.status, await deployed.clone().text()).toBe(202);
  const { jobId } = (await deployed.json()) as { jobId: string };
  const events = await (await api('GET', `/api/jobs/${jobId}/events`)).text();
  expect(events).toContain('event: result');
}, 600_000);

afterAll(async () => {
  if (server && server.exitCode === null) {
    const exited = new Promise((resolve) => server.once('exit', resolve));
    server.kill('SIGTERM');
    await exited;
  }
  if (directory) rmSync(directory, { recursive: true, force: true });
});

describe('the API fuzzed by schemathesis from its OpenAPI document', () => {
  it(
    `answers every generated request without a server error, in the declared shapes, never with a secret (seed ${seed}, ${maxExamples} examples per operation, ${processes} process${processes === 1 ? '' : 'es'})`,
    async ({ task }) => {
      const load = loadavg();
      const started = performance.now();
      const logBefore = serverLog.length;
      const runs = await Promise.all(
        Array.from({ length: processes }, (_, index) =>
          runSchemathesis(`${serverUrl}/api/openapi.json`, [seededSecret, token], seed + index, [
            '--header',
            `Authorization: Bearer ${token}`,
            '--max-examples',
            String(maxExamples),
            // One worker: workers are threads, and CPython 3.11's ast.parse from two threads at once
            // (Hypothesis describing a filter) can fail with "AST constructor recursion depth mismatch"
            // (python/cpython#106905), seen here as a schemathesis internal error.
            '--workers',
            '1',
            ...(index === 0 ? [] : ['--phases', 'fuzzing']),
          ]),
        ),
      );
      const seconds = (performance.now() - started) / 1000;
      const generated = runs.reduce((sum, run) => sum + run.generated, 0);
      // The server's own count: one "request" log line per answered request.
      const runLog = serverLog.slice(logBefore);
      const answered = runLog.match(/"message":"request"/g)?.length ?? 0;
      // How deep the fuzzed deploys went: accepted on the default target `local`, and completed there.
      const deploysOnLocal = runLog.match(/"message":"deploy accepted"[^\n]*"target":"local"/g)?.length ?? 0;
      const deploysCompleted = runLog.match(/"message":"deploy succeeded"/g)?.length ?? 0;
      const figures = [
        { figure: 'schemathesis cases', value: generated, unit: 'cases' },
        { figure: 'requests the server answered', value: answered, unit: 'requests' },
        { figure: 'deploys accepted on the default target', value: deploysOnLocal, unit: 'deploys' },
        { figure: 'deploys completed', value: deploysCompleted, unit: 'deploys' },
        { figure: 'schemathesis processes', value: processes },
        { figure: 'schemathesis duration', value: Math.round(seconds), unit: 's' },
        { figure: 'cases per second', value: Number((generated / seconds).toFixed(1)), unit: 'cases/s' },
        { figure: 'load average (1 min) at start', value: load[0] },
        { figure: 'load average (1 min) at end', value: loadavg()[0] },
      ];
      Object.assign(task.meta, { figures });
      console.log(
        `schemathesis: ${generated} cases (${runs.map((run) => run.generated).join(' + ')}) in ${seconds.toFixed(0)} s, ${answered} requests answered, ${deploysOnLocal} deploys accepted on \`local\` (${deploysCompleted} completed), seed ${seed}, load ${load.map((value) => value.toFixed(2)).join(' ')} at start, ${loadavg()
          .map((value) => value.toFixed(2))
          .join(' ')} at end`,
      );
      for (const [index, run] of runs.entries()) {
        // The report names each failure and a curl line to reproduce it (the token filtered out).
        expect(run.code, `process ${index} (seed ${seed + index}):\n${run.output.slice(-12_000)}`).toBe(0);
        // Not "…, K skipped" nor "…, K errored": every case got an answer and every check ran on it.
        expect(run.summary).toBe(`${run.generated} generated, ${run.generated} passed`);
      }
      expect(generated).toBeGreaterThanOrEqual(minimumCases);
      // Every case was sent and answered: the server logged at least as many requests.
      expect(answered).toBeGreaterThanOrEqual(generated);
      // Generated deploy bodies that name no target went past validation to a target.
      expect(deploysOnLocal).toBeGreaterThan(0);
    },
    runTimeout + 60_000,
  );

  it('kept the seeded credential out of the server log and the job store', () => {
    for (const file of readdirSync(dataDirectory).filter((name) => name.startsWith('keyward.sqlite'))) {
      expect(readFileSync(join(dataDirectory, file)).includes(seededSecret), file).toBe(false);
    }
    expect(serverLog.length).toBeGreaterThan(0);
    expect(serverLog.includes(seededSecret)).toBe(false);
  });
});

// The checks must be able to fail: the same run against a stand-in server that breaks each rule.
describe("keyward-checks.py's checks, against a server that breaks them", () => {
  let broken: Server;
  const leaked = `leaked-${randomBytes(12).toString('hex')}`;

  beforeAll(async () => {
    const document = {
      openapi: '3.1.0',
      info: { title: 'broken', version: '1' },
      paths: {
        '/leak': { get: { responses: { 200: { description: 'ok' } } } },
        '/bad-error': { get: { responses: { 404: { description: 'not found' } } } },
      },
    };
    broken = createServer((request, response) => {
      if (request.url === '/openapi.json') {
        response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(document));
      } else if (request.url?.startsWith('/leak')) {
        response
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ value: leaked }));
      } else {
        response.writeHead(404, { 'content-type': 'application/json' }).end('{"message":"no error object"}');
      }
    });
    await new Promise<void>((resolve) => broken.listen(0, '127.0.0.1', resolve));
  });

  afterAll(async () => {
    await new Promise((resolve) => broken?.close(resolve));
  });

  it('reports the leaked secret and the error body without code and message', async () => {
    const { port } = broken.address() as AddressInfo;
    const run = await runSchemathesis(`http://127.0.0.1:${port}/openapi.json`, [leaked], seed, [
      '--max-examples',
      '2',
      '--phases',
      'examples,fuzzing',
    ]);
    expect(run.code).not.toBe(0);
    expect(run.output).toContain('the response holds seeded secret #0');
    expect(run.output).toContain('404 answer has no error object');
  });
});
