import type { JsonObject, SidecarViewV2 } from '@keyward/core';
import * as z from 'zod';
import { sanitizeCredentialName } from './credential-names.js';
import type { TokenizerChange } from './tokenizer-config.js';

export const tokenizerCredentialViewSchema = z.object({
  name: z.string(),
  allowedHosts: z.array(z.string()),
  headerDst: z.string().optional(),
  headerFmt: z.string().optional(),
});

/**
 * The seed installer's `GET /api/instances/:id/tokenizer` body: credentials by name with their
 * hosts and header options, never a value. (The API adds `rotationJobId` while a rotation runs,
 * and answers `{enabled:false, credentials:[]}` for an instance without a tokenizer.)
 */
export const tokenizerViewSchema = z.object({
  enabled: z.boolean(),
  credentials: z.array(tokenizerCredentialViewSchema),
});

export type TokenizerView = z.output<typeof tokenizerViewSchema>;
export type TokenizerCredentialView = z.output<typeof tokenizerCredentialViewSchema>;

/**
 * Reads the stored metadata leniently, as apps/api did before spec v2 (same fields, same key
 * order), so the route's body stays byte for byte what clients of the seed installer parse.
 * Credentials sealed for other sidecars are not part of this view: they are not the user's list.
 */
export function buildTokenizerView(state: { metadata: JsonObject }): TokenizerView {
  const list = Array.isArray(state.metadata['credentials']) ? state.metadata['credentials'] : [];
  const credentials = list.flatMap((entry): TokenizerCredentialView[] => {
    if (!entry || typeof entry !== 'object' || Array.isArray(entry)) return [];
    const record = entry as Record<string, unknown>;
    if (typeof record['name'] !== 'string') return [];
    const hosts = record['allowedHosts'] ?? record['hosts'];
    return [
      {
        name: record['name'],
        allowedHosts: Array.isArray(hosts)
          ? hosts.filter((host): host is string => typeof host === 'string')
          : [],
        ...(typeof record['headerDst'] === 'string' ? { headerDst: record['headerDst'] } : {}),
        ...(typeof record['headerFmt'] === 'string' ? { headerFmt: record['headerFmt'] } : {}),
      },
    ];
  });
  return { enabled: true, credentials };
}

export const tokenizerView: SidecarViewV2 = {
  schema: tokenizerViewSchema,
  build: (state) => buildTokenizerView(state) as unknown as JsonObject,
};

type SavedCredential = Record<string, unknown> & { name: string };

/**
 * The redacted config to persist after a change: the change's list, where a kept credential
 * (`secret: ""`) takes what is sealed from the saved config (hosts, header options, processor)
 * and a new one its own fields, never its secret. Everything else stays as saved.
 */
export function nextRedactedTokenizerConfig(saved: JsonObject, change: TokenizerChange): JsonObject {
  const savedList = (Array.isArray(saved['credentials']) ? (saved['credentials'] as unknown[]) : []).filter(
    (entry): entry is SavedCredential =>
      !!entry &&
      typeof entry === 'object' &&
      !Array.isArray(entry) &&
      typeof (entry as Record<string, unknown>)['name'] === 'string',
  );
  const savedByKey = new Map(savedList.map((entry) => [sanitizeCredentialName(entry.name), entry]));
  const credentials = change.credentials.map((credential) => {
    const { secret, ...fields } = credential;
    const kept = secret === undefined || secret === '';
    const previous = kept ? savedByKey.get(sanitizeCredentialName(credential.name)) : undefined;
    if (previous) {
      const { secret: _secret, name: _name, ...sealed } = previous;
      return { name: credential.name, ...sealed };
    }
    return fields;
  });
  return JSON.parse(JSON.stringify({ ...saved, credentials })) as JsonObject;
}
