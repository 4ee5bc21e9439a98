// A throwaway CA and a server certificate signed by it, made with node:crypto alone:
// no openssl binary, no files, nothing secret in any process's argv. For tests and
// demos only, never production: the CA key is thrown away, there is no revocation,
// and anyone who trusts the CA trusts only this one run.
// node:crypto signs but does not write X.509, so this file encodes the few DER
// structures a TLS server certificate needs (RFC 5280).
import { createHash, generateKeyPairSync, type KeyObject, randomBytes, sign } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import { TokenizerError } from './errors.js';

export interface ThrowawayCertificateOptions {
  /** Host names the server certificate is valid for (subjectAltName DNS entries). */
  dnsNames?: readonly string[];
  /** IPv4 or IPv6 addresses the server certificate is valid for (subjectAltName IP entries). */
  ipAddresses?: readonly string[];
  /** Subject common name of the server certificate. Defaults to the first DNS name or address. */
  commonName?: string;
  /** Common name of the CA, shown by clients that refuse it. */
  authorityName?: string;
  /** How long both certificates are valid. Default 30. */
  validDays?: number;
  /** The moment the certificates are made for; tests of validity dates set it. */
  now?: Date;
}

export interface ThrowawayCertificates {
  /** PEM of the self-signed CA that signed the server certificate: what clients must trust. */
  caCertificatePem: string;
  /** PEM server certificate for the requested names and addresses, signed by the CA. */
  serverCertificatePem: string;
  /** PEM PKCS#8 private key (P-256) of the server certificate. */
  serverKeyPem: string;
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

function ipv4Bytes(address: string): number[] {
  return address.split('.').map(Number);
}

function ipv6Bytes(address: string): number[] {
  // An embedded IPv4 tail (::ffff:127.0.0.1) stands for the last two groups.
  const lastColon = address.lastIndexOf(':');
  const tail = address.slice(lastColon + 1);
  const groups = (text: string) => (text === '' ? [] : text.split(':'));
  const withoutTail = isIPv4(tail) ? address.slice(0, lastColon + 1) : address;
  const tailBytes = isIPv4(tail) ? ipv4Bytes(tail) : [];
  const [head = '', rest] = withoutTail.split('::');
  const headGroups = groups(head.replace(/:$/, ''));
  const restGroups = rest === undefined ? [] : groups(rest.replace(/:$/, ''));
  const missing = 8 - tailBytes.length / 2 - headGroups.length - restGroups.length;
  const words = [...headGroups, ...Array<string>(missing).fill('0'), ...restGroups].map((group) =>
    Number.parseInt(group, 16),
  );
  return [...words.flatMap((word) => [word >> 8, word & 0xff]), ...tailBytes];
}

function ipAddressBytes(address: string): Buffer {
  if (isIPv4(address)) return Buffer.from(ipv4Bytes(address));
  if (isIPv6(address)) return Buffer.from(ipv6Bytes(address));
  throw new TokenizerError(
    'INVALID_CONFIG',
    `"${address}" is not an IP address: give IPv4 (127.0.0.1) or IPv6 (::1) addresses in ipAddresses, host names in dnsNames.`,
  );
}

function dnsNameBytes(name: string): Buffer {
  if (!/^[A-Za-z0-9*.-]+$/.test(name)) {
    throw new TokenizerError(
      'INVALID_CONFIG',
      `"${name}" is not a host name: dnsNames take ASCII host names such as api.example.test (punycode for others).`,
    );
  }
  return Buffer.from(name, 'ascii');
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
    set(sequence(objectIdentifier(oids.organization), utf8String('keyward throwaway'))),
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

/**
 * A fresh CA (P-256) and a server certificate for the given host names and addresses,
 * signed by it. For tests and demos only — never production.
 */
export function createThrowawayCertificates(options: ThrowawayCertificateOptions): ThrowawayCertificates {
  const dnsNames = options.dnsNames ?? [];
  const ipAddresses = options.ipAddresses ?? [];
  // Clients match only subjectAltName (not the common name), so at least one is needed.
  const alternativeNames = [
    ...dnsNames.map((name) => element(0x82, dnsNameBytes(name))),
    ...ipAddresses.map((address) => element(0x87, ipAddressBytes(address))),
  ];
  const commonName = options.commonName ?? dnsNames[0] ?? ipAddresses[0];
  if (commonName === undefined) {
    throw new TokenizerError(
      'INVALID_CONFIG',
      'A throwaway server certificate needs at least one name: give dnsNames (["localhost"]) or ipAddresses (["127.0.0.1"]).',
    );
  }
  const now = options.now ?? new Date();
  // A little slack for clocks that differ between the host and the containers.
  const notBefore = new Date(now.getTime() - 60 * 60 * 1000);
  const notAfter = new Date(now.getTime() + (options.validDays ?? 30) * 24 * 60 * 60 * 1000);
  const authority = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const server = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const authorityName = options.authorityName ?? 'keyward throwaway CA';
  const authorityKeyIdentifier = sequence(element(0x80, keyIdentifier(authority.publicKey)));

  const caCertificatePem = certificate({
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

  const serverCertificatePem = certificate({
    subject: commonName,
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
      extension(oids.subjectAlternativeName, false, sequence(...alternativeNames)),
      extension(oids.subjectKeyIdentifier, false, octetString(keyIdentifier(server.publicKey))),
      extension(oids.authorityKeyIdentifier, false, authorityKeyIdentifier),
    ],
  });

  const serverKeyPem = server.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  return { caCertificatePem, serverCertificatePem, serverKeyPem };
}
