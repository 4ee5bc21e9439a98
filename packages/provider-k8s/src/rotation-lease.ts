import { KeywardError } from '@keyward/core';
import type { V1Lease } from '@kubernetes/client-node';
import { isConflict, type KubernetesApi } from './kubernetes-api.js';

export interface LeaseOptions {
  namespace: string;
  name: string;
  labels: Record<string, string>;
  /** Who holds it: unique per process (host, pid, random). */
  identity: string;
  /** A holder that stops renewing loses the lease after this long. */
  durationSeconds: number;
  /** How long to wait for another holder before giving up. */
  waitMs: number;
  pollMs: number;
  clock: () => Date;
  /** What the lease guards, for the error message. */
  purpose: string;
}

/** Kubernetes MicroTime: RFC 3339 with exactly six fractional digits. */
export function microTime(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

function expired(lease: V1Lease, now: Date): boolean {
  const spec = lease.spec ?? {};
  if (!spec.holderIdentity) return true;
  const renewed = Date.parse(String(spec.renewTime ?? spec.acquireTime ?? ''));
  if (Number.isNaN(renewed)) return true;
  return renewed + (spec.leaseDurationSeconds ?? 0) * 1000 < now.getTime();
}

export interface HeldLease {
  /** Gives the lease back (only if this holder still has it). */
  release(): Promise<void>;
}

/**
 * A `coordination.k8s.io/v1` Lease as a lock shared by every keyward replica that talks to the
 * cluster. Taking over an expired lease and renewing go through `resourceVersion`, so two
 * contenders cannot both win; a holder renews every third of the duration until released.
 */
export async function acquireLease(api: KubernetesApi, options: LeaseOptions): Promise<HeldLease> {
  const deadline = options.clock().getTime() + options.waitMs;
  const desired = (now: Date, previous?: V1Lease): V1Lease => ({
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: {
      name: options.name,
      namespace: options.namespace,
      labels: options.labels,
      ...(previous?.metadata?.resourceVersion ? { resourceVersion: previous.metadata.resourceVersion } : {}),
    },
    spec: {
      holderIdentity: options.identity,
      leaseDurationSeconds: options.durationSeconds,
      acquireTime: microTime(now) as unknown as Date,
      renewTime: microTime(now) as unknown as Date,
      leaseTransitions: (previous?.spec?.leaseTransitions ?? 0) + (previous ? 1 : 0),
    },
  });
  let held: V1Lease | undefined;
  let lastHolder = '';
  while (!held) {
    const now = options.clock();
    try {
      held = await api.create(desired(now));
      break;
    } catch (error) {
      if (!isConflict(error)) throw error;
    }
    const current = await api.read<V1Lease>(
      'coordination.k8s.io/v1',
      'Lease',
      options.namespace,
      options.name,
    );
    if (current && expired(current, now)) {
      try {
        held = await api.replace(desired(now, current));
        break;
      } catch (error) {
        // Another contender took it between our read and our write.
        if (!isConflict(error)) throw error;
      }
    } else if (current) {
      lastHolder = current.spec?.holderIdentity ?? '';
    }
    if (options.clock().getTime() >= deadline) {
      throw new KeywardError({
        code: 'ROTATION_IN_PROGRESS',
        message: `Another keyward (${lastHolder || 'unknown holder'}) holds the ${options.purpose} lease ${options.namespace}/${options.name}; try again when it finishes (a crashed holder's lease expires after ${options.durationSeconds} s).`,
        isRetryable: true,
      });
    }
    await new Promise((resolve) => setTimeout(resolve, options.pollMs));
  }
  let current = held;
  let renewing: Promise<void> = Promise.resolve();
  const timer = setInterval(
    () => {
      renewing = (async () => {
        try {
          current = await api.replace<V1Lease>({
            ...current,
            spec: { ...current.spec, renewTime: microTime(options.clock()) as unknown as Date },
          });
        } catch {
          // A failed renewal is retried on the next tick; the lease may lapse, never double-own.
        }
      })();
    },
    Math.max(200, (options.durationSeconds * 1000) / 3),
  );
  timer.unref?.();
  return {
    async release() {
      clearInterval(timer);
      await renewing;
      await api
        .delete(current, { resourceVersion: current.metadata?.resourceVersion as string })
        .catch(() => {
          // Gone or taken over after expiry: nothing of ours to release.
        });
    },
  };
}
