// A throwaway CA and a server certificate for the demo API, made with node:crypto
// alone: no openssl binary, no key on disk, nothing secret in any process's argv.
// node:crypto signs but does not write X.509, so this file encodes the few DER
// structures a TLS server certificate needs (RFC 5280).
import { createHash, generateKeyPairSync, type KeyObject, randomBytes, sign } from 'node:crypto';
import { registerSecret } from '@keyward/core';

export interface DemoCertificates {
  /** PEM of the CA that signed the server certificate: what the tokenizer must trust. */
  caCertificate: string;
  /** PEM server certificate for `hostname`, signed by the CA. */
  serverCertificate: string;
  /** PEM PKCS#8 private key of the server certificate. Registered for redaction. */
  serverKey: string;
}

export interface DemoCertificateOptions {
  hostname: string;
  /** How long both certificates are valid. */
  validDays?: number;
  now?: Date;
}

function encodeLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let remaining = length; remaining > 0; remaining = Math.floor(remaining / 256)) {
    bytes.unshift(remaining % 256);
  }
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function element(tag: number, ...contents: Buffer[]): Buffer {
  const body = Buffer.concat(contents);
  return Buffer.concat([Buffer.from([tag]), encodeLength(body.length), body]);
}

const sequence = (...contents: Buffer[]) => element(0x30, ...contents);
const set = (...contents: Buffer[]) => element(0x31, ...contents);
const octetString = (content: Buffer) => element(0x04, content);
const utf8String = (text: string) => element(0x0c, Buffer.from(text, 'utf8'));
const booleanTrue = () => element(0x01, Buffer.from([0xff]));
/** A BIT STRING with no unused bits (signatures, public keys, nested DER). */
const bitString = (content: Buffer) => element(0x03, Buffer.from([0]), content);
const explicit = (tagNumber: number, content: Buffer) => element(0xa0 | tagNumber, content);

function positiveInteger(value: Buffer): Buffer {
  // DER integers are two's complement: a leading byte >= 0x80 needs a 0x00 in front.
  const minimal = value.subarray(value.findIndex((byte) => byte !== 0));
  const bytes = minimal.length === 0 ? Buffer.from([0]) : minimal;
  return element(0x02, (bytes[0] ?? 0) >= 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes);
}

function objectIdentifier(dotted: string): Buffer {
  const [first = 0, second = 0, ...rest] = dotted.split('.').map(Number);
  const bytes: number[] = [first * 40 + second];
  for (const arc of rest) {
    const chunk: number[] = [arc & 0x7f];
    for (let value = Math.floor(arc / 128); value > 0; value = Math.floor(value / 128)) {
      chunk.unshift((value & 0x7f) | 0x80);
    }
    bytes.push(...chunk);
  }
  return element(0x06, Buffer.from(bytes));
}

function time(date: Date): Buffer {
  const iso = date.toISOString();
  const digits = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  // RFC 5280: UTCTime (two-digit year) up to 2049, GeneralizedTime after.
  return date.getUTCFullYear() < 2050
    ? element(0x17, Buffer.from(digits.slice(2), 'ascii'))
    : element(0x18, Buffer.from(digits, 'ascii'));
}

const oids = {
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extendedKeyUsage: '2.5.29.37',
  serverAuthentication: '1.3.6.1.5.5.7.3.1',
  subjectAlternativeName: '2.5.29.17',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
} as const;

function distinguishedName(commonName: string): Buffer {
  return sequence(
    set(sequence(objectIdentifier(oids.organization), utf8String('keyward demo'))),
    set(sequence(objectIdentifier(oids.commonName), utf8String(commonName))),
  );
}

function extension(oid: string, critical: boolean, value: Buffer): Buffer {
  return sequence(objectIdentifier(oid), ...(critical ? [booleanTrue()] : []), octetString(value));
}

function publicKeyInfo(key: KeyObject): Buffer {
  return key.export({ type: 'spki', format: 'der' });
}

// RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits. The SPKI of a
// P-256 key ends with the 65-byte uncompressed point.
function keyIdentifier(key: KeyObject): Buffer {
  const spki = publicKeyInfo(key);
  return createHash('sha1')
    .update(spki.subarray(spki.length - 65))
    .digest();
}

function serialNumber(): Buffer {
  const bytes = randomBytes(16);
  // Positive, no leading zero byte, never zero.
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x40;
  return positiveInteger(bytes);
}

interface CertificateFields {
  subject: string;
  issuer: string;
  subjectKey: KeyObject;
  signingKey: KeyObject;
  notBefore: Date;
  notAfter: Date;
  extensions: Buffer[];
}

function certificate(fields: CertificateFields): string {
  const algorithm = sequence(objectIdentifier(oids.ecdsaWithSha256));
  const toBeSigned = sequence(
    explicit(0, positiveInteger(Buffer.from([2]))),
    serialNumber(),
    algorithm,
    distinguishedName(fields.issuer),
    sequence(time(fields.notBefore), time(fields.notAfter)),
    distinguishedName(fields.subject),
    publicKeyInfo(fields.subjectKey),
    explicit(3, sequence(...fields.extensions)),
  );
  // ECDSA signatures from node:crypto are DER ECDSA-Sig-Value already.
  const signature = sign('sha256', toBeSigned, fields.signingKey);
  const der = sequence(toBeSigned, algorithm, bitString(signature));
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`;
}

/** A fresh CA (P-256) and a server certificate for `hostname` signed by it. */
export function createDemoCertificates(options: DemoCertificateOptions): DemoCertificates {
  const now = options.now ?? new Date();
  // A little slack for clocks that differ between the host and the containers.
  const notBefore = new Date(now.getTime() - 60 * 60 * 1000);
  const notAfter = new Date(now.getTime() + (options.validDays ?? 30) * 24 * 60 * 60 * 1000);
  const authority = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const server = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const authorityName = 'keyward demo CA';
  const authorityKeyIdentifier = sequence(element(0x80, keyIdentifier(authority.publicKey)));

  const caCertificate = certificate({
    subject: authorityName,
    issuer: authorityName,
    subjectKey: authority.publicKey,
    signingKey: authority.privateKey,
    notBefore,
    notAfter,
    extensions: [
      extension(oids.basicConstraints, true, sequence(booleanTrue())),
      // digitalSignature, keyCertSign, cRLSign: bits 0, 5, 6 → 0x86 with one unused bit.
      extension(oids.keyUsage, true, element(0x03, Buffer.from([1, 0x86]))),
      extension(oids.subjectKeyIdentifier, false, octetString(keyIdentifier(authority.publicKey))),
    ],
  });

  const serverCertificate = certificate({
    subject: options.hostname,
    issuer: authorityName,
    subjectKey: server.publicKey,
    signingKey: authority.privateKey,
    notBefore,
    notAfter,
    extensions: [
      extension(oids.basicConstraints, true, sequence()),
      // digitalSignature only: bit 0 → 0x80 with seven unused bits.
      extension(oids.keyUsage, true, element(0x03, Buffer.from([7, 0x80]))),
      extension(oids.extendedKeyUsage, false, sequence(objectIdentifier(oids.serverAuthentication))),
      extension(
        oids.subjectAlternativeName,
        false,
        sequence(element(0x82, Buffer.from(options.hostname, 'ascii'))),
      ),
      extension(oids.subjectKeyIdentifier, false, octetString(keyIdentifier(server.publicKey))),
      extension(oids.authorityKeyIdentifier, false, authorityKeyIdentifier),
    ],
  });

  const serverKey = server.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  registerSecret(serverKey);
  return { caCertificate, serverCertificate, serverKey };
}
