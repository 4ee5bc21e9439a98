import { createHash } from 'node:crypto';

/** Services, label values and pod-template derived names must fit in a DNS label. */
export const maximumNameLength = 63;

/** Host names the agent dials in `proxy-only`; `hostAliases` maps them to the egress Service's IP. */
export const agentHostSuffix = 'keyward.internal';

export function shortHash(text: string, length = 8): string {
  return createHash('sha256').update(text).digest('hex').slice(0, length);
}

/**
 * A DNS-1035 label (what Services need: starts with a letter) of at most `limit` characters.
 * Long names keep a readable head and end in a hash of the full name, so two long names that
 * share a head stay distinct.
 */
export function boundedName(name: string, limit = maximumNameLength): string {
  const cleaned = name
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '-')
    .replace(/-+$/, '');
  const safe =
    cleaned.length === 0 ? `k-${shortHash(name)}` : /^[a-z]/.test(cleaned) ? cleaned : `k-${cleaned}`;
  if (safe.length <= limit) return safe;
  const hash = shortHash(name);
  const head = safe.slice(0, limit - hash.length - 1).replace(/-+$/, '');
  return `${head}-${hash}`;
}

/** `kw-<instance>-<component>`, shortened with a hash when it would pass 63 characters. */
export function instanceObjectName(instanceName: string, component: string): string {
  return boundedName(`kw-${instanceName}-${component}`);
}

/** The namespace an instance gets when its options name none: `keyward-<instance>`. */
export function instanceNamespace(instanceName: string): string {
  return boundedName(`keyward-${instanceName}`);
}

/** The host name the agent dials to reach a sidecar container in `proxy-only`. */
export function agentHostName(container: string): string {
  return `${container}.${agentHostSuffix}`;
}

/** Container port names: at most 15 characters, unique in a pod, with a letter. */
export function portName(name: string | undefined, port: number, taken: Set<string>): string {
  const candidate = name && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(name) && name.length <= 15 ? name : '';
  const chosen = candidate && /[a-z]/.test(candidate) && !taken.has(candidate) ? candidate : `p${port}`;
  taken.add(chosen);
  return chosen;
}

/** ConfigMap and Secret keys: `[-._a-zA-Z0-9]+`; a file path becomes a readable, unique key. */
export function fileKey(path: string, taken: Set<string>): string {
  const base =
    path
      .replace(/^\/+/, '')
      .replace(/[^-._a-zA-Z0-9]/g, '_')
      .slice(0, 200) || 'file';
  let key = base;
  for (let index = 2; taken.has(key); index += 1) key = `${base}.${index}`;
  taken.add(key);
  return key;
}
