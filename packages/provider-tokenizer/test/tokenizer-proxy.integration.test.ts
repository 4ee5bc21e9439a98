import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { SidecarContributionV1 } from '@keyward/core';
import {
  loadTokenizerConfigFromEnv,
  openSecret,
  type RunningTokenizerServer,
  sealSecret,
  startTokenizerServer,
} from '@keyward/tokenizer';
import { createThrowawayCertificates, type ThrowawayCertificates } from '@keyward/tokenizer/certificates';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTokenizerProvider } from '../src/index.js';
import { rawSecrets, secretByVariable, secretValue, skillOf, stateOf, testContext } from './helpers.js';
import { extractCodeBlocks } from './skill-examples.js';

const run = promisify(execFile);
const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const provider = createTokenizerProvider();

let workDirectory: string;
let certificates: ThrowawayCertificates;
let upstream: https.Server;
let upstreamPort: number;
const received: { host: string | undefined; headers: http.IncomingHttpHeaders }[] = [];
const runningProxies: RunningTokenizerServer[] = [];

beforeAll(async () => {
  workDirectory = mkdtempSync(join(tmpdir(), 'keyward-provider-tokenizer-'));
  certificates = createThrowawayCertificates({
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
    validDays: 2,
  });
  // A loopback HTTPS API that answers 200 only when the proxy injected the right credential.
  upstream = https.createServer(
    { cert: certificates.serverCertificatePem, key: certificates.serverKeyPem },
    (request, response) => {
      received.push({ host: request.headers.host, headers: request.headers });
      const github = request.headers.authorization === `Bearer ${rawSecrets.github}`;
      const stripe = request.headers['x-api-key'] === `key=${rawSecrets.stripe}`;
      const openai = request.headers.authorization === `Bearer ${rawSecrets.openai}`;
      const which = github ? 'github' : stripe ? 'stripe' : openai ? 'openai' : undefined;
      response.writeHead(which ? 200 : 401, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ ok: which !== undefined, credential: which ?? null }));
    },
  );
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  upstreamPort = (upstream.address() as AddressInfo).port;
});

afterAll(async () => {
  await Promise.all(runningProxies.map((proxy) => proxy.close()));
  await new Promise<void>((resolve) => upstream.close(() => resolve()));
  rmSync(workDirectory, { recursive: true, force: true });
});

function demoConfig(overrides: Record<string, unknown> = {}) {
  return {
    credentials: [
      { name: 'github', secret: rawSecrets.github, allowedHosts: [`localhost:${upstreamPort}`] },
      {
        name: 'stripe',
        secret: rawSecrets.stripe,
        allowedHosts: [`127.0.0.1:${upstreamPort}`],
        headerDst: 'X-Api-Key',
        headerFmt: 'key=%s',
      },
    ],
    upstreamCaCertificates: certificates.caCertificatePem,
    allowPrivateUpstreams: true,
    ...overrides,
  };
}

async function deploy(config: unknown, seed = 41): Promise<SidecarContributionV1> {
  return provider.contribute(testContext('proxy-only', seed), provider.configSchema.parse(config));
}

/**
 * STAND-IN for the tokenizer container (no image can run in this test): the same
 * server code the `keyward-tokenizer` image runs, configured only from the container
 * env of the contribution through the tokenizer's own env loader. The target's file
 * delivery is emulated by writing the open-key secret and the CA file into a temp dir
 * and pointing the env at them; listeners move to 127.0.0.1:0.
 */
async function startTokenizerFromContribution(contribution: SidecarContributionV1) {
  const container = contribution.containers.find((candidate) => candidate.name === 'tokenizer');
  if (!container) throw new Error('no tokenizer container');
  const root = mkdtempSync(join(workDirectory, 'container-'));
  const env: Record<string, string> = { ...(container.env ?? {}) };
  const relocate = (path: string, content: string, mode: number) => {
    const local = join(root, basename(path));
    writeFileSync(local, content);
    chmodSync(local, mode);
    for (const [key, value] of Object.entries(env)) if (value === path) env[key] = local;
  };
  for (const secret of contribution.secrets) {
    if (secret.visibleTo.includes('tokenizer') && secret.delivery.type === 'file') {
      relocate(secret.delivery.path, secret.value, secret.delivery.mode ?? 0o400);
    }
  }
  for (const file of contribution.files) {
    if (file.container === 'tokenizer') relocate(file.path, file.content, file.mode ?? 0o444);
  }
  env['LISTEN_ADDRESS'] = '127.0.0.1:0';
  env['ADMIN_LISTEN_ADDRESS'] = '127.0.0.1:0';
  const { workers: _workers, ...options } = loadTokenizerConfigFromEnv(env);
  const running = await startTokenizerServer({ ...options, auditLog: false, log: () => {} });
  runningProxies.push(running);
  return { running, container };
}

/** A forward-proxy request (absolute-form URL), as the SKILL.md tells the agent to send. */
function proxyRequest(
  proxyUrl: string,
  target: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: string }> {
  const proxy = new URL(proxyUrl);
  return new Promise((resolve, reject) => {
    const request = http.request(
      {
        host: proxy.hostname,
        port: proxy.port,
        method: 'GET',
        path: target,
        headers: { host: new URL(target).host, ...headers },
      },
      (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          body += chunk;
        });
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      },
    );
    request.on('error', reject);
    request.end();
  });
}

function credentialHeaders(contribution: SidecarContributionV1, key: string, passwordKey = key) {
  return {
    'proxy-tokenizer': secretByVariable(contribution, `TOKENIZER_CRED_${key}`),
    'proxy-authorization': `Bearer ${secretByVariable(contribution, `TOKENIZER_AUTH_${passwordKey}`)}`,
  };
}

describe('sealed credentials through the real tokenizer proxy', () => {
  it('opens a deployed credential with the tokenizer library and injects it into a real HTTPS request', async () => {
    const contribution = await deploy(demoConfig());
    const opened = openSecret(
      secretByVariable(contribution, 'TOKENIZER_CRED_GITHUB'),
      secretValue(contribution, 'tokenizer-open-key'),
    );
    expect(opened.processor).toEqual({ type: 'inject', token: rawSecrets.github });

    const { running, container } = await startTokenizerFromContribution(contribution);
    // The readiness probe the contribution declares answers on the admin listener.
    const readiness = container.readiness;
    if (readiness?.type !== 'http') throw new Error('expected an http readiness probe');
    const probe = await fetch(`${running.adminUrl}${readiness.path}`);
    expect(probe.status).toBe(200);
    expect(((await probe.json()) as { sealKey: string }).sealKey).toBe(
      contribution.agentEnv['TOKENIZER_SEAL_KEY'],
    );

    received.length = 0;
    const github = await proxyRequest(
      running.url,
      `http://localhost:${upstreamPort}/user`,
      credentialHeaders(contribution, 'GITHUB'),
    );
    expect(github).toEqual({ status: 200, body: '{"ok":true,"credential":"github"}' });
    expect(received[0]?.headers.authorization).toBe(`Bearer ${rawSecrets.github}`);
    expect(received[0]?.headers).not.toHaveProperty('proxy-tokenizer');
    expect(received[0]?.headers).not.toHaveProperty('proxy-authorization');

    const stripe = await proxyRequest(
      running.url,
      `http://127.0.0.1:${upstreamPort}/v1/charges`,
      credentialHeaders(contribution, 'STRIPE'),
    );
    expect(stripe.status).toBe(200);
    expect(received[1]?.headers['x-api-key']).toBe(`key=${rawSecrets.stripe}`);
  });

  it('refuses a wrong proxy password (407) and a host the credential is not bound to (400, as SKILL.md says)', async () => {
    const contribution = await deploy(demoConfig());
    const { running } = await startTokenizerFromContribution(contribution);
    received.length = 0;
    const wrongPassword = await proxyRequest(
      running.url,
      `http://localhost:${upstreamPort}/`,
      credentialHeaders(contribution, 'GITHUB', 'STRIPE'),
    );
    expect(wrongPassword.status).toBe(407);
    const unbound = await proxyRequest(
      running.url,
      `http://127.0.0.1:${upstreamPort}/`,
      credentialHeaders(contribution, 'GITHUB'),
    );
    expect(unbound.status).toBe(400);
    expect(unbound.body).toContain('secret not valid for');
    expect(skillOf(contribution)).toContain('`secret not valid for <host>`');
    expect(received).toEqual([]);
  });

  it('needs the CA bundle and the private-upstream switch for a local upstream (both off by default)', async () => {
    const noCa = await deploy(demoConfig({ upstreamCaCertificates: undefined }));
    const withoutCa = await startTokenizerFromContribution(noCa);
    const untrusted = await proxyRequest(
      withoutCa.running.url,
      `http://localhost:${upstreamPort}/`,
      credentialHeaders(noCa, 'GITHUB'),
    );
    expect(untrusted.status).toBe(502);
    expect(untrusted.body).toContain('verify');

    const defaults = await deploy(demoConfig({ allowPrivateUpstreams: undefined }));
    const guarded = await startTokenizerFromContribution(defaults);
    received.length = 0;
    const refused = await proxyRequest(
      guarded.running.url,
      `http://localhost:${upstreamPort}/`,
      credentialHeaders(defaults, 'GITHUB'),
    );
    expect(refused).toEqual({ status: 400, body: 'bad request: dialing localhost denied' });
    expect(received).toEqual([]);
  });

  it('after a rotation the proxy accepts the kept and the new token with the same open key', async () => {
    const before = await deploy(demoConfig());
    const after = await provider.rotation.rotate(
      testContext('proxy-only', 43),
      stateOf(before),
      provider.rotation.changeSchema.parse({
        credentials: [
          { name: 'github', secret: '' },
          { name: 'openai', secret: rawSecrets.openai, allowedHosts: [`localhost:${upstreamPort}`] },
        ],
      }),
    );
    expect(secretValue(after, 'tokenizer-open-key')).toBe(secretValue(before, 'tokenizer-open-key'));
    // The target recreates the tokenizer from the new contribution.
    const { running } = await startTokenizerFromContribution(after);
    const kept = await proxyRequest(
      running.url,
      `http://localhost:${upstreamPort}/`,
      credentialHeaders(after, 'GITHUB'),
    );
    expect(kept).toEqual({ status: 200, body: '{"ok":true,"credential":"github"}' });
    // The agent's kept env values are the very ones it had before the rotation.
    const keptFromBefore = await proxyRequest(
      running.url,
      `http://localhost:${upstreamPort}/`,
      credentialHeaders(before, 'GITHUB'),
    );
    expect(keptFromBefore.status).toBe(200);
    const added = await proxyRequest(
      running.url,
      `http://localhost:${upstreamPort}/`,
      credentialHeaders(after, 'OPENAI'),
    );
    expect(added).toEqual({ status: 200, body: '{"ok":true,"credential":"openai"}' });
    expect(after.agentEnv).not.toHaveProperty('TOKENIZER_HOSTS_STRIPE');
  });

  it('a token the agent seals itself with TOKENIZER_SEAL_KEY is refused: the proxy is no open egress', async () => {
    const contribution = await deploy(demoConfig());
    const { running } = await startTokenizerFromContribution(contribution);
    // Everything the agent has: the public seal key. No auth, no host rules.
    const forged = sealSecret(
      { processor: { type: 'inject', token: 'x' }, auth: { type: 'none' } },
      contribution.agentEnv['TOKENIZER_SEAL_KEY'] as string,
    );
    received.length = 0;
    const response = await proxyRequest(running.url, `http://localhost:${upstreamPort}/anything`, {
      'proxy-tokenizer': forged,
    });
    expect(response).toEqual({
      status: 407,
      body: 'unauthorized to use secret: not authorized: token not issued for this proxy',
    });
    expect(received).toEqual([]);
  });

  it("after a rotation that keeps one credential, a removed credential's old token is refused", async () => {
    const before = await deploy(demoConfig());
    const after = await provider.rotation.rotate(
      testContext('proxy-only', 53),
      stateOf(before),
      provider.rotation.changeSchema.parse({ credentials: [{ name: 'github', secret: '' }] }),
    );
    const { running } = await startTokenizerFromContribution(after);
    const kept = await proxyRequest(
      running.url,
      `http://localhost:${upstreamPort}/`,
      credentialHeaders(before, 'GITHUB'),
    );
    expect(kept.status).toBe(200);
    // Same key pair, so only the allow-list stops a copy the agent kept of the removed token.
    const removed = await proxyRequest(
      running.url,
      `http://127.0.0.1:${upstreamPort}/`,
      credentialHeaders(before, 'STRIPE'),
    );
    expect(removed.status).toBe(407);
  });

  it('a rotation that keeps nothing changes the key, so old tokens stop working', async () => {
    const before = await deploy(demoConfig());
    const after = await provider.rotation.rotate(
      testContext('proxy-only', 47),
      stateOf(before),
      provider.rotation.changeSchema.parse({
        credentials: [
          { name: 'github', secret: rawSecrets.github, allowedHosts: [`localhost:${upstreamPort}`] },
        ],
      }),
    );
    const { running } = await startTokenizerFromContribution(after);
    const old = await proxyRequest(
      running.url,
      `http://localhost:${upstreamPort}/`,
      credentialHeaders(before, 'GITHUB'),
    );
    // Not on the new allow-list (it was also sealed with the old key).
    expect(old.status).toBe(407);
    const fresh = await proxyRequest(
      running.url,
      `http://localhost:${upstreamPort}/`,
      credentialHeaders(after, 'GITHUB'),
    );
    expect(fresh.status).toBe(200);
  });
});

describe('SKILL.md examples run as written against the real proxy', () => {
  let contribution: SidecarContributionV1;
  let exampleEnv: NodeJS.ProcessEnv;
  let exampleDirectory: string;

  beforeAll(async () => {
    contribution = await deploy(demoConfig());
    const { running } = await startTokenizerFromContribution(contribution);
    exampleEnv = { ...process.env };
    for (const name of ['http_proxy', 'HTTP_PROXY', 'https_proxy', 'HTTPS_PROXY', 'all_proxy', 'ALL_PROXY']) {
      delete exampleEnv[name];
    }
    Object.assign(exampleEnv, {
      no_proxy: '',
      NO_PROXY: '',
      TOKENIZER_PROXY_URL: running.url,
      TOKENIZER_SEAL_KEY: contribution.agentEnv['TOKENIZER_SEAL_KEY'],
      TOKENIZER_HOSTS_GITHUB: contribution.agentEnv['TOKENIZER_HOSTS_GITHUB'],
      TOKENIZER_CRED_GITHUB: secretByVariable(contribution, 'TOKENIZER_CRED_GITHUB'),
      TOKENIZER_AUTH_GITHUB: secretByVariable(contribution, 'TOKENIZER_AUTH_GITHUB'),
    });
    // Inside the package so `import 'undici'` resolves from its node_modules.
    const cache = join(packageRoot, 'node_modules', '.cache');
    mkdirSync(cache, { recursive: true });
    exampleDirectory = mkdtempSync(join(cache, 'skill-examples-'));
  });

  afterAll(() => rmSync(exampleDirectory, { recursive: true, force: true }));

  it('has the five examples, all aimed at the first bound host', () => {
    const blocks = extractCodeBlocks(skillOf(contribution));
    expect(blocks.map((block) => block.language)).toEqual(['bash', 'bash', 'js', 'js', 'python']);
    for (const block of blocks) expect(block.code).toContain(`http://localhost:${upstreamPort}/`);
  });

  it.each([0, 1, 2, 3, 4])('example %i gets a 200 with the credential injected', async (index) => {
    const block = extractCodeBlocks(skillOf(contribution))[index];
    if (!block) throw new Error(`no example ${index}`);
    const file = join(exampleDirectory, `example-${index}`);
    received.length = 0;
    let stdout: string;
    if (block.language === 'bash') {
      writeFileSync(`${file}.sh`, block.code);
      ({ stdout } = await run('bash', [`${file}.sh`], { env: exampleEnv }));
      expect(stdout).toBe('{"ok":true,"credential":"github"}');
    } else if (block.language === 'js') {
      writeFileSync(`${file}.mjs`, block.code);
      ({ stdout } = await run(process.execPath, [`${file}.mjs`], { env: exampleEnv }));
      expect(stdout).toBe('200 {"ok":true,"credential":"github"}\n');
    } else {
      writeFileSync(`${file}.py`, block.code);
      ({ stdout } = await run('python3', [`${file}.py`], { env: exampleEnv }));
      expect(stdout).toBe('200 {"ok":true,"credential":"github"}\n');
    }
    expect(received.map((entry) => entry.headers.authorization)).toEqual([`Bearer ${rawSecrets.github}`]);
  });
});
