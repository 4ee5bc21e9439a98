import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearerDigest, openSecret } from '../src/secret.js';
import { tokenDigest } from '../src/secret-resolver.js';
import { proxyRequest } from './proxy-client.js';
import { createLoopbackCertificates, type EchoServer, startEchoServer } from './tls-fixtures.js';

// The built `keyward-tokenizer` binary, as users run it.
const packageDirectory = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(packageDirectory, 'dist', 'cli.js');
const OPEN_KEY = '0d88a36d5c41d5c3d97b929fdebf0bea57e5fb4616da88121ba972431a161cab';
const SEAL_KEY = 'a29dcbaa824af8f0a8d435df6ca1f27cfbf1d5aaa03f3f87fa0a58f8a34d8f67';
const directory = mkdtempSync(join(tmpdir(), 'keyward-cli-'));
let echo: EchoServer;
let caFile: string;

function run(args: string[], env: Record<string, string> = {}, input?: string) {
  const result = spawnSync(process.execPath, [cli, ...args], {
    env: { PATH: process.env.PATH ?? '', ...env },
    input: input ?? '',
    encoding: 'utf8',
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

beforeAll(async () => {
  execFileSync('pnpm', ['run', 'build'], { cwd: packageDirectory, stdio: 'pipe' });
  const certificates = createLoopbackCertificates();
  caFile = join(directory, 'ca.pem');
  writeFileSync(caFile, certificates.caCertificatePem);
  echo = await startEchoServer(certificates);
}, 120_000);

afterAll(async () => {
  await echo?.close();
});

async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  const server = createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('keyward-tokenizer CLI', () => {
  it('version and sealkey', () => {
    expect(run(['version']).stdout).toMatch(/^keyward-tokenizer \d+\.\d+\.\d+\n$/);
    expect(run(['sealkey'], { OPEN_KEY }).stdout).toBe(`export SEAL_KEY=${SEAL_KEY}\n`);
  });

  it.each([
    [
      {},
      'keyward-tokenizer: missing OPEN_KEY (or OPEN_KEY_FILE): set it to 64 hex characters (openssl rand -hex 32)\n',
    ],
    [{ OPEN_KEY: OPEN_KEY.slice(1) }, 'keyward-tokenizer: OPEN_KEY: bad private key: not hex\n'],
    [
      { OPEN_KEY_FILE: '/nonexistent' },
      'keyward-tokenizer: OPEN_KEY_FILE: cannot read /nonexistent: ENOENT\n',
    ],
  ])('serve refuses %j with one line and exit 1', (env, message) => {
    const result = run(['serve'], env as Record<string, string>);
    expect(result.status).toBe(1);
    expect(result.stderr).toBe(message);
    expect(result.stdout).toBe('');
  });

  it('refuses secrets on the command line', () => {
    const serve = run(['serve', '--open-key', OPEN_KEY]);
    expect(serve.status).toBe(1);
    expect(serve.stderr).not.toContain(OPEN_KEY);
    expect(run(['seal', '-json', '{}'], { SEAL_KEY }).stderr).toContain('pipe it on stdin');
  });

  it('seals stdin (canonicalised like Go) and unseals it', () => {
    const json = `{"Inject_Processor":{"token":"tok<en>"},"bearer_auth":{"digest":"${bearerDigest('trustno1')}"},"unknown":1}`;
    const sealed = run(['seal'], { SEAL_KEY }, json);
    expect(sealed.status).toBe(0);
    const token = sealed.stdout.trim();
    expect(openSecret(token, OPEN_KEY).processor).toEqual({ type: 'inject', token: 'tok<en>' });
    const unsealed = run(['unseal'], { OPEN_KEY }, `${token}\n`);
    expect(unsealed.stdout).toBe(
      `{"inject_processor":{"token":"tok\\u003cen\\u003e"},"bearer_auth":{"digest":"${bearerDigest('trustno1')}"}}\n`,
    );
    const bad = run(['seal'], { SEAL_KEY }, '{"inject_processor":{"token":"x"}}');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toBe('keyward-tokenizer: bad secret json: bad auth config\n');
  });

  it('digest prints the allow-list entry of each token on stdin; serve --allowed-tokens-file reads such a list', () => {
    const first = run(
      ['seal'],
      { SEAL_KEY },
      '{"inject_processor":{"token":"a"},"no_auth":{}}',
    ).stdout.trim();
    const second = run(
      ['seal'],
      { SEAL_KEY },
      '{"inject_processor":{"token":"b"},"no_auth":{}}',
    ).stdout.trim();
    const digests = run(['digest'], {}, `${first}\n\n${second}\n`);
    expect(digests.status).toBe(0);
    expect(digests.stdout).toBe(`sha256:${tokenDigest(first)}\nsha256:${tokenDigest(second)}\n`);
    expect(digests.stdout).not.toContain(first);
    const empty = run(['digest'], {}, '\n');
    expect(empty.status).toBe(1);
    expect(empty.stderr).toBe('keyward-tokenizer: expected sealed tokens on stdin, one per line\n');
    // The flag sets TOKENIZER_ALLOWED_TOKENS_FILE: a bad list stops start-up with one line.
    const list = join(directory, 'allowed-tokens');
    writeFileSync(list, `${digests.stdout}${first}\n`);
    const serve = run(['serve', '--allowed-tokens-file', list], { OPEN_KEY });
    expect(serve.status).toBe(1);
    expect(serve.stderr).toBe(
      "keyward-tokenizer: TOKENIZER_ALLOWED_TOKENS_FILE: line 3 is not a SHA-256 digest of a sealed token (64 hex characters, optionally prefixed sha256:), optionally followed by a space and the credential's name (one line, at most 256 characters)\n",
    );
  });

  it('serves with OPEN_KEY_FILE, logs the seal key, and drains in-flight requests on SIGTERM', async () => {
    const keyFile = join(directory, 'open.key');
    writeFileSync(keyFile, `${OPEN_KEY}\n`);
    echo.routes.set('/slow', () => {
      const until = Date.now() + 400;
      while (Date.now() < until) {
        // Hold the upstream so the request is in flight when SIGTERM arrives.
      }
      return { status: 200, body: 'slow done' };
    });
    const child = spawn(
      process.execPath,
      [cli, 'serve', '-listen-address', '127.0.0.1:0', '--allow-private-upstreams'],
      {
        env: { PATH: process.env.PATH ?? '', OPEN_KEY_FILE: keyFile, TOKENIZER_UPSTREAM_CA_FILE: caFile },
      },
    );
    child.stdout.resume();
    let stderr = '';
    const listening = await new Promise<{ address: string; seal_key: string }>((resolve, reject) => {
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        const line = stderr.split('\n').find((candidate) => candidate.includes('"listening"'));
        if (line) resolve(JSON.parse(line));
      });
      child.once('exit', () => reject(new Error(`exited early: ${stderr}`)));
    });
    expect(listening.seal_key).toBe(SEAL_KEY);
    expect(stderr).not.toContain(OPEN_KEY);
    const { sealSecret } = await import('../src/secret.js');
    const token = sealSecret({ processor: { type: 'inject', token: 'x' }, auth: { type: 'none' } }, SEAL_KEY);
    const pending = proxyRequest(listening.address, `http://127.0.0.1:${echo.port}/slow`, {
      headers: { 'Proxy-Tokenizer': token },
    });
    await new Promise((resolve) => setTimeout(resolve, 150));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    const response = await pending;
    expect(response.status).toBe(200);
    expect(response.body).toBe('slow done');
    expect(await exited).toBe(0);
  });

  it('runs cluster workers behind one listener, with metrics summed on the primary admin listener', async () => {
    const [proxyPort, adminPort] = [await freePort(), await freePort()];
    const child = spawn(process.execPath, [cli, 'serve'], {
      env: {
        PATH: process.env.PATH ?? '',
        OPEN_KEY,
        LISTEN_ADDRESS: `127.0.0.1:${proxyPort}`,
        ADMIN_LISTEN_ADDRESS: `127.0.0.1:${adminPort}`,
        TOKENIZER_WORKERS: '2',
        TOKENIZER_ALLOW_PRIVATE_UPSTREAMS: 'true',
        TOKENIZER_UPSTREAM_CA_FILE: caFile,
      },
    });
    child.stdout.resume();
    let stderr = '';
    await new Promise<void>((resolve, reject) => {
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        if (stderr.split('"listening"').length - 1 >= 2) resolve();
      });
      child.once('exit', () => reject(new Error(`exited early: ${stderr}`)));
    });
    const { sealSecret } = await import('../src/secret.js');
    const token = sealSecret({ processor: { type: 'inject', token: 'x' }, auth: { type: 'none' } }, SEAL_KEY);
    for (let index = 0; index < 6; index++) {
      const response = await proxyRequest(
        `http://127.0.0.1:${proxyPort}`,
        `http://127.0.0.1:${echo.port}/echo`,
        {
          headers: { 'Proxy-Tokenizer': token },
        },
      );
      expect(response.status).toBe(200);
    }
    const health = await fetch(`http://127.0.0.1:${adminPort}/health`);
    expect(health.status).toBe(200);
    const metrics = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
    expect(metrics).toContain('keyward_tokenizer_requests_total{decision="forwarded",status="200"} 6');
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
