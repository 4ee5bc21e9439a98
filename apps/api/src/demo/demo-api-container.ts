// The demo's HTTPS API: a `keyward-demo-upstream` container that answers 200 only
// to `Authorization: Bearer <demo secret>` and records the headers it received. It
// sits on the instance's egress network under a DNS alias, where the tokenizer
// reaches it and the agent (alone on the internal network) cannot. It carries the
// instance's labels, so `keyward rm demo` removes it with the rest.
import { KeywardError, objectLabels, runtimeName } from '@keyward/core';
import type Docker from 'dockerode';
import tar from 'tar-stream';
import type { DemoCertificates } from './demo-certificates.js';

export const DEMO_API_COMPONENT = 'demo-api';
/** The provider label of the demo API: it belongs to the demo, not to a sidecar. */
export const DEMO_API_PROVIDER = 'demo';
export const DEMO_API_PORT = 8443;
export const DEMO_API_ADMIN_PORT = 9090;
/** Inside the container's /tmp, which every keyward image has. */
const filesDirectory = '/tmp/keyward-demo-api';

export interface DemoApiSettings {
  docker: Docker;
  instanceName: string;
  target: string;
  image: string;
  /** The instance's egress network. */
  network: string;
  hostname: string;
  certificates: DemoCertificates;
  /** The only bearer token the API accepts: the demo credential. */
  acceptedToken: string;
  /** More accepted tokens (with LiteLLM: the model API key). */
  moreAcceptedTokens?: string[];
  /** `uid:gid` the image runs as; the files are handed to it. */
  user: string;
  /** How long to wait for the API to answer its health check. */
  readyTimeoutMs?: number;
  signal?: AbortSignal;
}

export interface DemoApi {
  containerName: string;
  /** The API's address on the egress network, for the direct-connection check. */
  ipAddress: string;
  /** Plain HTTP admin endpoint on the host: `GET /_received` lists the requests the API got. */
  adminUrl: string;
}

export function demoApiContainerName(instanceName: string): string {
  return runtimeName(instanceName, DEMO_API_COMPONENT);
}

function isNotFound(error: unknown): boolean {
  return (error as { statusCode?: number }).statusCode === 404;
}

/** Removes the demo API container if it exists. */
export async function removeDemoApi(docker: Docker, instanceName: string): Promise<boolean> {
  try {
    await docker.getContainer(demoApiContainerName(instanceName)).remove({ force: true, v: true });
    return true;
  } catch (error) {
    if (isNotFound(error)) return false;
    throw error;
  }
}

function parseUser(user: string): { uid: number; gid: number } {
  const [uid = '0', gid = uid] = user.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

// The TLS key goes into the container's filesystem by the archive API before it
// starts: never in its env, its argv or a file on the host.
function demoApiFiles(settings: DemoApiSettings): tar.Pack {
  const owner = parseUser(settings.user);
  const pack = tar.pack();
  pack.entry({ name: 'keyward-demo-api', type: 'directory', mode: 0o700, ...owner });
  pack.entry(
    { name: 'keyward-demo-api/certificate.pem', mode: 0o444, ...owner },
    settings.certificates.serverCertificatePem,
  );
  pack.entry({ name: 'keyward-demo-api/key.pem', mode: 0o400, ...owner }, settings.certificates.serverKeyPem);
  pack.finalize();
  return pack;
}

/**
 * The first admin address that answers /health. The published loopback port is
 * what a user can open; the container's own address is the fallback for a rootful
 * runtime whose port forwarding lags behind a busy network setup.
 */
export async function firstHealthyAdminUrl(
  candidates: readonly string[],
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<{ url?: string; problems: string[] }> {
  const deadline = Date.now() + timeoutMs;
  const problems = new Map<string, string>(candidates.map((url) => [url, 'no answer yet']));
  while (Date.now() < deadline) {
    signal?.throwIfAborted();
    for (const url of candidates) {
      try {
        const response = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1500) });
        if (response.ok) return { url, problems: [] };
        problems.set(url, `status ${response.status}`);
      } catch (error) {
        problems.set(url, (error as Error).message);
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return { problems: [...problems].map(([url, problem]) => `${url}: ${problem}`) };
}

async function logTail(docker: Docker, containerName: string): Promise<string> {
  try {
    const container = docker.getContainer(containerName);
    const state = (await container.inspect()).State;
    const logs = (await container.logs({ stdout: true, stderr: true, tail: 10 })) as unknown as Buffer;
    // Strip the 8-byte stream headers of the multiplexed log format.
    const text = logs
      .toString('utf8')
      .replace(/[\u0000-\u0008]/g, '')
      .trim();
    return `container ${state.Status}${state.ExitCode ? ` (exit code ${state.ExitCode})` : ''}; last log lines: ${text || '(none)'}`;
  } catch (error) {
    return `could not read its state (${(error as Error).message})`;
  }
}

/** Creates and starts the demo API container; replaces one left by an earlier run. */
export async function startDemoApi(settings: DemoApiSettings): Promise<DemoApi> {
  const { docker } = settings;
  const containerName = demoApiContainerName(settings.instanceName);
  await removeDemoApi(docker, settings.instanceName);
  const container = await docker.createContainer({
    name: containerName,
    Image: settings.image,
    User: settings.user,
    Env: [
      `LISTEN_PORT=${DEMO_API_PORT}`,
      `ADMIN_PORT=${DEMO_API_ADMIN_PORT}`,
      `TLS_CERT_FILE=${filesDirectory}/certificate.pem`,
      `TLS_KEY_FILE=${filesDirectory}/key.pem`,
    ],
    Labels: objectLabels(settings.instanceName, settings.target, DEMO_API_PROVIDER, DEMO_API_COMPONENT),
    ExposedPorts: { [`${DEMO_API_ADMIN_PORT}/tcp`]: {} },
    HostConfig: {
      NetworkMode: settings.network,
      // Only the admin port, on loopback, so the host can read what the API received.
      PortBindings: { [`${DEMO_API_ADMIN_PORT}/tcp`]: [{ HostIp: '127.0.0.1', HostPort: '' }] },
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
    },
    NetworkingConfig: { EndpointsConfig: { [settings.network]: { Aliases: [settings.hostname] } } },
  });
  // copyUIDGID: docker otherwise may hand the files to root; podman keeps the archive's owner.
  await container.putArchive(demoApiFiles(settings) as unknown as NodeJS.ReadableStream, {
    path: '/tmp',
    copyUIDGID: '1',
  });
  await container.start();
  const info = await container.inspect();
  const binding = info.NetworkSettings.Ports?.[`${DEMO_API_ADMIN_PORT}/tcp`]?.find(
    (entry) => !entry.HostIp?.includes(':'),
  );
  const ipAddress = info.NetworkSettings.Networks?.[settings.network]?.IPAddress;
  if (!binding?.HostPort || !ipAddress) {
    throw new KeywardError({
      code: 'DEPLOY_FAILED',
      message: `The demo API container started without ${binding?.HostPort ? `an address on network ${settings.network}` : 'a published admin port'}; remove it with \`keyward rm ${settings.instanceName}\` and run the demo again.`,
    });
  }
  const candidates = [`http://127.0.0.1:${binding.HostPort}`, `http://${ipAddress}:${DEMO_API_ADMIN_PORT}`];
  const health = await firstHealthyAdminUrl(candidates, settings.readyTimeoutMs ?? 30_000, settings.signal);
  if (!health.url) {
    throw new KeywardError({
      code: 'DEPLOY_FAILED',
      message: `The demo API did not answer /health within ${(settings.readyTimeoutMs ?? 30_000) / 1000} s (${health.problems.join('; ')}); ${await logTail(docker, containerName)}.`,
    });
  }
  // The credential reaches the API over its admin port and lives only in its memory:
  // like everywhere else in keyward, never in a file, an env or an argv.
  const accepted = await fetch(`${health.url}/_tokens`, {
    method: 'PUT',
    body: `${[settings.acceptedToken, ...(settings.moreAcceptedTokens ?? [])].join('\n')}\n`,
    signal: AbortSignal.timeout(10_000),
  });
  if (accepted.status !== 204) {
    throw new KeywardError({
      code: 'DEPLOY_FAILED',
      message: `The demo API refused its token (PUT /_tokens answered ${accepted.status}); ${await logTail(docker, containerName)}.`,
    });
  }
  return { containerName, ipAddress, adminUrl: health.url };
}

export interface ReceivedRequest {
  time: string;
  method: string;
  url: string;
  host?: string;
  headers: Record<string, string | string[] | undefined>;
  status: number;
}

/** What the demo API recorded, from its admin endpoint. */
export async function readReceivedRequests(adminUrl: string): Promise<ReceivedRequest[]> {
  const response = await fetch(`${adminUrl}/_received`, { signal: AbortSignal.timeout(5000) });
  if (!response.ok) throw new Error(`GET ${adminUrl}/_received answered ${response.status}`);
  return (await response.json()) as ReceivedRequest[];
}
