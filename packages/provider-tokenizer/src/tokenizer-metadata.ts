import type { JsonObject } from '@keyward/core';
import * as z from 'zod';
import { processorSchema } from './tokenizer-config.js';

/**
 * What keyward keeps about a tokenizer sidecar: names, hosts, header options,
 * fingerprints and the public seal key. Never a secret value. A rotation reads it
 * back to know which secret holds which credential and how to rebuild the container.
 */
export interface TokenizerCredentialMetadata {
  name: string;
  /** `<K>` of the env var names. */
  key: string;
  allowedHosts: string[];
  headerDst?: string;
  headerFmt?: string;
  processor?: z.output<typeof processorSchema>;
  /** Names of the two secrets (sealed token, proxy password) in the contribution. */
  secretNames: { token: string; auth: string };
  variables: { token: string; auth: string; hosts: string };
  /** `sha256:<16 hex>` of the sealed token, to check a kept token is the one we sealed. */
  tokenFingerprint: string;
}

/**
 * A credential sealed for another sidecar's container (a `sealed-credential` request). Kept so
 * a rotation, which sees no requests, keeps its sealed token byte for byte.
 */
export interface TokenizerAnsweredRequestMetadata {
  /** The asking provider and its request id. */
  from: string;
  id: string;
  /** The asker's container that holds the sealed token and proxy password. */
  container: string;
  name: string;
  allowedHosts: string[];
  headerDst?: string;
  headerFmt?: string;
  processor?: z.output<typeof processorSchema>;
  secretNames: { token: string; auth: string };
  /** Env variables of `container` the two secrets are delivered as (the asker chose them). */
  variables: { token: string; auth: string };
  tokenFingerprint: string;
}

export interface TokenizerMetadata {
  /** 2 added `requests`; 1 (before spec v2) reads as 2 with no requests. */
  schemaVersion: 2;
  image: string;
  port: number;
  adminPort: number;
  allowPrivateUpstreams: boolean;
  /** Public CA certificates (PEM) the proxy trusts for upstreams. Not secret. */
  upstreamCaCertificates?: string;
  /** The public key agents seal with. */
  sealKey: string;
  openKeySecret: string;
  proxyUrl: string;
  credentials: TokenizerCredentialMetadata[];
  /** Credentials sealed for other sidecars' containers. */
  requests: TokenizerAnsweredRequestMetadata[];
}

const credentialMetadataSchema = z.object({
  name: z.string(),
  key: z.string(),
  allowedHosts: z.array(z.string()),
  headerDst: z.string().optional(),
  headerFmt: z.string().optional(),
  processor: processorSchema.optional(),
  secretNames: z.object({ token: z.string(), auth: z.string() }),
  variables: z.object({ token: z.string(), auth: z.string(), hosts: z.string() }),
  tokenFingerprint: z.string(),
});

const answeredRequestMetadataSchema = z.object({
  from: z.string(),
  id: z.string(),
  container: z.string(),
  name: z.string(),
  allowedHosts: z.array(z.string()),
  headerDst: z.string().optional(),
  headerFmt: z.string().optional(),
  processor: processorSchema.optional(),
  secretNames: z.object({ token: z.string(), auth: z.string() }),
  variables: z.object({ token: z.string(), auth: z.string() }),
  tokenFingerprint: z.string(),
});

export const tokenizerMetadataSchema = z.object({
  schemaVersion: z.union([z.literal(1), z.literal(2)]).transform(() => 2 as const),
  image: z.string().min(1),
  port: z.number().int(),
  adminPort: z.number().int(),
  allowPrivateUpstreams: z.boolean(),
  upstreamCaCertificates: z.string().optional(),
  sealKey: z.string().regex(/^[0-9a-f]{64}$/),
  openKeySecret: z.string().min(1),
  proxyUrl: z.string(),
  credentials: z.array(credentialMetadataSchema),
  requests: z.array(answeredRequestMetadataSchema).default([]),
});

export function metadataToJson(metadata: TokenizerMetadata): JsonObject {
  // JSON round trip drops undefined fields so the result is plain JSON data.
  return JSON.parse(JSON.stringify(metadata)) as JsonObject;
}
