import { ProviderRegistry, SecretRedactor } from '@keyward/core';
import { createMemoryTargetProvider } from '@keyward/core/testing';
import { createTokenizerProvider } from '@keyward/provider-tokenizer';
import { describe, expect, it } from 'vitest';
import { createApp } from '../src/app.js';
import { createJsonLogger } from '../src/logger.js';

// The real tokenizer provider (it seals with the real tokenizer library) on the
// in-memory target: every byte the API sends back or logs is scanned.
const knownSecret = 'ghp_KnownSecretForTheScan_0123456789abcdef';
const rotatedSecret = 'sk_live_RotatedSecretForTheScan_9876543210';
const token = 'kw_scan-token-0123456789abcdef';

describe('no raw credential or open key leaves the API', () => {
  it('redacts registered secrets from container log lines, JSON and streamed', async () => {
    const target = createMemoryTargetProvider();
    const registry = new ProviderRegistry();
    registry.registerTarget({
      ...target,
      logs: () =>
        (async function* () {
          yield {
            container: 'tokenizer',
            stream: 'stderr' as const,
            line: `upstream said: bad token ${knownSecret}`,
          };
        })(),
    });
    registry.registerSidecar(createTokenizerProvider());
    const app = createApp({ registry, token, logger: createJsonLogger({ write: () => {} }) });
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const deployed = await app.request('/api/instances', {
      method: 'POST',
      headers,
      body: JSON.stringify({
        name: 'logs',
        target: 'memory',
        agent: { image: 'a', port: 18789, skillsDirectory: '/skills' },
        sidecars: {
          tokenizer: { credentials: [{ name: 'gh', secret: knownSecret, allowedHosts: ['api.github.com'] }] },
        },
      }),
    });
    const { jobId } = (await deployed.json()) as { jobId: string };
    await (await app.request(`/api/jobs/${jobId}/events`, { headers })).text();
    for (const query of ['', '?follow=true']) {
      const text = await (await app.request(`/api/instances/logs/logs${query}`, { headers })).text();
      expect(text).toContain('upstream said: bad token [REDACTED]');
      expect(text).not.toContain(knownSecret);
    }
  });

  it('scans every response body and log line of a deploy, rotation and the reads around them', async () => {
    const logLines: string[] = [];
    const registry = new ProviderRegistry();
    // What the self-test hands the runtime (commands, scripts on stdin) is scanned too.
    const execRequests: string[] = [];
    const target = createMemoryTargetProvider({
      exec: (_plan, request) => {
        execRequests.push(JSON.stringify(request));
        return { exitCode: 1, stdout: '', stderr: 'the in-memory target runs no processes', timedOut: false };
      },
    });
    registry.registerTarget(target);
    registry.registerSidecar(createTokenizerProvider());
    const app = createApp({
      registry,
      token,
      logger: createJsonLogger({ write: (line) => logLines.push(line) }),
    });
    const bodies: { path: string; status: number; text: string }[] = [];
    const call = async (method: string, path: string, body?: unknown) => {
      const response = await app.request(path, {
        method,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await response.text();
      bodies.push({ path: `${method} ${path}`, status: response.status, text });
      return { status: response.status, json: () => JSON.parse(text) };
    };
    const followJob = async (jobId: string) => {
      const events = await call('GET', `/api/jobs/${jobId}/events`);
      return events;
    };

    const spec = {
      name: 'scan',
      target: 'memory',
      agent: { image: 'localhost/agent:test', port: 18789, skillsDirectory: '/skills' },
      sidecars: {
        tokenizer: {
          credentials: [
            { name: 'github', secret: knownSecret, allowedHosts: ['api.github.com'], headerFmt: 'token %s' },
          ],
        },
      },
    };
    const deploy = await call('POST', '/api/instances', spec);
    expect(deploy.status).toBe(202);
    const deployEvents = await followJob(deploy.json().jobId);
    expect(deployEvents.status).toBe(200);
    expect(bodies.at(-1)!.text).toContain('event: result');

    const planned = target.inspect('scan')!;
    const openKey = planned.secrets.find((secret) => secret.name === 'tokenizer-open-key')?.value;
    expect(openKey, 'the tokenizer contributed an open key').toMatch(/^[0-9a-f]{64}$/);
    // Sanity: the target really holds the sealed credential, so the scan below is meaningful.
    expect(
      planned.secrets.some(
        (secret) => secret.providerId === 'tokenizer' && secret.visibleTo.includes('agent'),
      ),
    ).toBe(true);

    await call('GET', '/api/instances');
    await call('GET', '/api/instances/scan');
    const view = await call('GET', '/api/instances/scan/tokenizer');
    expect(view.json()).toEqual({
      enabled: true,
      credentials: [{ name: 'github', allowedHosts: ['api.github.com'], headerFmt: 'token %s' }],
    });
    await call('GET', '/api/instances/scan/sidecars/tokenizer');
    await call('GET', '/api/instances/scan/logs');
    await call('POST', '/api/instances/scan/verify');
    await call('POST', '/api/instances/scan/verify', { allowedUrl: 'https://api.github.com/zen' });
    await call('POST', '/api/render', { ...spec, name: 'scan-render' });

    // The seed installer's contract: the full list, `secret: ""` keeps a credential.
    const rotation = await call('PUT', '/api/instances/scan/tokenizer', {
      credentials: [
        { name: 'github', secret: '', allowedHosts: ['api.github.com'] },
        { name: 'stripe', secret: rotatedSecret, allowedHosts: ['api.stripe.com'] },
      ],
    });
    expect(rotation.status).toBe(202);
    await followJob(rotation.json().jobId);
    expect(bodies.at(-1)!.text).toContain('event: result');
    const rotated = await call('GET', '/api/instances/scan/tokenizer');
    expect(rotated.json().credentials.map((credential: { name: string }) => credential.name)).toEqual([
      'github',
      'stripe',
    ]);

    // Rejected input that carries a secret must not echo it.
    const badChange = await call('PUT', '/api/instances/scan/tokenizer', {
      credentials: [
        { name: 'stripe', secret: `${rotatedSecret}\n`, allowedHosts: ['https://api.stripe.com/v1'] },
      ],
    });
    expect(badChange.status).toBe(400);
    const badSpec = await call('POST', '/api/instances', {
      ...spec,
      name: 'scan-bad',
      sidecars: {
        tokenizer: { credentials: [{ name: 'github', secret: knownSecret, allowedHosts: ['*.github.com'] }] },
      },
    });
    expect(badSpec.status).toBe(400);
    const misplaced = await call('POST', '/api/instances', {
      ...spec,
      name: 'scan-misplaced',
      agent: { image: 'x', port: 18789, skillsDirectory: '/skills', env: { GITHUB_TOKEN: knownSecret } },
    });
    // The agent env is free text; the response must still not repeat the value.
    expect(misplaced.status).toBe(202);
    await followJob(misplaced.json().jobId);
    const misplacedDetail = await call('GET', '/api/instances/scan-misplaced');
    expect(misplacedDetail.json().redactedSpec.agent.env.GITHUB_TOKEN).toBe('[REDACTED]');
    await call('GET', '/api/jobs');
    await call('DELETE', '/api/instances/scan');

    const forbidden = [knownSecret, rotatedSecret, openKey!, Buffer.from(knownSecret).toString('base64')];
    expect(bodies.length).toBeGreaterThan(15);
    expect(logLines.length).toBeGreaterThan(15);
    for (const { path, text } of bodies) {
      for (const value of forbidden) expect(text.includes(value), `${path} leaks a secret`).toBe(false);
    }
    expect(execRequests.length).toBeGreaterThan(0);
    for (const request of execRequests) {
      for (const value of forbidden)
        expect(request.includes(value), `exec request leaks: ${request}`).toBe(false);
    }
    for (const line of logLines) {
      for (const value of forbidden)
        expect(line.includes(value), `log line leaks a secret: ${line}`).toBe(false);
    }
  });
});

describe('an app with its own redactor', () => {
  it('keeps the secrets it composes out of responses, job events and log lines', async () => {
    const redactor = new SecretRedactor();
    const logLines: string[] = [];
    const registry = new ProviderRegistry();
    const target = createMemoryTargetProvider();
    registry.registerTarget(target);
    registry.registerSidecar(createTokenizerProvider());
    const app = createApp({
      registry,
      token,
      redactor,
      logger: createJsonLogger({ write: (line) => logLines.push(line), redactor }),
    });
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const secret = 'ghp_OwnRedactorSecret_0123456789abcdef';
    const deployed = await app.request('/api/instances', {
      method: 'POST',
      headers,
      body: JSON.stringify({
        name: 'own',
        target: 'memory',
        agent: { image: 'a', port: 18789, skillsDirectory: '/skills', env: { NOTE: secret } },
        sidecars: { tokenizer: { credentials: [{ name: 'gh', secret, allowedHosts: ['api.github.com'] }] } },
      }),
    });
    expect(deployed.status).toBe(202);
    const { jobId } = (await deployed.json()) as { jobId: string };
    const events = await (await app.request(`/api/jobs/${jobId}/events`, { headers })).text();
    const detail = await (await app.request('/api/instances/own', { headers })).text();
    const openKey = target.inspect('own')?.secrets.find((item) => item.name === 'tokenizer-open-key')?.value;
    // The composer registered the open key with the app's redactor, not only with core's.
    expect(redactor.has(openKey as string)).toBe(true);
    expect(redactor.has(secret)).toBe(true);
    for (const text of [events, detail, ...logLines]) {
      expect(text.includes(secret)).toBe(false);
      expect(text.includes(openKey as string)).toBe(false);
    }
  });
});
