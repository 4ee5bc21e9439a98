import { createHash } from 'node:crypto';
import { type OpenKey, open, seal } from './sealed-box.js';
import { marshalSecret, parseSecret, type Secret, type SecretDefinition } from './secret-json.js';

/** bearer_auth digest: base64(SHA-256(UTF-8 password)) (protocol §2.2). */
export function bearerDigest(password: string): string {
  return createHash('sha256').update(password, 'utf8').digest('base64');
}

/** Serialises a Secret the way Go does and seals it for the holder of the open key. */
export function sealSecret(secret: SecretDefinition, sealKeyHex: string): string {
  return seal(marshalSecret(secret), sealKeyHex);
}

/** Opens a sealed token and parses the Secret inside it with Go's decoding rules. */
export function openSecret(token: string, openKey: string | OpenKey): Secret {
  return parseSecret(open(token, openKey));
}
