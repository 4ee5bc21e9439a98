import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { labelKeys, ProviderRegistry, runtimeName } from '@keyward/core';
import { buildImage, dockerFromEnvironment, imageDefinitions, imageReference } from '@keyward/images';
import { createLocalProvider } from '@keyward/provider-local';
import { createTokenizerProvider } from '@keyward/provider-tokenizer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/app.js';
import { createJsonLogger } from '../src/logger.js';
import { readEvents } from './test-app.js';

// One real flow through the API on podman (DOCKER_HOST, see scripts/ci/start-podman.sh):
// deploy → verify → rotate → verify the new credential → delete, with the real local
// target, the real tokenizer provider and the locally built images.
const run = promisify(execFile);
const upstreamHost = 'api.demo.test';
const upstreamPort = 8443;
const token = `kw_${randomBytes(24).toString('base64url')}`;
const firstSecret = `first-${randomBytes(16).toString('hex')}`;
const addedSecret = `added-${randomBytes(16).toString('hex')}`;
const name = `api-flow-${Date.now().toString(36).slice(-5)}`;
const fixtureLabel = 'keyward.dev/test-fixture';

type Docker = ReturnType<typeof dockerFromEnvironment>;

async function createCertificates(): Promise<{ directory: string; caPem: string }> {
  const directory = await mkdtemp(join(tmpdir(), 'keyward-api-ca-'));
  const file = (entry: string) => join(directory, entry);
  const subject = (cn: string) => ['-nodes', '-subj', `/CN=${cn}`];
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    ...subject('keyward api test CA'),
    '-days',
    '2',
    '-keyout',
    file('ca.key'),
    '-out',
    file('ca.pem'),
  ]);
  await run('openssl', [
    'req',
    '-newkey',
    'rsa:2048',
    ...subject(upstreamHost),
    '-keyout',
    file('server.key'),
    '-out',
    file('server.csr'),
  ]);
  await writeFile(file('server.ext'), `subjectAltName=DNS:${upstreamHost}\nextendedKeyUsage=serverAuth\n`);
  await run('openssl', [
    'x509',
    '-req',
    '-in',
    file('server.csr'),
    '-CA',
    file('ca.pem'),
    '-CAkey',
    file('ca.key'),
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    file('server.ext'),
    '-out',
    file('server.pem'),
  ]);
  // The upstream runs as a non-root user and reads its key through a read-only bind mount.
  await chmod(file('server.key'), 0o644);
  await chmod(directory, 0o755);
  return { directory, caPem: await readFile(file('ca.pem'), 'utf8') };
}

/** The demo HTTPS upstream (from @keyward/images): it records requests and accepts listed tokens. */
async function startUpstream(docker: Docker, certificates: string) {
  const containerName = `keyward-test-upstream-${name}`;
  const container = await docker.createContainer({
    name: containerName,
    Image: imageReference(imageDefinitions.demoUpstream),
    Labels: { [fixtureLabel]: name },
    Env: ['TLS_CERT_FILE=/certs/server.pem', 'TLS_KEY_FILE=/certs/server.key'],
    ExposedPorts: { '9090/tcp': {} },
    HostConfig: {
      Binds: [`${certificates}:/certs:ro`],
      PortBindings: { '9090/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }] },
    },
  });
  await container.start();
  const info = await container.inspect();
  const adminUrl = `http://127.0.0.1:${info.NetworkSettings.Ports['9090/tcp']?.[0]?.HostPort}`;
  for (let attempt = 0; attempt < 50; attempt++) {
    if (
      await fetch(`${adminUrl}/health`).then(
        (response) => response.ok,
        () => false,
      )
    )
      break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    containerName,
    acceptTokens: (tokens: string[]) =>
      fetch(`${adminUrl}/_tokens`, { method: 'PUT', body: tokens.join('\n') }),
    received: async () =>
      (await (await fetch(`${adminUrl}/_received`)).json()) as { headers: Record<string, string> }[],
    remove: () => container.remove({ force: true }).catch(() => undefined),
  };
}

describe('the API on real podman: deploy → verify → rotate → verify → delete', () => {
  let docker: Docker;
  let certificates: { directory: string; caPem: string };
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
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
    if (!process.env['DOCKER_HOST']) {
      throw new Error(
        'DOCKER_HOST is not set: run `eval "$(scripts/ci/start-podman.sh)"` from the repository root first.',
      );
    }
    docker = dockerFromEnvironment();
    await docker.ping();
    for (const definition of Object.values(imageDefinitions)) await buildImage(docker, definition);
    certificates = await createCertificates();
    upstream = await startUpstream(docker, certificates.directory);
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
    if (certificates) await rm(certificates.directory, { recursive: true, force: true });
  });

  it('deploys with streamed progress', async () => {
    const events = await finish(
      await call('POST', '/api/instances', {
        name,
        target: 'local',
        agent: { image: imageReference(imageDefinitions.agentStandIn), port: 18789 },
        sidecars: {
          tokenizer: {
            credentials: [
              { name: 'demo', secret: firstSecret, allowedHosts: [`${upstreamHost}:${upstreamPort}`] },
            ],
            upstreamCaCertificates: certificates.caPem,
            // The demo upstream lives on a private container network.
            allowPrivateUpstreams: true,
          },
        },
      }),
    );
    const steps = events.filter((event) => event.event === 'progress').map((event) => event.data.step);
    expect(steps).toContain('container.ready:tokenizer');
    expect(events.at(-1)?.data.result).toMatchObject({ name, state: 'running', networkMode: 'proxy-only' });
    await docker
      .getNetwork(runtimeName(name, 'egress'))
      .connect({ Container: upstream.containerName, EndpointConfig: { Aliases: [upstreamHost] } });
  });

  it('verifies: no direct egress, the credential injected, unbound hosts refused', async () => {
    const response = await call('POST', `/api/instances/${name}/verify`, {
      allowedUrl: `https://${upstreamHost}:${upstreamPort}/v1/verify`,
    });
    const result = (await response.json()) as {
      passed: boolean;
      checks: { name: string; passed: boolean }[];
    };
    expect(result.checks.map((check) => [check.name, check.passed])).toEqual([
      ['direct-egress-blocked', true],
      ['proxied-request-injected', true],
      ['unbound-host-refused', true],
    ]);
    expect(result.passed).toBe(true);
  });

  it('rotates through PUT /tokenizer: keeps one credential, adds one', async () => {
    await finish(
      await call('PUT', `/api/instances/${name}/tokenizer`, {
        credentials: [
          { name: 'demo', secret: '', allowedHosts: [`${upstreamHost}:${upstreamPort}`] },
          { name: 'added', secret: addedSecret, allowedHosts: [`${upstreamHost}:${upstreamPort}`] },
        ],
      }),
    );
    const view = (await (await call('GET', `/api/instances/${name}/tokenizer`)).json()) as {
      credentials: { name: string }[];
    };
    expect(view.credentials.map((credential) => credential.name)).toEqual(['demo', 'added']);
    for (const credential of ['demo', 'added']) {
      const response = await call('POST', `/api/instances/${name}/verify`, {
        allowedUrl: `https://${upstreamHost}:${upstreamPort}/v1/verify`,
        credential,
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
    const filters = { label: [`${labelKeys.instance}=${name}`] };
    expect(await docker.listContainers({ all: true, filters })).toEqual([]);
    expect(await docker.listNetworks({ filters })).toEqual([]);
    expect((await docker.listVolumes({ filters })).Volumes ?? []).toEqual([]);
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
