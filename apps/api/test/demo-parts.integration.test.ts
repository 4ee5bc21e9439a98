// The demo's own parts against real podman: the demo API container (TLS with the
// generated CA, bearer check, recording) and the credential-exposure scanner, which
// must find a credential where one is (positive controls) before its "nothing
// found" on the agent means anything.
import { randomBytes } from 'node:crypto';
import { request } from 'node:https';
import { imageDefinitions, imageReference } from '@keyward/images';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findCredentialInContainer } from '../src/demo/credential-exposure.js';
import {
  type DemoApi,
  readReceivedRequests,
  removeDemoApi,
  startDemoApi,
} from '../src/demo/demo-api-container.js';
import { createDemoCertificates } from '../src/demo/demo-certificates.js';
import { ensureDemoImages } from '../src/demo/demo-images.js';
import { dockerForTests } from './demo-test-runtime.js';

const instanceName = 'demo-parts-test';
const network = `keyward-${instanceName}-egress`;
const hostname = 'api.demo.keyward.test';
const envContainer = `keyward-${instanceName}-env-control`;

function httpsStatus(address: string, ca: string, token: string | undefined): Promise<number> {
  return new Promise((resolve, reject) => {
    const outgoing = request(
      {
        host: address,
        port: 8443,
        servername: hostname,
        ca,
        path: '/v1/hello',
        headers: { host: `${hostname}:8443`, ...(token ? { authorization: `Bearer ${token}` } : {}) },
        timeout: 5000,
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

describe('demo parts on real podman', () => {
  let docker: Docker;
  let api: DemoApi;
  const token = `kwdemo_${randomBytes(18).toString('base64url')}`;
  const certificates = createDemoCertificates({ hostname });

  beforeAll(async () => {
    docker = await dockerForTests();
    await ensureDemoImages(docker, {});
    await removeDemoApi(docker, instanceName);
    await docker
      .getContainer(envContainer)
      .remove({ force: true })
      .catch(() => undefined);
    await docker
      .getNetwork(network)
      .remove()
      .catch(() => undefined);
    await docker.createNetwork({ Name: network, Labels: { 'keyward.dev/instance': instanceName } });
    api = await startDemoApi({
      docker,
      instanceName,
      target: 'local',
      image: imageReference(imageDefinitions.demoUpstream),
      user: imageDefinitions.demoUpstream.user,
      network,
      hostname,
      certificates,
      acceptedToken: token,
    });
  });

  afterAll(async () => {
    if (!docker) return;
    await removeDemoApi(docker, instanceName);
    await docker
      .getContainer(envContainer)
      .remove({ force: true })
      .catch(() => undefined);
    await docker
      .getNetwork(network)
      .remove()
      .catch(() => undefined);
  });

  it('answers 200 only to the demo token, over TLS that only the demo CA verifies, and records headers', async () => {
    expect(await httpsStatus(api.ipAddress, certificates.caCertificatePem, token)).toBe(200);
    expect(await httpsStatus(api.ipAddress, certificates.caCertificatePem, 'wrong-token')).toBe(401);
    expect(await httpsStatus(api.ipAddress, certificates.caCertificatePem, undefined)).toBe(401);
    const stranger = createDemoCertificates({ hostname });
    await expect(httpsStatus(api.ipAddress, stranger.caCertificatePem, token)).rejects.toThrow(
      /certificate/i,
    );
    const received = await readReceivedRequests(api.adminUrl);
    const statuses = received.map((entry) => [entry.headers['authorization'], entry.status]);
    expect(statuses).toContainEqual([`Bearer ${token}`, 200]);
    expect(statuses).toContainEqual(['Bearer wrong-token', 401]);
  });

  it('carries the instance labels and keeps the key and token out of its env and argv', async () => {
    const info = await docker.getContainer(api.containerName).inspect();
    expect(info.Config.Labels['keyward.dev/instance']).toBe(instanceName);
    expect(info.Config.Labels['keyward.dev/managed-by']).toBe('keyward');
    const plain = JSON.stringify([info.Config.Env, info.Config.Cmd, info.Args]);
    expect(plain).not.toContain(token);
    expect(plain).not.toContain('PRIVATE KEY');
  });

  it('holds the token only in memory, and the scanner finds what is at rest: the TLS key (positive control)', async () => {
    const report = await findCredentialInContainer(docker, api.containerName, token);
    expect(report.findings).toEqual([]);
    expect(report.unreadable).toEqual([]);
    expect(report.searched.processFiles).toEqual(['/proc/1/environ', '/proc/1/cmdline']);
    expect(report.searched.files).toBeGreaterThan(2);
    const keyLine = certificates.serverKeyPem.split('\n')[1] as string;
    const keyReport = await findCredentialInContainer(docker, api.containerName, keyLine);
    expect(keyReport.findings).toContainEqual({ place: 'file:/tmp/keyward-demo-api/key.pem', form: 'raw' });
  });

  it('the scanner finds a credential in configured env and the live process env, also base64-encoded', async () => {
    const secret = `kwdemo_${randomBytes(18).toString('base64url')}`;
    await docker
      .createContainer({
        name: envContainer,
        Image: imageReference(imageDefinitions.agentStandIn),
        Env: [`LEAKED=${secret}`, `LEAKED_B64=${Buffer.from(secret).toString('base64')}`],
        HostConfig: { NetworkMode: network },
      })
      .then((container) => container.start());
    const report = await findCredentialInContainer(docker, envContainer, secret);
    expect(report.findings).toEqual(
      expect.arrayContaining([
        { place: 'env:LEAKED', form: 'raw' },
        { place: 'env:LEAKED_B64', form: 'base64' },
        { place: 'process:/proc/1/environ', form: 'raw' },
      ]),
    );
    expect(report.findings.filter((finding) => finding.place.startsWith('file:'))).toEqual([]);
  });
});
