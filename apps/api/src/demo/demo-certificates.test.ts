import { X509Certificate } from 'node:crypto';
import { secretRedactor } from '@keyward/core';
import { describe, expect, it } from 'vitest';
import { createDemoCertificates } from './demo-certificates.js';

// How the certificates are encoded and that TLS accepts them is tested with
// createThrowawayCertificates in @keyward/tokenizer; this is what the demo adds.
const hostname = 'api.demo.keyward.test';

describe('createDemoCertificates', () => {
  it('makes a server certificate for the demo host, signed by a CA named for the demo', () => {
    const certificates = createDemoCertificates({ hostname });
    const authority = new X509Certificate(certificates.caCertificatePem);
    const server = new X509Certificate(certificates.serverCertificatePem);
    expect(server.checkIssued(authority)).toBe(true);
    expect(server.checkHost(hostname)).toBe(hostname);
    expect(server.subjectAltName).toBe(`DNS:${hostname}`);
    expect(authority.subject).toContain('CN=keyward demo CA');
  });

  it('makes a new key pair every time and registers the server key for redaction', () => {
    const first = createDemoCertificates({ hostname });
    const second = createDemoCertificates({ hostname });
    expect(first.serverKeyPem).not.toBe(second.serverKeyPem);
    expect(first.caCertificatePem).not.toBe(second.caCertificatePem);
    expect(secretRedactor.has(first.serverKeyPem)).toBe(true);
    expect(secretRedactor.has(second.serverKeyPem)).toBe(true);
  });
});
