/** A DNS-1123 label: what Kubernetes, podman and docker all accept as a name. */
export const dnsLabelPattern = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** The longest DNS-1123 label (Kubernetes refuses longer names and label values). */
export const dnsLabelMaxLength = 63;

/** True for a string that is a DNS-1123 label of at most `maxLength` characters. */
export function isDnsLabel(value: unknown, maxLength = dnsLabelMaxLength): value is string {
  return typeof value === 'string' && value.length <= maxLength && dnsLabelPattern.test(value);
}
