import { createHash } from 'node:crypto';
import { registerSecret } from '@keyward/core';
import { bearerDigest, type ProcessorDefinition, sealKeyFromOpenKey, sealSecret } from '@keyward/tokenizer';
import {
  DEFAULT_HEADER_DST,
  DEFAULT_HEADER_FMT,
  DEFAULT_HMAC_FMT,
  type TokenizerProcessorConfig,
} from './tokenizer-config.js';

/** What a credential is, minus its value: everything here may be persisted and shown. */
export interface CredentialShape {
  name: string;
  allowedHosts: string[];
  headerDst?: string | undefined;
  headerFmt?: string | undefined;
  processor?: TokenizerProcessorConfig | undefined;
}

export interface SealedCredential {
  shape: CredentialShape;
  /** base64 sealed Secret JSON; the agent may hold it, only the proxy can open it. */
  sealedToken: string;
  /** 64 hex characters; the agent sends it as `Proxy-Authorization: Bearer …`. */
  authPassword: string;
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** 32 random bytes as hex, from the context's source so plans are reproducible in tests. */
export function randomHex32(randomBytes: (length: number) => Uint8Array): string {
  const bytes = randomBytes(32);
  if (bytes.length !== 32) throw new Error(`randomBytes(32) returned ${bytes.length} bytes`);
  return toHex(bytes);
}

/** A short, non-reversible identifier of a sealed token, for metadata and audits. */
export function tokenFingerprint(sealedToken: string): string {
  return `sha256:${createHash('sha256').update(sealedToken, 'utf8').digest('hex').slice(0, 16)}`;
}

/** The processor part of the Secret JSON; the secret value goes where the processor needs it. */
export function processorDefinition(shape: CredentialShape, secret: string): ProcessorDefinition {
  const processor = shape.processor;
  if (processor === undefined) {
    // dst and fmt are always sealed: a sealed dst/fmt makes the proxy refuse a client's own
    // (`Proxy-Tokenizer: <token>; {"dst":…}`), so the credential cannot be moved to a header
    // the upstream echoes.
    return {
      type: 'inject',
      token: secret,
      dst: shape.headerDst ?? DEFAULT_HEADER_DST,
      fmt: shape.headerFmt ?? DEFAULT_HEADER_FMT,
    };
  }
  switch (processor.type) {
    case 'inject_hmac':
      return {
        type: 'inject_hmac',
        key: secret,
        hash: processor.hash ?? 'sha256',
        dst: processor.dst ?? DEFAULT_HEADER_DST,
        fmt: processor.fmt ?? DEFAULT_HMAC_FMT,
      };
    case 'inject_body':
      return {
        type: 'inject_body',
        token: secret,
        ...(processor.placeholder === undefined ? {} : { placeholder: processor.placeholder }),
      };
    case 'oauth2':
      return { type: 'oauth2', token: { accessToken: secret } };
    case 'oauth2_body':
      return {
        type: 'oauth2_body',
        token: { accessToken: secret },
        ...(processor.placeholder === undefined ? {} : { placeholder: processor.placeholder }),
      };
    case 'sigv4':
      return {
        type: 'sigv4',
        accessKey: processor.accessKeyId,
        secretKey: secret,
        noSwap: processor.noSwap ?? false,
      };
    case 'jwt':
      return {
        type: 'jwt',
        privateKey: secret,
        email: processor.email,
        ...(processor.sub === undefined ? {} : { sub: processor.sub }),
        ...(processor.scopes === undefined ? {} : { scopes: processor.scopes }),
        ...(processor.tokenUrl === undefined ? {} : { tokenUrl: processor.tokenUrl }),
      };
    case 'client_credentials':
      return {
        type: 'client_credentials',
        clientId: processor.clientId,
        clientSecret: secret,
        tokenUrl: processor.tokenUrl,
        ...(processor.scopes === undefined ? {} : { scopes: processor.scopes }),
      };
    case 'github_app':
      return {
        type: 'github_app',
        privateKey: secret,
        appId: processor.appId,
        installationId: processor.installationId,
        ...(processor.tokenUrl === undefined ? {} : { tokenUrl: processor.tokenUrl }),
      };
  }
}

/**
 * Seals one credential: a fresh proxy password, its digest as `bearer_auth`, the
 * processor holding the secret, and the bound hosts. The raw secret leaves this
 * function only inside the sealed box.
 */
export function sealCredential(
  shape: CredentialShape,
  secret: string,
  sealKeyHex: string,
  randomBytes: (length: number) => Uint8Array,
): SealedCredential {
  registerSecret(secret);
  const authPassword = randomHex32(randomBytes);
  registerSecret(authPassword);
  const sealedToken = sealSecret(
    {
      processor: processorDefinition(shape, secret),
      auth: { type: 'bearer', digest: bearerDigest(authPassword) },
      allowedHosts: [...shape.allowedHosts],
    },
    sealKeyHex,
  );
  return { shape, sealedToken, authPassword };
}

export interface TokenizerKeyPair {
  openKey: string;
  sealKey: string;
}

export function newKeyPair(randomBytes: (length: number) => Uint8Array): TokenizerKeyPair {
  const openKey = randomHex32(randomBytes);
  registerSecret(openKey);
  return { openKey, sealKey: sealKeyFromOpenKey(openKey) };
}
