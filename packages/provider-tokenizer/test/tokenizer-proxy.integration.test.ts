import { execFile, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { ExecResultV2, SidecarContributionV2, VerifyCheckV2 } from '@keyward/core';
import {
  loadTokenizerConfigFromEnv,
  openSecret,
  type RunningTokenizerServer,
  sealSecret,
  startTokenizerServer,
  tokenDigest,
} from '@keyward/tokenizer';
import { createThrowawayCertificates, type ThrowawayCertificates } from '@keyward/tokenizer/certificates';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTokenizerProvider } from '../src/index.js';
import {
  litellmRequest,
  rawSecrets,
  secretByVariable,
  secretValue,
  skillOf,
  stateOf,
  testContext,
} from './helpers.js';
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

async function deploy(
  config: unknown,
  seed = 41,
  requests: Parameters<typeof testContext>[2] = [],
): Promise<SidecarContributionV2> {
  return provider.contribute(testContext('proxy-only', seed, requests), provider.configSchema.parse(config));
}

/**
 * STAND-IN for the tokenizer container (no image can run in this test): the same
 * server code the `keyward-tokenizer` image runs, configured only from the container
 * env of the contribution through the tokenizer's own env loader. The target's file
 * delivery is emulated by writing the open-key secret and the CA file into a temp dir
 * and pointing the env at them; listeners move to 127.0.0.1:0.
 */
async function startTokenizerFromContribution(contribution: SidecarContributionV2) {
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

function credentialHeaders(contribution: SidecarContributionV2, key: string, passwordKey = key) {
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
    expect(opened.processor).toEqual({
      type: 'inject',
      token: rawSecrets.github,
      dst: 'Authorization',
      fmt: 'Bearer %s',
    });

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

describe('the sealed header cannot be moved by the client (issue 11)', () => {
  it.each([
    ['a client dst', { dst: 'X-Anything' }, 400, 'bad request'],
    ['a client dst and fmt', { dst: 'X-Anything', fmt: '%s' }, 502, 'bad fmt'],
    ['a client fmt alone', { fmt: '%s' }, 502, 'bad fmt'],
  ])(
    'refuses %s for a credential sealed with the default header, sending nothing upstream',
    async (_label, params, status, body) => {
      const contribution = await deploy(demoConfig());
      const { running } = await startTokenizerFromContribution(contribution);
      const headers = credentialHeaders(contribution, 'GITHUB');
      received.length = 0;
      const moved = await proxyRequest(running.url, `http://localhost:${upstreamPort}/echo`, {
        ...headers,
        'proxy-tokenizer': `${headers['proxy-tokenizer']}; ${JSON.stringify(params)}`,
      });
      expect(moved.status).toBe(status);
      expect(moved.body).toContain(body);
      expect(moved.body).not.toContain(rawSecrets.github);
      expect(received).toEqual([]);
    },
  );

  it('refuses a client dst for a credential with its own header, and accepts the sealed one repeated', async () => {
    const contribution = await deploy(demoConfig());
    const { running } = await startTokenizerFromContribution(contribution);
    const headers = credentialHeaders(contribution, 'STRIPE');
    const url = `http://127.0.0.1:${upstreamPort}/`;
    received.length = 0;
    const moved = await proxyRequest(running.url, url, {
      ...headers,
      'proxy-tokenizer': `${headers['proxy-tokenizer']}; {"dst":"Authorization"}`,
    });
    expect(moved.status).toBe(400);
    expect(received).toEqual([]);
    const same = await proxyRequest(running.url, url, {
      ...headers,
      'proxy-tokenizer': `${headers['proxy-tokenizer']}; {"dst":"x-api-key","fmt":"key=%s"}`,
    });
    expect(same.status).toBe(200);
    expect(received.map((entry) => entry.headers['x-api-key'])).toEqual([`key=${rawSecrets.stripe}`]);
  });

  it('a token sealed without dst (before this version) lets the client move it: the stand-in for what the sealing now prevents', async () => {
    const contribution = await deploy(demoConfig());
    const unpinned = sealSecret(
      {
        processor: { type: 'inject', token: rawSecrets.github },
        auth: { type: 'none' },
        allowedHosts: [`localhost:${upstreamPort}`],
      },
      contribution.agentEnv['TOKENIZER_SEAL_KEY'] as string,
    );
    const { running } = await startTokenizerFromContribution(withExtraAllowedToken(contribution, unpinned));
    received.length = 0;
    const moved = await proxyRequest(running.url, `http://localhost:${upstreamPort}/echo`, {
      'proxy-tokenizer': `${unpinned}; {"dst":"X-Anything","fmt":"%s"}`,
    });
    expect(moved.status).toBe(401);
    expect(received[0]?.headers['x-anything']).toBe(rawSecrets.github);
  });
});

/** The contribution with one more token on the proxy's allow-list (a token sealed outside keyward). */
function withExtraAllowedToken(contribution: SidecarContributionV2, token: string): SidecarContributionV2 {
  return {
    ...contribution,
    files: contribution.files.map((file) =>
      file.path.endsWith('/allowed-tokens')
        ? { ...file, content: `${file.content}sha256:${tokenDigest(token)}\n` }
        : file,
    ),
  };
}

describe('a credential sealed for another sidecar works from that sidecar only', () => {
  it("LiteLLM's sealed key, sent with its proxy password from its own env, is injected; the agent's password does not open it", async () => {
    const request = litellmRequest({ allowedHosts: [`localhost:${upstreamPort}`] });
    const contribution = await deploy(demoConfig(), 61, [request]);
    const { running } = await startTokenizerFromContribution(contribution);
    const token = secretByVariable(contribution, 'OPENAI_SEALED_TOKEN');
    const password = secretByVariable(contribution, 'OPENAI_PROXY_PASSWORD');
    received.length = 0;
    const ok = await proxyRequest(running.url, `http://localhost:${upstreamPort}/v1/chat/completions`, {
      'proxy-tokenizer': token,
      'proxy-authorization': `Bearer ${password}`,
    });
    expect(ok).toEqual({ status: 200, body: '{"ok":true,"credential":"openai"}' });
    const withAgentPassword = await proxyRequest(running.url, `http://localhost:${upstreamPort}/`, {
      'proxy-tokenizer': token,
      'proxy-authorization': `Bearer ${secretByVariable(contribution, 'TOKENIZER_AUTH_GITHUB')}`,
    });
    expect(withAgentPassword.status).toBe(407);
    expect(received).toHaveLength(1);
  });

  it('keeps working after a rotation of the tokenizer that removes every agent credential', async () => {
    const request = litellmRequest({ allowedHosts: [`localhost:${upstreamPort}`] });
    const before = await deploy(demoConfig(), 67, [request]);
    const after = await provider.rotation.rotate(
      testContext('proxy-only', 71),
      stateOf(before),
      provider.rotation.changeSchema.parse({ credentials: [] }),
    );
    const { running } = await startTokenizerFromContribution(after);
    const response = await proxyRequest(running.url, `http://localhost:${upstreamPort}/`, {
      'proxy-tokenizer': secretByVariable(before, 'OPENAI_SEALED_TOKEN'),
      'proxy-authorization': `Bearer ${secretByVariable(before, 'OPENAI_PROXY_PASSWORD')}`,
    });
    expect(response).toEqual({ status: 200, body: '{"ok":true,"credential":"openai"}' });
    const removed = await proxyRequest(
      running.url,
      `http://localhost:${upstreamPort}/`,
      credentialHeaders(before, 'GITHUB'),
    );
    expect(removed.status).toBe(407);
  });
});

/**
 * STAND-IN for the target's exec in the agent container: this machine's node runs the check's
 * command with the script on stdin and the agent's env (the contribution's agent env and
 * agent-visible secrets, the proxy URL moved to the loopback proxy).
 */
async function runCheck(
  check: VerifyCheckV2,
  contribution: SidecarContributionV2,
  proxyUrl: string,
  replace: Record<string, string> = {},
): Promise<ExecResultV2> {
  expect(check.exec.container).toBe('agent');
  expect(check.exec.command[0]).toBe('node');
  const env: Record<string, string> = { PATH: process.env['PATH'] ?? '' };
  Object.assign(env, contribution.agentEnv);
  for (const secret of contribution.secrets) {
    if (secret.visibleTo.includes('agent') && secret.delivery.type === 'env')
      env[secret.delivery.variable] = secret.value;
  }
  Object.assign(env, { TOKENIZER_PROXY_URL: proxyUrl }, replace);
  const child = spawn(process.execPath, check.exec.command.slice(1), { env });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => {
    stdout += chunk;
  });
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  child.stdin.end(check.exec.stdin ?? '');
  const exitCode = await new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? -1)));
  return { exitCode, stdout, stderr, timedOut: false };
}

describe("the tokenizer's own self-test checks, run against the real proxy", () => {
  async function checksFor(contribution: SidecarContributionV2, options: Record<string, unknown> = {}) {
    return provider.verification.checks(
      {
        instanceName: 'demo',
        networkMode: 'proxy-only',
        metadata: contribution.metadata,
        exports: contribution.exports ?? {},
      },
      provider.verification.optionsSchema?.parse(options),
    );
  }

  it('all four pass against a deployed tokenizer, with evidence and no secret in it', async () => {
    const contribution = await deploy(demoConfig());
    const { running } = await startTokenizerFromContribution(contribution);
    const checks = await checksFor(contribution);
    expect(checks.map((check) => check.name)).toEqual([
      'proxied-request-injected',
      'unbound-host-refused',
      'credential-header-pinned',
      'self-sealed-token-refused',
    ]);
    received.length = 0;
    const results = [];
    for (const check of checks) {
      // Nothing secret in argv or in the script.
      expect(JSON.stringify([check.exec.command, check.exec.stdin])).not.toContain(
        secretByVariable(contribution, 'TOKENIZER_CRED_GITHUB'),
      );
      results.push({ name: check.name, ...check.judge(await runCheck(check, contribution, running.url)) });
    }
    expect(results).toEqual([
      {
        name: 'proxied-request-injected',
        passed: true,
        evidence: `GET https://localhost:${upstreamPort}/ via http://tokenizer:4001 with TOKENIZER_CRED_GITHUB -> 200`,
      },
      {
        name: 'unbound-host-refused',
        passed: true,
        evidence: expect.stringMatching(
          /^GET https:\/\/unbound\.keyward\.invalid\/ with TOKENIZER_CRED_GITHUB -> 400 .*secret not valid for/,
        ),
      },
      {
        name: 'credential-header-pinned',
        passed: true,
        evidence: `GET https://localhost:${upstreamPort}/ with TOKENIZER_CRED_GITHUB and the parameter {"dst":"X-Keyward-Probe"} -> 400 bad request`,
      },
      {
        name: 'self-sealed-token-refused',
        passed: true,
        evidence:
          'GET https://unbound.keyward.invalid/ with only a self-sealed Proxy-Tokenizer -> 407 unauthorized to use secret: not authorized: token not issued for this proxy',
      },
    ]);
    // Only the first check reached the upstream, with the credential injected.
    expect(received.map((entry) => entry.headers.authorization)).toEqual([`Bearer ${rawSecrets.github}`]);
    for (const result of results) expect(result.evidence).not.toContain(rawSecrets.github);
  });

  it('honours allowedUrl, unboundUrl and credential', async () => {
    const contribution = await deploy(demoConfig());
    const { running } = await startTokenizerFromContribution(contribution);
    const checks = await checksFor(contribution, {
      credential: 'stripe',
      allowedUrl: `https://127.0.0.1:${upstreamPort}/v1/charges`,
      unboundUrl: `https://localhost:${upstreamPort}/`,
    });
    received.length = 0;
    const injected = checks.find((check) => check.name === 'proxied-request-injected') as VerifyCheckV2;
    expect(injected.judge(await runCheck(injected, contribution, running.url))).toMatchObject({
      passed: true,
    });
    const unbound = checks.find((check) => check.name === 'unbound-host-refused') as VerifyCheckV2;
    expect(unbound.judge(await runCheck(unbound, contribution, running.url))).toMatchObject({
      passed: true,
      evidence: expect.stringContaining(
        `GET https://localhost:${upstreamPort}/ with TOKENIZER_CRED_STRIPE -> 400`,
      ),
    });
    expect(received.map((entry) => entry.headers['x-api-key'])).toEqual([`key=${rawSecrets.stripe}`]);
  });

  it('fail when what they prove is false: no allow-list, an unpinned token, a dead proxy', async () => {
    const contribution = await deploy(demoConfig());
    // A proxy started without the allow-list opens the self-sealed token.
    const open = structuredClone(contribution);
    const tokenizer = open.containers[0];
    if (tokenizer?.env) delete tokenizer.env['TOKENIZER_ALLOWED_TOKENS_FILE'];
    const withoutList = await startTokenizerFromContribution(open);
    const checks = await checksFor(contribution);
    const selfSealed = checks.find((check) => check.name === 'self-sealed-token-refused') as VerifyCheckV2;
    const judged = selfSealed.judge(await runCheck(selfSealed, contribution, withoutList.running.url));
    expect(judged.passed).toBe(false);
    expect(judged.evidence).not.toContain('-> 407');

    // A token sealed without dst: the proxy writes the credential where the client asks.
    const unpinned = sealSecret(
      {
        processor: { type: 'inject', token: rawSecrets.github },
        auth: { type: 'none' },
        allowedHosts: [`localhost:${upstreamPort}`],
      },
      contribution.agentEnv['TOKENIZER_SEAL_KEY'] as string,
    );
    const { running } = await startTokenizerFromContribution(withExtraAllowedToken(contribution, unpinned));
    const pinned = checks.find((check) => check.name === 'credential-header-pinned') as VerifyCheckV2;
    const moved = pinned.judge(
      await runCheck(pinned, contribution, running.url, { TOKENIZER_CRED_GITHUB: unpinned }),
    );
    expect(moved.passed).toBe(false);
    // The upstream's answer is not quoted: an API that echoes the moved header would leak it here.
    expect(moved.evidence).toMatch(/-> 401$/);
    expect(moved.evidence).not.toContain(rawSecrets.github);

    // The agent lacks the credential's variable: said so, nothing sent.
    const injected = checks.find((check) => check.name === 'proxied-request-injected') as VerifyCheckV2;
    received.length = 0;
    expect(
      injected.judge(await runCheck(injected, contribution, running.url, { TOKENIZER_CRED_GITHUB: '' })),
    ).toEqual({
      passed: false,
      evidence: `GET https://localhost:${upstreamPort}/ via http://tokenizer:4001 with TOKENIZER_CRED_GITHUB -> TOKENIZER_CRED_GITHUB is not in the agent environment`,
    });
    expect(received).toEqual([]);

    // Nothing listens: every check fails with the network error as evidence.
    await running.close();
    for (const check of checks) {
      const result = check.judge(await runCheck(check, contribution, running.url));
      expect(result.passed, check.name).toBe(false);
      expect(result.evidence, check.name).toContain('ECONNREFUSED');
    }
  });
});

describe('SKILL.md examples run as written against the real proxy', () => {
  let contribution: SidecarContributionV2;
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
