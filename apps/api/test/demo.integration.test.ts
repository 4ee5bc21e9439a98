// `keyward demo` end to end, against real podman, through the real CLI process.
// Every claim the demo prints is checked here FROM THE OUTSIDE, not from its words:
// the demo API's own record of the headers it received, the agent container's
// networks, env and filesystem as the runtime reports them, probes run inside the
// agent by this test, and the labelled objects left after `keyward rm demo`.
import { createHash } from 'node:crypto';
import { request } from 'node:https';
import { sealSecret } from '@keyward/tokenizer';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findCredentialInContainer } from '../src/demo/credential-exposure.js';
import { firstHealthyAdminUrl } from '../src/demo/demo-api-container.js';
import { readContainerText } from '../src/demo/demo-chain.js';
import { removeDemoObjects } from '../src/demo/run-demo.js';
import {
  bundleCli,
  type CliRun,
  containerLogLines,
  dockerForTests,
  execIn,
  objectsOfInstance,
  runCli,
  startCli,
} from './demo-test-runtime.js';

const instance = 'demo';
const agentContainer = 'keyward-demo-agent';
const tokenizerContainer = 'keyward-demo-tokenizer';
const apiContainer = 'keyward-demo-demo-api';
const apiHost = 'api.demo.keyward.test';

// Runs inside the agent (script on stdin): what an agent that tries its luck sees.
// It reads the sealed token and proxy password from its own env, like a skill does;
// the self-sealed token is one this test made with the agent's public seal key.
const probeScript = (apiAddress: string, selfSealedToken: string) => String.raw`
const http = require('node:http');
const net = require('node:net');
const env = process.env;
function viaProxy(target, withPassword, token = env.TOKENIZER_CRED_DEMO_API) {
  return new Promise((resolve) => {
    const proxy = new URL(env.TOKENIZER_PROXY_URL);
    const url = new URL(target);
    const headers = { host: url.host, 'proxy-tokenizer': token };
    if (withPassword) headers['proxy-authorization'] = 'Bearer ' + env.TOKENIZER_AUTH_DEMO_API;
    const request = http.request({ host: proxy.hostname, port: proxy.port, path: url.href, headers, timeout: 10000 }, (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode));
    });
    request.on('timeout', () => request.destroy(new Error('timeout')));
    request.on('error', (error) => resolve(error.code || error.message));
    request.end();
  });
}
function direct(host, port) {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const timer = setTimeout(() => { socket.destroy(); resolve('timeout'); }, 4000);
    socket.on('connect', () => { clearTimeout(timer); socket.destroy(); resolve('connected'); });
    socket.on('error', (error) => { clearTimeout(timer); resolve(error.code || error.message); });
  });
}
(async () => {
  const result = {
    proxied: await viaProxy('http://${apiHost}:8443/e2e-probe', true),
    proxiedWithoutPassword: await viaProxy('http://${apiHost}:8443/e2e-no-password', false),
    otherHost: await viaProxy('http://example.com/', true),
    // To the bound API itself: without the allow-list it would arrive there, credential-free.
    selfSealed: await viaProxy('http://${apiHost}:8443/e2e-self-sealed', false, '${selfSealedToken}'),
    directByName: await direct('${apiHost}', 8443),
    directByAddress: await direct('${apiAddress}', 8443),
    directToTokenizerEgress: await direct('1.1.1.1', 443),
  };
  process.stdout.write(JSON.stringify(result) + '\n');
})();
`;

interface Received {
  url: string;
  status: number;
  headers: Record<string, string | string[] | undefined>;
}

async function adminUrl(docker: Docker): Promise<string> {
  const info = await docker.getContainer(apiContainer).inspect();
  const binding = info.NetworkSettings.Ports['9090/tcp']?.find((entry) => !entry.HostIp?.includes(':'));
  if (!binding?.HostPort) throw new Error('the demo API publishes no admin port');
  const address = info.NetworkSettings.Networks['keyward-demo-egress']?.IPAddress;
  const health = await firstHealthyAdminUrl(
    [`http://127.0.0.1:${binding.HostPort}`, `http://${address}:9090`],
    20_000,
  );
  if (!health.url)
    throw new Error(`the demo API's admin port does not answer: ${health.problems.join('; ')}`);
  return health.url;
}

async function received(docker: Docker): Promise<Received[]> {
  const response = await fetch(`${await adminUrl(docker)}/_received`);
  return (await response.json()) as Received[];
}

// provider-local gives the runtime 3 s to answer `version`; a podman busy with other
// tests' containers can take longer, and then `rm` reports RUNTIME_UNAVAILABLE.
// Only that answer is retried: any other failure fails the test.
async function removeWithCli(cli: string): Promise<CliRun> {
  let run = await runCli(cli, ['rm', instance]);
  for (
    let attempt = 1;
    attempt < 5 && run.code !== 0 && run.stderr.includes('RUNTIME_UNAVAILABLE');
    attempt += 1
  ) {
    run = await runCli(cli, ['rm', instance]);
  }
  return run;
}

/** The bearer value of the demo's proxied call, which the API answered with 200. */
async function acceptedCredential(docker: Docker): Promise<string> {
  const call = (await received(docker)).find((entry) => entry.url === '/v1/whoami');
  expect(call?.status).toBe(200);
  const header = call?.headers['authorization'];
  expect(header).toMatch(/^Bearer kwdemo_[\w-]{20,}$/);
  return (header as string).slice('Bearer '.length);
}

/** A call from the host straight to the demo API, trusting only the CA the tokenizer was given. */
function apiStatus(address: string, ca: string, token: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const outgoing = request(
      {
        host: address,
        port: 8443,
        servername: apiHost,
        ca,
        path: '/e2e-from-host',
        headers: { host: `${apiHost}:8443`, authorization: `Bearer ${token}` },
        timeout: 10_000,
      },
      (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      },
    );
    outgoing.on('error', reject);
    outgoing.end();
  });
}

function describeRun(run: CliRun): string {
  return `exit ${run.code} (${run.signal ?? 'no signal'})\n--- stdout\n${run.stdout}\n--- stderr\n${run.stderr}`;
}

describe('keyward demo on real podman (the real CLI process)', () => {
  let docker: Docker;
  let cli: string;

  beforeAll(async () => {
    docker = await dockerForTests();
    cli = await bundleCli();
    // A demo left by a developer's earlier run must not count for this one.
    await removeDemoObjects(docker);
  });

  afterAll(async () => {
    if (docker) await removeDemoObjects(docker);
  });

  it('keeps every promise it prints, checked from outside; re-runs; and `keyward rm demo` leaves nothing labelled', async () => {
    const first = await runCli(cli, ['demo', '--non-interactive']);
    expect(first.code, describeRun(first)).toBe(0);

    // The instance's containers run, each where proxy-only puts it.
    const agent = await docker.getContainer(agentContainer).inspect();
    const api = await docker.getContainer(apiContainer).inspect();
    const tokenizer = await docker.getContainer(tokenizerContainer).inspect();
    for (const container of [agent, api, tokenizer]) {
      expect(container.State.Running).toBe(true);
      expect(container.Config.Labels['keyward.dev/instance']).toBe(instance);
    }
    // proxy-only: the agent has no network of its own; it lives in a namespace with only
    // loopback, held by the agent-network helper, which relays the connections the plan allows.
    const holder = await docker.getContainer(`keyward-${instance}-agent-network`).inspect();
    expect(holder.HostConfig.NetworkMode).toBe('none');
    expect(agent.HostConfig.NetworkMode).toBe(`container:${holder.Id}`);
    expect(Object.keys(api.NetworkSettings.Networks)).toEqual(['keyward-demo-egress']);
    expect(api.NetworkSettings.Networks['keyward-demo-egress']?.Aliases).toContain(apiHost);
    expect(Object.keys(tokenizer.NetworkSettings.Networks)).toContain('keyward-demo-egress');

    // The real credential: what the API accepted on the demo's proxied call. The
    // API answers this test's own calls too: 200 with that value, 401 without.
    const credential = await acceptedCredential(docker);
    const apiAddress = api.NetworkSettings.Networks['keyward-demo-egress']?.IPAddress as string;
    const trustedCa = await readContainerText(
      docker,
      tokenizerContainer,
      '/etc/keyward/tokenizer/upstream-ca.pem',
    );
    expect(await apiStatus(apiAddress, trustedCa, credential)).toBe(200);
    expect(await apiStatus(apiAddress, trustedCa, `${credential}x`)).toBe(401);

    // The demo's proxied call arrived with the real credential injected, and nothing of the proxy.
    const demoCall = (await received(docker)).find((entry) => entry.url === '/v1/whoami');
    expect(demoCall?.headers['authorization']).toBe(`Bearer ${credential}`);
    expect(demoCall?.status).toBe(200);
    expect(Object.keys(demoCall?.headers ?? {}).filter((header) => header.startsWith('proxy-'))).toEqual([]);

    // Check 6: the demo's verify sent a self-sealed token; the tokenizer's own audit log shows
    // it refused one that is not the agent's issued token, with 407 TOKEN_NOT_ALLOWED.
    expect(first.stdout).toMatch(
      /✔ PASS {2}6\. The proxy refuses a token the agent seals itself\n\s+GET https:\/\/example\.com\/ with only a self-sealed Proxy-Tokenizer -> 407 /,
    );
    const agentVariables = new Map(
      agent.Config.Env.map((entry) => [
        entry.slice(0, entry.indexOf('=')),
        entry.slice(entry.indexOf('=') + 1),
      ]),
    );
    const issuedFingerprint = createHash('sha256')
      .update(agentVariables.get('TOKENIZER_CRED_DEMO_API') ?? '')
      .digest('hex')
      .slice(0, 16);
    const refusals = (await containerLogLines(docker, tokenizerContainer))
      .filter((line) => line.startsWith('{'))
      .map(
        (line) =>
          JSON.parse(line) as { status?: number; error?: string; host?: string; credentials?: string[] },
      )
      .filter((entry) => entry.error === 'TOKEN_NOT_ALLOWED');
    expect(refusals).toEqual([
      expect.objectContaining({ status: 407, host: 'example.com', credentials: [expect.any(String)] }),
    ]);
    expect(refusals[0]?.credentials).not.toContain(issuedFingerprint);

    // Probes of this test inside the agent: through the proxy works, around it does not, and
    // a token this test seals with the agent's public seal key is refused.
    const sealKey = agentVariables.get('TOKENIZER_SEAL_KEY');
    expect(sealKey).toMatch(/^[0-9a-f]{64}$/);
    const selfSealedToken = sealSecret(
      { processor: { type: 'inject', token: 'made-up-by-the-test' }, auth: { type: 'none' } },
      sealKey as string,
    );
    const probe = await execIn(
      docker,
      agentContainer,
      ['node', '-'],
      probeScript(apiAddress, selfSealedToken),
    );
    expect(probe.exitCode, probe.stderr).toBe(0);
    const outcome = JSON.parse(probe.stdout.trim().split('\n').pop() ?? '{}') as Record<
      string,
      number | string
    >;
    expect(outcome['proxied']).toBe(200);
    expect(outcome['proxiedWithoutPassword']).toBe(407);
    expect(outcome['otherHost']).toBeGreaterThanOrEqual(400);
    expect(outcome['otherHost']).toBeLessThan(500);
    expect(outcome['selfSealed']).toBe(407);
    for (const key of ['directByName', 'directByAddress', 'directToTokenizerEgress']) {
      expect(outcome[key], key).not.toBe('connected');
    }
    const afterProbe = await received(docker);
    expect(afterProbe.find((entry) => entry.url === '/e2e-probe')?.headers['authorization']).toBe(
      `Bearer ${credential}`,
    );
    expect(afterProbe.some((entry) => entry.url === '/e2e-no-password')).toBe(false);
    expect(afterProbe.some((entry) => entry.url === '/e2e-self-sealed')).toBe(false);

    // The agent holds a sealed token, never the credential or the tokenizer's open key.
    const agentEnv = agent.Config.Env.join('\n');
    expect(agentEnv).toMatch(/^TOKENIZER_CRED_DEMO_API=.{40,}$/m);
    expect(agentEnv).not.toContain(credential);
    const exposure = await findCredentialInContainer(docker, agentContainer, credential);
    expect(exposure.findings).toEqual([]);
    expect(exposure.unreadable).toEqual([]);
    expect(exposure.searched.files).toBeGreaterThan(3);
    // Invariant 1: the raw credential is nowhere at rest, not even in the tokenizer
    // (it holds the open key only) or the demo API (it got the value over HTTP).
    const apiExposure = await findCredentialInContainer(docker, apiContainer, credential);
    expect(apiExposure.findings).toEqual([]);
    const tokenizerExposure = await findCredentialInContainer(docker, tokenizerContainer, credential);
    expect(tokenizerExposure.findings).toEqual([]);
    expect(tokenizerExposure.unreadable).toEqual([]);
    const openKey = (
      await readContainerText(docker, tokenizerContainer, '/run/keyward/tokenizer/open-key')
    ).trim();
    expect(openKey.length).toBeGreaterThan(20);
    expect((await findCredentialInContainer(docker, agentContainer, openKey)).findings).toEqual([]);

    // Re-running re-deploys with a fresh credential.
    const second = await runCli(cli, ['demo', '--non-interactive']);
    expect(second.code, describeRun(second)).toBe(0);
    const secondCredential = await acceptedCredential(docker);
    expect(secondCredential).toMatch(/^kwdemo_/);
    expect(secondCredential).not.toBe(credential);
    expect((await docker.getContainer(agentContainer).inspect()).Id).not.toBe(agent.Id);

    const removed = await removeWithCli(cli);
    expect(removed.code, describeRun(removed)).toBe(0);
    expect(await objectsOfInstance(docker, instance)).toEqual([]);
  });

  it('Ctrl-C in the middle of the deploy removes everything the run made', async () => {
    await removeDemoObjects(docker);
    expect(await objectsOfInstance(docker, instance)).toEqual([]);
    const run = startCli(cli, ['demo', '--non-interactive']);
    // Interrupt once the runtime holds the tokenizer container: the deploy is half done.
    const deadline = Date.now() + 90_000;
    let seen = false;
    while (!seen && Date.now() < deadline && run.child.exitCode === null) {
      seen = (await docker.listContainers({ all: true, filters: { name: [tokenizerContainer] } })).length > 0;
      if (!seen) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(seen, run.output()).toBe(true);
    run.child.kill('SIGINT');
    const result = await run.done;
    expect(result.code, describeRun(result)).toBe(130);
    expect(await objectsOfInstance(docker, instance)).toEqual([]);
  });
});
