import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { createServer, request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { createThrowawayCertificates, type ThrowawayCertificates } from '../src/throwaway-certificates.js';

const hostname = 'api.demo.keyward.test';

/** A real TLS handshake on loopback: the client connects to `address` and asks for `servername`. */
async function handshake(
  certificates: ThrowawayCertificates,
  trusted: string,
  servername: string,
  address = '127.0.0.1',
): Promise<number> {
  const server = createServer(
    { cert: certificates.serverCertificatePem, key: certificates.serverKeyPem },
    (_, response) => {
      response.end('ok');
    },
  );
  server.listen(0, address);
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  try {
    return await new Promise<number>((resolve, reject) => {
      const outgoing = request(
        {
          host: address,
          port,
          ca: trusted,
          path: '/',
          // No SNI for addresses (RFC 6066); node then checks the address against IP entries.
          ...(servername === address ? {} : { servername, headers: { host: servername } }),
        },
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

describe('createThrowawayCertificates', () => {
  it('makes a CA and a server certificate for the host that node parses and verifies', () => {
    const certificates = createThrowawayCertificates({
      dnsNames: [hostname],
      now: new Date('2026-11-30T00:00:00Z'),
    });
    const authority = new X509Certificate(certificates.caCertificatePem);
    const server = new X509Certificate(certificates.serverCertificatePem);
    expect(authority.ca).toBe(true);
    expect(server.ca).toBe(false);
    expect(server.checkIssued(authority)).toBe(true);
    expect(server.verify(authority.publicKey)).toBe(true);
    expect(authority.verify(authority.publicKey)).toBe(true);
    expect(server.checkHost(hostname)).toBe(hostname);
    expect(server.checkHost('other.keyward.test')).toBeUndefined();
    expect(server.subjectAltName).toBe(`DNS:${hostname}`);
    expect(server.subject).toContain(`CN=${hostname}`);
    expect(new Date(server.validFrom).getTime()).toBeLessThan(Date.parse('2026-11-30T00:00:00Z'));
    expect(new Date(server.validTo).getTime()).toBeGreaterThan(Date.parse('2026-12-29T00:00:00Z'));
    expect(server.keyUsage).toContain('1.3.6.1.5.5.7.3.1');
  });

  it('puts every DNS name and IPv4/IPv6 address in subjectAltName, and names the CA as asked', () => {
    const certificates = createThrowawayCertificates({
      dnsNames: ['localhost', 'api.demo.test'],
      ipAddresses: ['127.0.0.1', '::1', '2001:db8::ff00:42:8329', '::ffff:10.0.0.1'],
      authorityName: 'keyward demo CA',
      validDays: 2,
      now: new Date('2026-11-30T00:00:00Z'),
    });
    const server = new X509Certificate(certificates.serverCertificatePem);
    expect(server.checkHost('localhost')).toBe('localhost');
    expect(server.checkHost('api.demo.test')).toBe('api.demo.test');
    expect(server.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(server.checkIP('::1')).toBe('::1');
    expect(server.checkIP('2001:db8::ff00:42:8329')).toBe('2001:db8::ff00:42:8329');
    expect(server.checkIP('127.0.0.2')).toBeUndefined();
    expect(server.checkIP('::2')).toBeUndefined();
    expect(server.subjectAltName).toContain('IP Address:2001:DB8:0:0:0:FF00:42:8329');
    expect(server.subjectAltName).toContain('IP Address:0:0:0:0:0:FFFF:A00:1');
    expect(server.subject).toContain('CN=localhost');
    expect(server.issuer).toContain('CN=keyward demo CA');
    expect(new Date(server.validTo).getTime()).toBeLessThan(Date.parse('2026-12-03T00:00:00Z'));
  });

  it('serves TLS that a client trusting only the CA accepts for the host', async () => {
    const certificates = createThrowawayCertificates({ dnsNames: [hostname] });
    await expect(handshake(certificates, certificates.caCertificatePem, hostname)).resolves.toBe(200);
  });

  it('serves TLS for loopback addresses over IPv4 and IPv6', async () => {
    const certificates = createThrowawayCertificates({
      dnsNames: ['localhost'],
      ipAddresses: ['127.0.0.1', '::1'],
    });
    await expect(handshake(certificates, certificates.caCertificatePem, '127.0.0.1')).resolves.toBe(200);
    await expect(handshake(certificates, certificates.caCertificatePem, '::1', '::1')).resolves.toBe(200);
    await expect(handshake(certificates, certificates.caCertificatePem, 'localhost')).resolves.toBe(200);
  });

  it('is refused by a client that does not trust the CA, or asks for another name or address', async () => {
    const certificates = createThrowawayCertificates({ dnsNames: [hostname] });
    const stranger = createThrowawayCertificates({ dnsNames: [hostname] });
    await expect(handshake(certificates, stranger.caCertificatePem, hostname)).rejects.toThrow(
      /certificate/i,
    );
    await expect(handshake(certificates, certificates.caCertificatePem, 'api.other.test')).rejects.toThrow(
      /altnames|Hostname/i,
    );
    await expect(handshake(certificates, certificates.caCertificatePem, '127.0.0.1')).rejects.toThrow(
      /IP|altnames/i,
    );
  });

  it('makes a new key pair every time', () => {
    const first = createThrowawayCertificates({ dnsNames: [hostname] });
    const second = createThrowawayCertificates({ dnsNames: [hostname] });
    expect(first.serverKeyPem).not.toBe(second.serverKeyPem);
    expect(first.caCertificatePem).not.toBe(second.caCertificatePem);
    expect(first.serverKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
  });

  it('writes GeneralizedTime for dates from 2050 on', () => {
    const certificates = createThrowawayCertificates({
      dnsNames: [hostname],
      now: new Date('2055-01-01T00:00:00Z'),
    });
    expect(new X509Certificate(certificates.serverCertificatePem).validTo).toContain('2055');
  });

  it('refuses no names at all, a non-address in ipAddresses, and a non-ASCII host name', () => {
    expect(() => createThrowawayCertificates({})).toThrow(/at least one name/);
    expect(() => createThrowawayCertificates({ ipAddresses: ['localhost'] })).toThrow(/not an IP address/);
    expect(() => createThrowawayCertificates({ dnsNames: ['bücher.test'] })).toThrow(/not a host name/);
  });
});
