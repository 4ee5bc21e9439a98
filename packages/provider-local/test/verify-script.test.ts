// The self-test script run by this machine's node, outside any container: against a loopback
// stand-in for the tokenizer (what it sends for each check, how it reads the answers) and
// against the real tokenizer proxy in process, with and without its allow-list of issued
// tokens. The script inside a real agent container is covered by deploy-proxy-only.integration.test.ts.
import { spawn } from 'node:child_process';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  generateOpenKey,
  sealKeyFromOpenKey,
  sealSecret,
  startTokenizerServer,
  tokenDigest,
} from '@keyward/tokenizer';
import { afterEach, describe, expect, it } from 'vitest';
import { verifyScript } from '../src/verify-script.js';

interface Seen {
  url: string;
  headers: IncomingHttpHeaders;
}

const boundHost = 'api.bound.test:8443';
const unboundUrl = 'https://unbound.keyward.invalid/';

/** Answers like the tokenizer: the issued token works on its bound host only; a self-made one gets `selfSealedStatus`. */
async function standInProxy(
  selfSealedStatus: number,
): Promise<{ server: Server; url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createServer((request, response) => {
    seen.push({ url: request.url ?? '', headers: request.headers });
    const token = request.headers['proxy-tokenizer'];
    if (token === 'self-made') {
      response.writeHead(selfSealedStatus).end(`stand-in answer ${selfSealedStatus}`);
    } else if (token === 'issued' && request.headers['proxy-authorization'] === 'Bearer password') {
      response.writeHead(request.headers.host === boundHost ? 200 : 400).end();
    } else {
      response.writeHead(407).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

/** A loopback port nothing listens on, for the direct-connection check. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function runScript(
  proxyUrl: string,
  config: Record<string, unknown>,
  credential = { token: 'issued', password: 'password', hosts: boundHost },
) {
  const child = spawn(process.execPath, ['-'], {
    env: {
      KEYWARD_VERIFY: JSON.stringify(config),
      TOKENIZER_PROXY_URL: proxyUrl,
      TOKENIZER_CRED_DEMO: credential.token,
      TOKENIZER_AUTH_DEMO: credential.password,
      TOKENIZER_HOSTS_DEMO: credential.hosts,
    },
  });
  let stdout = '';
  child.stdout.on('data', (chunk) => {
    stdout += chunk;
  });
  child.stdin.end(verifyScript);
  await new Promise((resolve) => child.on('close', resolve));
  return (JSON.parse(stdout.trim()) as { checks: { name: string; passed: boolean; evidence: string }[] })
    .checks;
}

describe('the self-test script', () => {
  let server: Server | undefined;
  afterEach(async () => {
    await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
  });

  it('sends the self-sealed token alone to the unbound host and passes only on a 407', async () => {
    const proxy = await standInProxy(407);
    server = proxy.server;
    const config = {
      mode: 'proxy-only',
      unboundUrl,
      directUrl: `http://127.0.0.1:${await closedPort()}/`,
      selfSealedToken: 'self-made',
    };
    const checks = await runScript(proxy.url, config);
    expect(checks.map((check) => [check.name, check.passed])).toEqual([
      ['direct-egress-blocked', true],
      ['proxied-request-injected', true],
      ['unbound-host-refused', true],
      ['self-sealed-token-refused', true],
    ]);
    expect(checks[3]?.evidence).toBe(
      `GET ${unboundUrl} with only a self-sealed Proxy-Tokenizer -> 407 stand-in answer 407`,
    );
    const selfSealed = proxy.seen.filter((request) => request.headers['proxy-tokenizer'] === 'self-made');
    expect(selfSealed).toHaveLength(1);
    expect(selfSealed[0]?.url).toBe('http://unbound.keyward.invalid/');
    expect(selfSealed[0]?.headers['proxy-authorization']).toBeUndefined();
  });

  it.each([502, 400, 200])(
    'fails the check when the proxy answers %i to the self-sealed token',
    async (status) => {
      const proxy = await standInProxy(status);
      server = proxy.server;
      const checks = await runScript(proxy.url, {
        mode: 'proxy-only',
        directUrl: `http://127.0.0.1:${await closedPort()}/`,
        selfSealedToken: 'self-made',
      });
      const check = checks.find((entry) => entry.name === 'self-sealed-token-refused');
      expect(check?.passed).toBe(false);
      expect(check?.evidence).toContain(`-> ${status}`);
    },
  );

  it('without the option sends no such request and reports the same three checks as before', async () => {
    const proxy = await standInProxy(407);
    server = proxy.server;
    const checks = await runScript(proxy.url, {
      mode: 'proxy-only',
      directUrl: `http://127.0.0.1:${await closedPort()}/`,
    });
    expect(checks.map((check) => [check.name, check.passed])).toEqual([
      ['direct-egress-blocked', true],
      ['proxied-request-injected', true],
      ['unbound-host-refused', true],
    ]);
    expect(proxy.seen.map((request) => request.headers['proxy-tokenizer'])).toEqual(['issued', 'issued']);
  });

  it.each([
    ['with', true],
    ['without', false],
  ])(
    'against the real tokenizer %s the allow-list, the check passes only with it',
    async (_label, withList) => {
      const openKey = generateOpenKey();
      const sealKey = sealKeyFromOpenKey(openKey);
      // Every address here is loopback; nothing listens on the bound one either.
      const loopbackHost = `127.0.0.1:${await closedPort()}`;
      const issued = sealSecret(
        {
          processor: { type: 'inject', token: 'unused' },
          auth: { type: 'none' },
          allowedHosts: [loopbackHost],
        },
        sealKey,
      );
      const selfSealedToken = sealSecret(
        { processor: { type: 'inject', token: 'made-up' }, auth: { type: 'none' } },
        sealKey,
      );
      const proxy = await startTokenizerServer({
        openKey,
        listenAddress: '127.0.0.1:0',
        // The unbound URL is a closed loopback port: without the list the proxy dials it.
        allowPrivateUpstreams: true,
        // A port that swallows SYNs (a stale port-forward rule on a shared host) fails fast too.
        upstreamConnectTimeoutMs: 1000,
        ...(withList ? { allowedTokens: [tokenDigest(issued)] } : {}),
        log: () => {},
        auditLog: () => {},
      });
      try {
        const checks = await runScript(
          proxy.url,
          {
            mode: 'proxy-only',
            unboundUrl: `https://127.0.0.1:${await closedPort()}/`,
            directUrl: `http://127.0.0.1:${await closedPort()}/`,
            selfSealedToken,
          },
          { token: issued, password: '', hosts: loopbackHost },
        );
        const check = checks.find((entry) => entry.name === 'self-sealed-token-refused');
        expect(check?.passed).toBe(withList);
        if (withList) expect(check?.evidence).toContain('-> 407 unauthorized to use secret');
        else expect(check?.evidence).not.toContain('-> 407');
      } finally {
        await proxy.close();
      }
    },
    15_000,
  );
});
