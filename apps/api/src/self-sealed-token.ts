import type { InstanceDetailV1 } from '@keyward/core';
import { sealSecret } from '@keyward/tokenizer';

/**
 * What a compromised agent could make with the public seal key it holds: a Secret with
 * no auth and no host rules, sealed outside keyward. The tokenizer must refuse it (407),
 * or the proxy would be an open egress for anyone holding the seal key. Not a secret.
 */
export function sealSelfMadeToken(sealKey: string): string {
  return sealSecret({ processor: { type: 'inject', token: 'made-up' }, auth: { type: 'none' } }, sealKey);
}

/** The instance's public seal key, from its tokenizer sidecar's metadata; undefined without a tokenizer. */
export function tokenizerSealKey(detail: InstanceDetailV1): string | undefined {
  const sealKey = detail.sidecars.find((sidecar) => sidecar.providerId === 'tokenizer')?.metadata['sealKey'];
  return typeof sealKey === 'string' && sealKey !== '' ? sealKey : undefined;
}
