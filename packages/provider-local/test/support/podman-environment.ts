// Shared set-up for the integration tests: the real podman (through DOCKER_HOST),
// the locally built images, a self-generated CA and the demo HTTPS upstream.
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { composePlan, type DeploymentPlanV1, labelKeys, parseInstanceSpec } from '@keyward/core';
import { buildImage, dockerFromEnvironment, imageDefinitions, imageReference } from '@keyward/images';
import { createTokenizerProvider } from '@keyward/provider-tokenizer';
import type Docker from 'dockerode';

const run = promisify(execFile);

export const upstreamHost = 'api.demo.test';
export const upstreamPort = 8443;
/** Label on objects the tests create outside keyward (the upstream), for cleanup. */
export const testLabel = 'keyward.dev/test-fixture';

/** Fails (never skips) when no runtime answers: CI always has podman. */
export async function connectToRuntime(): Promise<Docker> {
  const host = process.env['DOCKER_HOST'];
  if (!host) {
    throw new Error(
      'Integration tests need a container runtime: DOCKER_HOST is not set. Run `eval "$(scripts/ci/start-podman.sh)"` from the repository root first.',
    );
  }
  const docker = dockerFromEnvironment();
  try {
    await docker.ping();
  } catch (error) {
    throw new Error(
      `Integration tests need a container runtime, but DOCKER_HOST=${host} does not answer (${(error as Error).message}). Run \`eval "$(scripts/ci/start-podman.sh)"\` first.`,
    );
  }
  return docker;
}

export async function ensureImages(docker: Docker): Promise<void> {
  for (const definition of Object.values(imageDefinitions)) await buildImage(docker, definition);
}

export interface TestCertificates {
  directory: string;
  caPem: string;
}

/** A throwaway CA and a server certificate for the demo upstream, made with the openssl CLI. */
export async function createTestCertificates(): Promise<TestCertificates> {
  const directory = await mkdtemp(join(tmpdir(), 'keyward-test-ca-'));
  const file = (name: string) => join(directory, name);
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=keyward test CA',
    '-keyout',
    file('ca.key'),
    '-out',
    file('ca.pem'),
  ]);
  await run('openssl', [
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-subj',
    `/CN=${upstreamHost}`,
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
  // The upstream runs as uid 65532 and reads its key from a read-only bind mount.
  await chmod(file('server.key'), 0o644);
  await chmod(directory, 0o755);
  return { directory, caPem: await readFile(file('ca.pem'), 'utf8') };
}

export interface DemoUpstream {
  containerName: string;
  adminUrl: string;
  /** Lets the instance's tokenizer reach the upstream as api.demo.test. */
  attachTo(network: string): Promise<void>;
  received(): Promise<{ headers: Record<string, string>; status: number; url: string }[]>;
  clear(): Promise<void>;
  acceptTokens(tokens: string[]): Promise<void>;
  remove(): Promise<void>;
}

export async function startDemoUpstream(
  docker: Docker,
  certificates: TestCertificates,
  runId: string,
): Promise<DemoUpstream> {
  const containerName = `keyward-test-upstream-${runId}`;
  const container = await docker.createContainer({
    name: containerName,
    Image: imageReference(imageDefinitions.demoUpstream),
    Labels: { [testLabel]: runId },
    Env: ['TLS_CERT_FILE=/certs/server.pem', 'TLS_KEY_FILE=/certs/server.key'],
    ExposedPorts: { '9090/tcp': {} },
    HostConfig: {
      Binds: [`${certificates.directory}:/certs:ro`],
      PortBindings: { '9090/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }] },
    },
  });
  await container.start();
  const info = await container.inspect();
  const adminPort = info.NetworkSettings.Ports['9090/tcp']?.[0]?.HostPort;
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  let healthy = false;
  for (let attempt = 0; attempt < 50 && !healthy; attempt += 1) {
    healthy = await fetch(`${adminUrl}/health`).then(
      (response) => response.ok,
      () => false,
    );
    if (!healthy) await new Promise((resolve) => setTimeout(resolve, 100));
  }
  if (!healthy) {
    const logs = await container.logs({ stdout: true, stderr: true, tail: 20 });
    await container.remove({ force: true });
    throw new Error(`the demo upstream did not become healthy: ${String(logs)}`);
  }
  return {
    containerName,
    adminUrl,
    attachTo: async (network) => {
      await docker
        .getNetwork(network)
        .connect({ Container: containerName, EndpointConfig: { Aliases: [upstreamHost] } });
    },
    received: async () =>
      (await (await fetch(`${adminUrl}/_received`)).json()) as Awaited<ReturnType<DemoUpstream['received']>>,
    clear: async () => {
      await fetch(`${adminUrl}/_received`, { method: 'DELETE' });
    },
    acceptTokens: async (tokens) => {
      await fetch(`${adminUrl}/_tokens`, { method: 'PUT', body: tokens.join('\n') });
    },
    remove: async () => {
      await container.remove({ force: true }).catch(() => undefined);
    },
  };
}

export interface TestCredential {
  name: string;
  secret: string;
  allowedHosts: string[];
}

export const tokenizerProvider = createTokenizerProvider();

export async function tokenizerPlan(options: {
  name: string;
  egress: 'proxy-only' | 'open';
  credentials: TestCredential[];
  caPem: string;
}): Promise<DeploymentPlanV1> {
  const spec = parseInstanceSpec({
    name: options.name,
    agent: { image: imageReference(imageDefinitions.agentStandIn), port: 18789, env: { AGENT_MODE: 'test' } },
    network: { egress: options.egress },
    sidecars: {
      tokenizer: {
        credentials: options.credentials,
        upstreamCaCertificates: options.caPem,
        // The demo upstream lives on a private container network.
        allowPrivateUpstreams: true,
      },
    },
  });
  return composePlan({
    spec,
    sidecars: { getSidecar: (id) => (id === 'tokenizer' ? tokenizerProvider : undefined) },
  });
}

/** Every labelled object of an instance that still exists. */
export async function remainingObjects(docker: Docker, instance: string): Promise<string[]> {
  const filters = { label: [`${labelKeys.instance}=${instance}`] };
  const containers = await docker.listContainers({ all: true, filters });
  const networks = await docker.listNetworks({ filters });
  const { Volumes: volumes } = await docker.listVolumes({ filters });
  return [
    ...containers.map((container) => `container ${container.Names[0]}`),
    ...networks.map((network) => `network ${network.Name}`),
    ...(volumes ?? []).map((volume) => `volume ${volume.Name}`),
  ];
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36).slice(-5)}${Math.floor(Math.random() * 1e4).toString(36)}`;
}

/** A request through the tokenizer, made from INSIDE the agent container, using its own env. */
export const proxiedRequestScript = `
const http = require('node:http');
const key = process.env.CREDENTIAL_KEY;
const proxy = new URL(process.env.TOKENIZER_PROXY_URL);
const target = new URL(process.env.TARGET_URL);
const headers = { host: target.host };
if (key) {
  headers['proxy-tokenizer'] = process.env['TOKENIZER_CRED_' + key];
  if (process.env['TOKENIZER_AUTH_' + key]) headers['proxy-authorization'] = 'Bearer ' + process.env['TOKENIZER_AUTH_' + key];
}
const request = http.request({ host: proxy.hostname, port: proxy.port, path: target.href, headers }, (response) => {
  let body = '';
  response.on('data', (chunk) => { body += chunk; });
  response.on('end', () => console.log(JSON.stringify({ status: response.statusCode, body })));
});
request.on('error', (error) => console.log(JSON.stringify({ status: 0, body: error.code || error.message })));
request.end();
`;
