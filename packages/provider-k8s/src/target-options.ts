import { isIP } from 'node:net';
import * as z from 'zod';

const dnsLabel = z
  .string({ error: 'must be a string' })
  .max(63, { error: 'must be at most 63 characters (a DNS-1123 label)' })
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, {
    error: 'must be a DNS-1123 label: lower-case letters, digits and "-" (for example "agents")',
  });

// Kubernetes resource quantities: 100m, 0.5, 128Mi, 1G.
const quantity = z
  .string({ error: 'must be a string in Kubernetes quantity notation' })
  .regex(/^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/, {
    error: 'must be a Kubernetes quantity such as "100m", "0.5", "128Mi" or "1Gi"',
  });

const resourceAmounts = z.object({ cpu: quantity.optional(), memory: quantity.optional() }).strict();

export const kubernetesTargetOptionsSchema = z
  .object({
    /**
     * The namespace to deploy into (it must exist). Without it, each instance gets its own
     * namespace, `keyward-<instance>`, created and labelled by keyward.
     */
    namespace: dnsLabel.optional(),
    /** A context of the provider's kubeconfig; it must be one the provider was configured with. */
    context: z
      .string({ error: 'must be the name of a kubeconfig context' })
      .min(1, { error: 'must not be empty; leave it out to use the current context' })
      .optional(),
    /** StorageClass of the agent's state PVC; the cluster default when absent. */
    storageClassName: dnsLabel.optional(),
    /** Size of the agent's state PVC. */
    storageSize: quantity.default('1Gi'),
    imagePullPolicy: z
      .enum(['Always', 'IfNotPresent', 'Never'], {
        error: 'must be "Always", "IfNotPresent" or "Never"',
      })
      .optional(),
    /** Requests and limits for containers whose provider sets none. */
    resources: z
      .object({ requests: resourceAmounts.optional(), limits: resourceAmounts.optional() })
      .strict()
      .optional(),
    /**
     * A fixed ClusterIP for the egress Service (`proxy-only`), inside the cluster's service
     * range. `render` needs it: the agent reaches the proxy by IP (through `hostAliases`), never
     * through DNS. `apply` uses it when given, else the IP the cluster assigns.
     */
    egressServiceIP: z
      .string({ error: 'must be an IP address' })
      .refine((value) => isIP(value) !== 0, {
        error: 'must be an IPv4 or IPv6 address inside the cluster service range, for example "10.96.0.50"',
      })
      .optional(),
    /**
     * Sidecars that others start after run as native sidecars (init containers with
     * `restartPolicy: Always`, Kubernetes 1.29+). `auto`: when the API server is 1.29 or later.
     */
    nativeSidecars: z
      .enum(['auto', 'always', 'never'], { error: 'must be "auto", "always" or "never"' })
      .default('auto'),
  })
  .strict();

export type KubernetesTargetOptions = z.output<typeof kubernetesTargetOptionsSchema>;
export type KubernetesTargetOptionsInput = z.input<typeof kubernetesTargetOptionsSchema>;
