// Integration-test support: the demo HTTPS upstream (`keyward-demo-upstream` from
// @keyward/images) as a container that records the requests it gets and accepts only
// the tokens it is told. For tests only.
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';

/** The name the upstream answers to on an instance's egress network; its certificate must hold it. */
export const demoUpstreamHost = 'api.demo.test';
export const demoUpstreamPort = 8443;
/** Label on objects the tests create outside keyward (the upstream), for cleanup. */
export const testFixtureLabel = 'keyward.dev/test-fixture';

/** PEM server certificate (for `demoUpstreamHost`) and its key, from a throwaway test CA. */
export interface DemoUpstreamCertificates {
  serverCertificatePem: string;
  serverKeyPem: string;
}

export interface DemoUpstreamOptions {
  /** Reference of the built demo upstream image (`imageReference(imageDefinitions.demoUpstream)`). */
  image: string;
  certificates: DemoUpstreamCertificates;
  /** Names and labels the container, so parallel runs do not collide. */
  runId: string;
}

export interface ReceivedUpstreamRequest {
  headers: Record<string, string>;
  status: number;
  url: string;
}

export interface DemoUpstream {
  containerName: string;
  adminUrl: string;
  /** Lets an instance's sidecars reach the upstream as `demoUpstreamHost`. */
  attachTo(network: string): Promise<void>;
  received(): Promise<ReceivedUpstreamRequest[]>;
  clear(): Promise<void>;
  acceptTokens(tokens: string[]): Promise<void>;
  /** Removes the container and its certificate files. */
  remove(): Promise<void>;
}

/** The container bind-mounts its certificate and key from a directory of their own. */
async function writeCertificateFiles(certificates: DemoUpstreamCertificates): Promise<string> {
  const directory = await mkdtemp(join(tmpdir(), 'keyward-test-upstream-'));
  await writeFile(join(directory, 'server.pem'), certificates.serverCertificatePem);
  await writeFile(join(directory, 'server.key'), certificates.serverKeyPem);
  // The upstream runs as a non-root user (65532) and reads through a read-only bind mount.
  await chmod(join(directory, 'server.key'), 0o644);
  await chmod(directory, 0o755);
  return directory;
}

/** Starts the upstream and waits until its admin port answers /health. */
export async function startDemoUpstream(docker: Docker, options: DemoUpstreamOptions): Promise<DemoUpstream> {
  const containerName = `keyward-test-upstream-${options.runId}`;
  const directory = await writeCertificateFiles(options.certificates);
  const removeDirectory = () => rm(directory, { recursive: true, force: true });
  const container = await docker
    .createContainer({
      name: containerName,
      Image: options.image,
      Labels: { [testFixtureLabel]: options.runId },
      Env: ['TLS_CERT_FILE=/certs/server.pem', 'TLS_KEY_FILE=/certs/server.key'],
      ExposedPorts: { '9090/tcp': {} },
      HostConfig: {
        Binds: [`${directory}:/certs:ro`],
        PortBindings: { '9090/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }] },
      },
    })
    .catch(async (error: unknown) => {
      await removeDirectory();
      throw error;
    });
  const removeAll = async () => {
    await container.remove({ force: true }).catch(() => undefined);
    await removeDirectory();
  };
  let adminUrl = '';
  try {
    await container.start();
    const info = await container.inspect();
    adminUrl = `http://127.0.0.1:${info.NetworkSettings.Ports['9090/tcp']?.[0]?.HostPort}`;
    // Each attempt has its own timeout: docker's userland proxy accepts a connection to the
    // published port before the container listens and then drops it, and Node's fetch never
    // settled on that (3 runs of 3 on docker 20.10). The whole wait is bounded and generous for
    // a loaded machine.
    let healthy = false;
    const deadline = Date.now() + 60_000;
    while (!healthy && Date.now() < deadline) {
      healthy = await fetch(`${adminUrl}/health`, { signal: AbortSignal.timeout(2_000) }).then(
        (response) => response.ok,
        () => false,
      );
      if (!healthy) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    if (!healthy) {
      const logs = await container.logs({ stdout: true, stderr: true, tail: 20 });
      throw new Error(`the demo upstream did not become healthy: ${String(logs)}`);
    }
  } catch (error) {
    await removeAll();
    throw error;
  }
  return {
    containerName,
    adminUrl,
    attachTo: async (network) => {
      await docker
        .getNetwork(network)
        .connect({ Container: containerName, EndpointConfig: { Aliases: [demoUpstreamHost] } });
    },
    received: async () =>
      (await (
        await fetch(`${adminUrl}/_received`, { signal: AbortSignal.timeout(10_000) })
      ).json()) as ReceivedUpstreamRequest[],
    clear: async () => {
      await fetch(`${adminUrl}/_received`, { method: 'DELETE', signal: AbortSignal.timeout(10_000) });
    },
    acceptTokens: async (tokens) => {
      await fetch(`${adminUrl}/_tokens`, {
        method: 'PUT',
        body: tokens.join('\n'),
        signal: AbortSignal.timeout(10_000),
      });
    },
    remove: removeAll,
  };
}
