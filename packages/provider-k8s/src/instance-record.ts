import { createHash } from 'node:crypto';
import { type DeploymentPlanV2, KeywardError, type PlannedSecretV2 } from '@keyward/core';

/** A planned secret as keyward keeps it: everything but the value, which lives only in its Secret. */
export type StoredSecretV2 = Omit<PlannedSecretV2, 'value'>;

/** The plan without secret values: what get, list and rotations read back from the cluster. */
export interface StoredPlanV2 extends Omit<DeploymentPlanV2, 'secrets'> {
  secrets: StoredSecretV2[];
}

/** What the record ConfigMap holds (key `record.json`). */
export interface InstanceRecord {
  version: 1;
  plan: StoredPlanV2;
  namespace: string;
  /** keyward created the namespace for this instance (removed with the instance's volumes). */
  ownsNamespace: boolean;
  /** The kubeconfig context the instance lives in, when not the current one. */
  context?: string;
}

export const recordDataKey = 'record.json';

export function storePlan(plan: DeploymentPlanV2): StoredPlanV2 {
  const { secrets, ...rest } = plan;
  return {
    ...structuredClone(rest),
    secrets: secrets.map(({ value: _value, ...secret }) => structuredClone(secret)),
  };
}

/** The plan back, with the values read from the cluster's Secrets. */
export function restorePlan(stored: StoredPlanV2, values: ReadonlyMap<string, string>): DeploymentPlanV2 {
  return {
    ...structuredClone(stored),
    secrets: stored.secrets.map((secret) => {
      const value = values.get(secret.name);
      if (value === undefined) {
        throw new KeywardError({
          code: 'RUNTIME_ERROR',
          providerId: secret.providerId,
          message: `Secret "${secret.name}" of instance "${stored.instance.name}" is missing from the cluster; redeploy the instance to recreate it.`,
        });
      }
      return { ...structuredClone(secret), value };
    }),
  };
}

export function encodeRecord(record: InstanceRecord): string {
  return JSON.stringify(record);
}

export function decodeRecord(text: string | undefined, instanceName: string): InstanceRecord {
  try {
    const record = JSON.parse(text ?? '') as InstanceRecord;
    if (record.version !== 1 || record.plan?.specificationVersion !== 'v2')
      throw new Error('unknown version');
    return record;
  } catch (error) {
    throw new KeywardError({
      code: 'RUNTIME_ERROR',
      message: `The record of instance "${instanceName}" in the cluster is unreadable (${(error as Error).message}); delete the instance and deploy it again.`,
    });
  }
}

/** JSON with object keys sorted, so equal content always hashes the same. */
export function stableJson(value: unknown): string {
  return JSON.stringify(value, (_key, item: unknown) =>
    item && typeof item === 'object' && !Array.isArray(item)
      ? Object.fromEntries(
          Object.entries(item as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
        )
      : item,
  );
}

export function digestOf(value: unknown, length = 16): string {
  return createHash('sha256').update(stableJson(value)).digest('hex').slice(0, length);
}
