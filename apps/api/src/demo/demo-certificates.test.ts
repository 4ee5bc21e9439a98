import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { createServer, request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { secretRedactor } from '@keyward/core';
import { describe, expect, it } from 'vitest';
import { createDemoCertificates } from './demo-certificates.js';

const hostname = 'api.demo.keyward.test';

async function handshake(
  certificates: ReturnType<typeof createDemoCertificates>,
  trusted: string,
  servername: string,
): Promise<number> {
  const server = createServer(
    { cert: certificates.serverCertificate, key: certificates.serverKey },
    (_, response) => {
      response.end('ok');
    },
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  try {
    return await new Promise<number>((resolve, reject) => {
      const outgoing = request(
        { host: '127.0.0.1', port, servername, ca: trusted, path: '/', headers: { host: servername } },
        (response) => {
          response.resume();
          resolve(response.statusCode ?? 0);
        },
      );
      outgoing.on('error', reject);
      outgoing.end();
    });
  } finally {
    server.close();
  }
}

describe('createDemoCertificates', () => {
  it('makes a CA and a server certificate for the host that node parses and verifies', () => {
    const certificates = createDemoCertificates({ hostname, now: new Date('2026-11-30T00:00:00Z') });
    const authority = new X509Certificate(certificates.caCertificate);
    const server = new X509Certificate(certificates.serverCertificate);
    expect(authority.ca).toBe(true);
    expect(server.ca).toBe(false);
    expect(server.checkIssued(authority)).toBe(true);
    expect(server.verify(authority.publicKey)).toBe(true);
    expect(authority.verify(authority.publicKey)).toBe(true);
    expect(server.checkHost(hostname)).toBe(hostname);
    expect(server.checkHost('other.keyward.test')).toBeUndefined();
    expect(server.subjectAltName).toBe(`DNS:${hostname}`);
    expect(new Date(server.validFrom).getTime()).toBeLessThan(Date.parse('2026-11-30T00:00:00Z'));
    expect(new Date(server.validTo).getTime()).toBeGreaterThan(Date.parse('2026-12-29T00:00:00Z'));
    expect(server.keyUsage).toContain('1.3.6.1.5.5.7.3.1');
  });

  it('serves TLS that a client trusting only the demo CA accepts for the host', async () => {
    const certificates = createDemoCertificates({ hostname });
    await expect(handshake(certificates, certificates.caCertificate, hostname)).resolves.toBe(200);
  });

  it('is refused by a client that does not trust the demo CA, or asks for another name', async () => {
    const certificates = createDemoCertificates({ hostname });
    const stranger = createDemoCertificates({ hostname });
    await expect(handshake(certificates, stranger.caCertificate, hostname)).rejects.toThrow(/certificate/i);
    await expect(handshake(certificates, certificates.caCertificate, 'api.other.test')).rejects.toThrow(
      /altnames|Hostname/i,
    );
  });

  it('makes a new key pair every time and registers the server key for redaction', () => {
    const first = createDemoCertificates({ hostname });
    const second = createDemoCertificates({ hostname });
    expect(first.serverKey).not.toBe(second.serverKey);
    expect(first.caCertificate).not.toBe(second.caCertificate);
    expect(secretRedactor.has(first.serverKey)).toBe(true);
  });

  it('writes GeneralizedTime for dates from 2050 on', () => {
    const certificates = createDemoCertificates({ hostname, now: new Date('2055-01-01T00:00:00Z') });
    expect(new X509Certificate(certificates.serverCertificate).validTo).toContain('2055');
  });
});
