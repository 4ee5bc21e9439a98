#!/usr/bin/env node
import cluster, { type Worker } from 'node:cluster';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { parseArgs } from 'node:util';
import { createAdminServer } from './admin-server.js';
import { loadOpenKeyFromEnv, loadTokenizerConfigFromEnv } from './config.js';
import { ConfigError, TokenizerError } from './errors.js';
import { type MetricsSnapshot, mergeSnapshots } from './metrics.js';
import { parseListenAddress, startTokenizerServer } from './proxy-server.js';
import { open, parseSealKey, seal } from './sealed-box.js';
import { marshalSecret, parseSecret } from './secret-json.js';
import { tokenDigest } from './secret-resolver.js';
import { VERSION } from './version.js';

const USAGE = `usage: keyward-tokenizer <command> [flags]

commands:
  serve     run the proxy (configured by OPEN_KEY / OPEN_KEY_FILE, LISTEN_ADDRESS, ...)
  sealkey   print the seal key of OPEN_KEY / OPEN_KEY_FILE
  seal      seal Secret JSON read from stdin (or --json-file PATH) with SEAL_KEY or --seal-key
  unseal    print the Secret JSON of a token read from stdin (or --token) using OPEN_KEY
  digest    print the allow-list entry (sha256:<hex>) of each sealed token read from stdin, one per line
  version   print the version

serve flags (each overrides its environment variable):
  --listen-address ADDR        LISTEN_ADDRESS (default :8080)
  --admin-listen-address ADDR  ADMIN_LISTEN_ADDRESS (/health, /metrics)
  --hostnames NAMES            TOKENIZER_HOSTNAMES
  --open-proxy                 OPEN_PROXY
  --debug                      DEBUG
  --allow-private-upstreams    TOKENIZER_ALLOW_PRIVATE_UPSTREAMS
  --upstream-ca-file PATH      TOKENIZER_UPSTREAM_CA_FILE
  --open-key-file PATH         OPEN_KEY_FILE
  --allowed-tokens-file PATH   TOKENIZER_ALLOWED_TOKENS_FILE (accept only the tokens listed)
  --workers N                  TOKENIZER_WORKERS
Secrets are never taken from the command line: use OPEN_KEY / OPEN_KEY_FILE and stdin.`;

function version(): string {
  return VERSION;
}

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) throw new ConfigError('expected input on stdin');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** The reference uses Go flags (`-listen-address`); accept those as well as `--listen-address`. */
function normalizeFlags(args: string[]): string[] {
  return args.map((arg) => (/^-[a-z][a-z-]+/.test(arg) ? `-${arg}` : arg));
}

async function serve(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      'listen-address': { type: 'string' },
      'admin-listen-address': { type: 'string' },
      hostnames: { type: 'string' },
      'open-proxy': { type: 'boolean' },
      debug: { type: 'boolean' },
      'allow-private-upstreams': { type: 'boolean' },
      'upstream-ca-file': { type: 'string' },
      'open-key-file': { type: 'string' },
      'allowed-tokens-file': { type: 'string' },
      'open-key': { type: 'string' },
      workers: { type: 'string' },
    },
  });
  if (positionals.length > 0)
    throw new ConfigError(`unexpected argument ${JSON.stringify(positionals[0])}\n${USAGE}`);
  if (values['open-key'] !== undefined) {
    throw new ConfigError(
      '--open-key: refusing a private key on the command line (visible in ps); use OPEN_KEY or OPEN_KEY_FILE',
    );
  }
  const env: Record<string, string | undefined> = { ...process.env };
  const override = (variable: string, value: string | boolean | undefined) => {
    if (value !== undefined) env[variable] = value === true ? 'true' : String(value);
  };
  override('LISTEN_ADDRESS', values['listen-address']);
  override('ADMIN_LISTEN_ADDRESS', values['admin-listen-address']);
  override('TOKENIZER_HOSTNAMES', values.hostnames);
  override('OPEN_PROXY', values['open-proxy']);
  override('DEBUG', values.debug);
  override('TOKENIZER_ALLOW_PRIVATE_UPSTREAMS', values['allow-private-upstreams']);
  override('TOKENIZER_UPSTREAM_CA_FILE', values['upstream-ca-file']);
  override('TOKENIZER_WORKERS', values.workers);
  override('TOKENIZER_ALLOWED_TOKENS_FILE', values['allowed-tokens-file']);
  if (values['open-key-file'] !== undefined) {
    delete env.OPEN_KEY;
    env.OPEN_KEY_FILE = values['open-key-file'];
  }
  const config = loadTokenizerConfigFromEnv(env);
  if (config.workers > 1 && cluster.isPrimary) {
    await supervise(config.workers, config.adminListenAddress, config.openKey.sealKeyHex);
    return;
  }
  if (cluster.isWorker) {
    // The primary owns the admin listener and asks workers for their counters.
    delete config.adminListenAddress;
  }
  const running = await startTokenizerServer(config);
  if (cluster.isWorker) {
    process.on('message', (message: { type?: string; id?: number }) => {
      if (message?.type === METRICS_REQUEST) {
        process.send?.({ type: METRICS_REPLY, id: message.id, snapshot: running.server.metricsSnapshot() });
      }
    });
  }
  let signals = 0;
  const shutdown = () => {
    signals++;
    if (signals > 1) process.exit(1);
    running.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

const METRICS_REQUEST = 'keyward-tokenizer:metrics';
const METRICS_REPLY = 'keyward-tokenizer:metrics-reply';

/** Cluster primary: forks workers that share the proxy listener, restarts crashed ones, serves admin. */
async function supervise(
  workers: number,
  adminListenAddress: string | undefined,
  sealKey: string,
): Promise<void> {
  for (let index = 0; index < workers; index++) cluster.fork();
  let stopping = false;
  let nextId = 0;
  const listening = new Set<number>();
  cluster.on('listening', (worker) => listening.add(worker.id));
  let admin: Server | undefined;
  cluster.on('exit', (worker, code) => {
    listening.delete(worker.id);
    if (!stopping) {
      process.stderr.write(
        `${JSON.stringify({ level: 'error', msg: 'worker exited', pid: worker.process.pid, code })}\n`,
      );
      cluster.fork();
    } else if (Object.keys(cluster.workers ?? {}).length === 0) {
      if (admin) admin.close(() => process.exit(0));
      else process.exit(0);
    }
  });
  const gather = async (): Promise<MetricsSnapshot> => {
    const live = Object.values(cluster.workers ?? {}).filter(
      (worker): worker is Worker => worker !== undefined,
    );
    const replies = live.map(
      (worker) =>
        new Promise<MetricsSnapshot | undefined>((resolve) => {
          const id = nextId++;
          const timer = setTimeout(() => done(undefined), 1000);
          const onMessage = (message: { type?: string; id?: number; snapshot?: MetricsSnapshot }) => {
            if (message?.type === METRICS_REPLY && message.id === id) done(message.snapshot);
          };
          const done = (snapshot: MetricsSnapshot | undefined) => {
            clearTimeout(timer);
            worker.off('message', onMessage);
            resolve(snapshot);
          };
          worker.on('message', onMessage);
          worker.send({ type: METRICS_REQUEST, id });
        }),
    );
    return mergeSnapshots((await Promise.all(replies)).filter((snapshot) => snapshot !== undefined));
  };
  if (adminListenAddress) {
    admin = createAdminServer({ sealKey, metrics: gather, healthy: () => listening.size > 0 });
    const { host, port } = parseListenAddress(adminListenAddress);
    admin.listen(port, host);
    await once(admin, 'listening');
  }
  const stop = () => {
    if (stopping) process.exit(1);
    stopping = true;
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM');
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

async function sealCommand(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { 'seal-key': { type: 'string' }, 'json-file': { type: 'string' }, json: { type: 'string' } },
  });
  if (values.json !== undefined) {
    throw new ConfigError(
      '--json: refusing secret JSON on the command line (visible in ps); pipe it on stdin',
    );
  }
  let sealKey = values['seal-key'] ?? process.env.SEAL_KEY;
  if (!sealKey) {
    if (!process.env.OPEN_KEY && !process.env.OPEN_KEY_FILE) {
      throw new ConfigError(
        'missing SEAL_KEY: set SEAL_KEY, pass --seal-key, or set OPEN_KEY / OPEN_KEY_FILE',
      );
    }
    sealKey = loadOpenKeyFromEnv(process.env).sealKeyHex;
  }
  try {
    parseSealKey(sealKey);
  } catch (error) {
    throw new ConfigError(`SEAL_KEY: ${(error as Error).message}`);
  }
  const json =
    values['json-file'] !== undefined ? readFileSync(values['json-file'], 'utf8') : await readStdin();
  // Validate and canonicalise like the reference's Go round-trip.
  const canonical = marshalSecret(parseSecret(json));
  process.stdout.write(`${seal(canonical, sealKey)}\n`);
}

async function unsealCommand(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { token: { type: 'string' } } });
  const openKey = loadOpenKeyFromEnv(process.env);
  const token = (values.token ?? (await readStdin())).trim();
  // Like the reference: the plaintext exactly as sealed (it must still parse as a Secret).
  const plaintext = open(token, openKey);
  parseSecret(plaintext);
  process.stdout.write(`${Buffer.from(plaintext).toString('utf8')}\n`);
}

/** Allow-list entries for TOKENIZER_ALLOWED_TOKENS_FILE: the tokens themselves never leave stdin. */
async function digestCommand(): Promise<void> {
  const lines = (await readStdin()).split('\n').map((line) => line.trim());
  const tokens = lines.filter((line) => line !== '');
  if (tokens.length === 0) throw new ConfigError('expected sealed tokens on stdin, one per line');
  process.stdout.write(tokens.map((token) => `sha256:${tokenDigest(token)}\n`).join(''));
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  const args = normalizeFlags(rest);
  switch (command) {
    case 'serve':
      return serve(args);
    case 'sealkey':
      process.stdout.write(`export SEAL_KEY=${loadOpenKeyFromEnv(process.env).sealKeyHex}\n`);
      return;
    case 'seal':
      return sealCommand(args);
    case 'unseal':
      return unsealCommand(args);
    case 'digest':
      return digestCommand();
    case 'version':
      process.stdout.write(`keyward-tokenizer ${version()}\n`);
      return;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(`${USAGE}\n`);
      if (command === undefined) process.exitCode = 1;
      return;
    default:
      throw new ConfigError(`unknown command ${JSON.stringify(command)}\n${USAGE}`);
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  // One line, no stack trace: these are configuration or input problems.
  const message =
    error instanceof TokenizerError || (error as { code?: string })?.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION'
      ? (error as Error).message
      : `unexpected error: ${(error as Error)?.message ?? String(error)}`;
  process.stderr.write(`keyward-tokenizer: ${message}\n`);
  process.exit(error instanceof ConfigError ? 1 : 2);
});
