import { createHash } from 'node:crypto';

/**
 * The `<K>` of `TOKENIZER_CRED_<K>`: the name upper-cased, every character outside
 * [A-Z0-9] replaced by `_` (the seed installer's rule, kept so existing skills work).
 */
export function sanitizeCredentialName(name: string): string {
  return name.toUpperCase().replace(/[^A-Z0-9]/g, '_');
}

export const environmentPrefixes = {
  token: 'TOKENIZER_CRED_',
  auth: 'TOKENIZER_AUTH_',
  hosts: 'TOKENIZER_HOSTS_',
} as const;

export interface CredentialVariableNames {
  token: string;
  auth: string;
  hosts: string;
}

export function credentialVariableNames(name: string): CredentialVariableNames {
  const key = sanitizeCredentialName(name);
  return {
    token: `${environmentPrefixes.token}${key}`,
    auth: `${environmentPrefixes.auth}${key}`,
    hosts: `${environmentPrefixes.hosts}${key}`,
  };
}

const readableKeyPattern = /^[A-Z0-9]+(_[A-Z0-9]+)*$/;
const maximumReadableLength = 40;

/**
 * A DNS-label suffix for the secret objects of one credential. Clean keys
 * (`GITHUB`, `MY_API`) stay readable (`github`, `my-api`); anything that would not
 * map one-to-one (leading or doubled `_`, very long names) gets a hash of the key, so
 * two distinct keys never share a secret name.
 */
export function credentialSecretSuffix(key: string): string {
  if (readableKeyPattern.test(key) && key.length <= maximumReadableLength) {
    return key.toLowerCase().replace(/_/g, '-');
  }
  const slug = key
    .toLowerCase()
    .replace(/_+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 30)
    .replace(/-+$/g, '');
  const hash = createHash('sha256').update(key, 'utf8').digest('hex').slice(0, 10);
  return slug ? `${slug}-x${hash}` : `x${hash}`;
}

export function credentialSecretNames(name: string): { token: string; auth: string } {
  const suffix = credentialSecretSuffix(sanitizeCredentialName(name));
  return { token: `tokenizer-cred-${suffix}`, auth: `tokenizer-auth-${suffix}` };
}

/**
 * Secret names of a credential sealed for another sidecar's request: `tokenizer-req-<from>-<id>`
 * plus `-cred`/`-auth` (the prefix never meets the agent's `tokenizer-cred-`/`tokenizer-auth-`).
 * Long or awkward ids get a hash, so names stay DNS labels of at most 63 characters.
 */
export function requestSecretNames(from: string, requestId: string): { token: string; auth: string } {
  const readable = `${from}-${requestId}`;
  const base =
    /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(readable) && readable.length <= 40
      ? readable
      : `${readable
          .toLowerCase()
          .replace(/[^a-z0-9]+/g, '-')
          .replace(/^-+|-+$/g, '')
          .slice(0, 28)
          .replace(
            /-+$/g,
            '',
          )}-x${createHash('sha256').update(`${from}\u0000${requestId}`, 'utf8').digest('hex').slice(0, 10)}`.replace(
          /^-/,
          '',
        );
  return { token: `tokenizer-req-${base}-cred`, auth: `tokenizer-req-${base}-auth` };
}
