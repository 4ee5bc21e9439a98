// The demo API's CA and server certificate: throwaway ones from @keyward/tokenizer,
// made for one run, with the server key registered so redact() removes it everywhere.
import { registerSecret } from '@keyward/core';
import { createThrowawayCertificates, type ThrowawayCertificates } from '@keyward/tokenizer/certificates';

export type DemoCertificates = ThrowawayCertificates;

export interface DemoCertificateOptions {
  hostname: string;
  /** How long both certificates are valid. */
  validDays?: number;
}

/** A fresh CA and a server certificate for `hostname` signed by it. */
export function createDemoCertificates(options: DemoCertificateOptions): DemoCertificates {
  const certificates = createThrowawayCertificates({
    dnsNames: [options.hostname],
    authorityName: 'keyward demo CA',
    ...(options.validDays === undefined ? {} : { validDays: options.validDays }),
  });
  registerSecret(certificates.serverKeyPem);
  return certificates;
}
