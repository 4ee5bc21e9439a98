import { createHash } from 'node:crypto';
import {
  type DeploymentPlanV2,
  KeywardError,
  labelKeys,
  labelPrefix,
  objectLabels,
  type PlannedSecretV2,
} from '@keyward/core';
import { helperComponent, helperRuntimeName } from './runtime-names.js';

export { helperComponent, helperRuntimeName };

/** A planned secret as keyward persists it: everything but the value. */
export type StoredSecret = Omit<PlannedSecretV2, 'value'>;

/** The v2 plan as the target persists it on the agent container: no secret values. */
export interface StoredPlan extends Omit<DeploymentPlanV2, 'secrets'> {
  secrets: StoredSecret[];
}

/** What the provider keeps about an instance, in a label of its agent container. */
export interface InstanceRecord {
  version: 2;
  plan: StoredPlan;
  /** Changes on every apply or rotation; volume names carry it so old and new can coexist. */
  generation: string;
  helperImage: string;
}

export const localLabelKeys = {
  record: `${labelPrefix}/instance-record`,
  planDigest: `${labelPrefix}/plan-digest`,
  generation: `${labelPrefix}/generation`,
  role: `${labelPrefix}/role`,
  volumeKind: `${labelPrefix}/volume-kind`,
} as const;

export function helperLabels(
  plan: Pick<DeploymentPlanV2, 'instance'>,
  component: string = helperComponent,
): Record<string, string> {
  return objectLabels(plan.instance.name, plan.instance.target, 'keyward', component);
}

export function storePlan(plan: DeploymentPlanV2): StoredPlan {
  return { ...plan, secrets: plan.secrets.map(({ value: _value, ...rest }) => rest) };
}

export function encodeRecord(record: InstanceRecord): string {
  return JSON.stringify(record);
}

export function decodeRecord(text: string | undefined, instance: string): InstanceRecord {
  try {
    const record = JSON.parse(text ?? '') as InstanceRecord;
    if (record.version !== 2 || !record.plan) throw new Error('unknown record version');
    return record;
  } catch (error) {
    throw new KeywardError({
      code: 'RUNTIME_ERROR',
      message: `The agent container of instance "${instance}" has no readable ${localLabelKeys.record} label (${(error as Error).message}); delete the instance and apply it again.`,
    });
  }
}

/**
 * A digest of everything a plan would make; secret values enter only as their
 * SHA-256, so the label that carries it holds no value.
 */
export function planDigest(
  plan: StoredPlan,
  secretValues: ReadonlyMap<string, string>,
  helperImage: string,
): string {
  const hashed = {
    ...plan,
    secrets: plan.secrets.map((secret) => ({
      ...secret,
      value: createHash('sha256')
        .update(secretValues.get(secret.name) ?? '')
        .digest('hex'),
    })),
    helperImage,
  };
  return createHash('sha256').update(JSON.stringify(hashed)).digest('hex').slice(0, 40);
}

export function instanceFilter(instance: string, target: string): { label: string[] } {
  return {
    label: [
      `${labelKeys.managedBy}=keyward`,
      `${labelKeys.instance}=${instance}`,
      `${labelKeys.target}=${target}`,
    ],
  };
}
