import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProviderRegistry, runtimeName } from '@keyward/core';
import { buildImage, imageDefinitions, imageReference } from '@keyward/images';
import { createLocalProvider } from '@keyward/provider-local';
import {
  connectToTestRuntime,
  type DemoUpstream,
  demoUpstreamHost,
  demoUpstreamPort,
  remainingObjects,
  startDemoUpstream,
  uniqueName,
} from '@keyward/provider-local/testing';
import { createTokenizerProvider } from '@keyward/provider-tokenizer';
import { createThrowawayCertificates, type ThrowawayCertificates } from '@keyward/tokenizer/certificates';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/app.js';
import { createJsonLogger } from '../src/logger.js';
import { readEvents } from './test-app.js';

// One real flow through the API on podman (DOCKER_HOST, see scripts/ci/start-podman.sh):
// deploy → verify → rotate → verify the new credential → delete, with the real local
// target, the real tokenizer provider and the locally built images.
const token = `kw_${randomBytes(24).toString('base64url')}`;
const firstSecret = `first-${randomBytes(16).toString('hex')}`;
const addedSecret = `added-${randomBytes(16).toString('hex')}`;
const name = uniqueName('api-flow');

describe('the API on real podman: deploy → verify → rotate → verify → delete', () => {
  let docker: Docker;
  let certificates: ThrowawayCertificates;
  let upstream: DemoUpstream;
  let app: ReturnType<typeof createApp>;
  const bodies: string[] = [];
  const logLines: string[] = [];

  const call = async (method: string, path: string, body?: unknown) => {
    const response = await app.request(path, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const clone = response.clone();
    bodies.push(await clone.text());
    return response;
  };
  const finish = async (response: Response) => {
    expect(response.status).toBe(202);
    const { jobId } = (await response.json()) as { jobId: string };
    const events = await readEvents(await call('GET', `/api/jobs/${jobId}/events`));
    const last = events.at(-1)!;
    if (last.event !== 'result') throw new Error(`job ${jobId} failed: ${JSON.stringify(last.data)}`);
    return events;
  };

  beforeAll(async () => {
    docker = await connectToTestRuntime();
    for (const definition of Object.values(imageDefinitions)) await buildImage(docker, definition);
    certificates = createThrowawayCertificates({ dnsNames: [demoUpstreamHost], validDays: 2 });
    upstream = await startDemoUpstream(docker, {
      image: imageReference(imageDefinitions.demoUpstream),
      certificates,
      runId: name,
    });
    await upstream.acceptTokens([firstSecret, addedSecret]);
    const registry = new ProviderRegistry();
    registry.registerTarget(
      createLocalProvider({ docker, lockDirectory: join(tmpdir(), `keyward-locks-${name}`) }),
    );
    registry.registerSidecar(createTokenizerProvider());
    app = createApp({ registry, token, logger: createJsonLogger({ write: (line) => logLines.push(line) }) });
  });

  afterAll(async () => {
    await app?.request(`/api/instances/${name}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${token}` },
    });
    await upstream?.remove();
  });

  it('deploys with streamed progress', async () => {
    const events = await finish(
      await call('POST', '/api/instances', {
        name,
        target: 'local',
        agent: {
          image: imageReference(imageDefinitions.agentStandIn),
          port: 18789,
          skillsDirectory: '/home/node/skills',
        },
        sidecars: {
          tokenizer: {
            credentials: [
              {
                name: 'demo',
                secret: firstSecret,
                allowedHosts: [`${demoUpstreamHost}:${demoUpstreamPort}`],
              },
            ],
            upstreamCaCertificates: certificates.caCertificatePem,
            // The demo upstream lives on a private container network.
            allowPrivateUpstreams: true,
          },
        },
      }),
    );
    const steps = events.filter((event) => event.event === 'progress').map((event) => event.data.step);
    expect(steps).toContain('container.ready:tokenizer');
    expect(events.at(-1)?.data.result).toMatchObject({ name, state: 'running', networkMode: 'proxy-only' });
    await upstream.attachTo(runtimeName(name, 'egress'));
  });

  it('verifies: no direct egress, the credential injected, unbound hosts and a self-sealed token refused', async () => {
    const response = await call('POST', `/api/instances/${name}/verify`, {
      allowedUrl: `https://${demoUpstreamHost}:${demoUpstreamPort}/v1/verify`,
    });
    const result = (await response.json()) as {
      passed: boolean;
      checks: { name: string; providerId: string; passed: boolean; evidence: string }[];
    };
    // The target's own isolation checks come first, then the tokenizer's.
    const ownedBy = (providerId: string) =>
      result.checks
        .filter((check) => check.providerId === providerId)
        .map((check) => [check.name, check.passed]);
    expect(ownedBy('local').length, JSON.stringify(result.checks)).toBeGreaterThan(0);
    expect(
      ownedBy('local').every(([, passed]) => passed),
      JSON.stringify(result.checks),
    ).toBe(true);
    expect(result.checks[0]?.providerId).toBe('local');
    expect(ownedBy('tokenizer'), JSON.stringify(result.checks)).toEqual([
      ['proxied-request-injected', true],
      ['unbound-host-refused', true],
      ['credential-header-pinned', true],
      // The tokenizer seals one with the instance's public seal key: its allow-list refuses it.
      ['self-sealed-token-refused', true],
    ]);
    expect(result.passed).toBe(true);
  });

  it('rotates through PUT /tokenizer: keeps one credential, adds one', async () => {
    await finish(
      await call('PUT', `/api/instances/${name}/tokenizer`, {
        credentials: [
          { name: 'demo', secret: '', allowedHosts: [`${demoUpstreamHost}:${demoUpstreamPort}`] },
          { name: 'added', secret: addedSecret, allowedHosts: [`${demoUpstreamHost}:${demoUpstreamPort}`] },
        ],
      }),
    );
    const view = (await (await call('GET', `/api/instances/${name}/tokenizer`)).json()) as {
      credentials: { name: string }[];
    };
    expect(view.credentials.map((credential) => credential.name)).toEqual(['demo', 'added']);
    for (const credential of ['demo', 'added']) {
      // The v2 body: options by sidecar (the test above sends the older top-level form).
      const response = await call('POST', `/api/instances/${name}/verify`, {
        options: {
          tokenizer: { allowedUrl: `https://${demoUpstreamHost}:${demoUpstreamPort}/v1/verify`, credential },
        },
      });
      expect(((await response.json()) as { passed: boolean }).passed, credential).toBe(true);
    }
    const authorizations = (await upstream.received()).map((request) => request.headers['authorization']);
    expect(authorizations).toContain(`Bearer ${addedSecret}`);
    expect(authorizations).toContain(`Bearer ${firstSecret}`);
  });

  it('deletes everything labelled with the instance', async () => {
    const deleted = await call('DELETE', `/api/instances/${name}`);
    expect(
      deleted.status,
      `${await deleted.clone().text()} ${logLines.filter((line) => line.includes('"error"')).join('\n')}`,
    ).toBe(200);
    expect(await remainingObjects(docker, name)).toEqual([]);
    expect((await call('GET', `/api/instances/${name}`)).status).toBe(404);
  });

  it('sent no raw credential in any response or log line', () => {
    expect(bodies.length).toBeGreaterThan(8);
    for (const text of [...bodies, ...logLines]) {
      expect(text.includes(firstSecret)).toBe(false);
      expect(text.includes(addedSecret)).toBe(false);
    }
  });
});
