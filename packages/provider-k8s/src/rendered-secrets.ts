import { KeywardError, type RenderedSecretV2, type RenderSecretValuesV2 } from '@keyward/core';
import type { KubernetesObject, V1Secret } from '@kubernetes/client-node';
import { type AudienceSecret, kubernetesLabelKeys } from './manifests.js';

const secretValueChoices: readonly RenderSecretValuesV2[] = ['omit', 'include', 'only'];

export function secretValuesChoice(value: unknown): RenderSecretValuesV2 {
  if (value === undefined) return 'omit';
  if (secretValueChoices.includes(value as RenderSecretValuesV2)) return value as RenderSecretValuesV2;
  throw new KeywardError({
    code: 'INVALID_INPUT',
    message: `Unknown render option secretValues "${String(value)}"; write one of ${secretValueChoices.map((choice) => `"${choice}"`).join(', ')}.`,
  });
}

function isSecret(object: KubernetesObject): object is V1Secret {
  return object.apiVersion === 'v1' && object.kind === 'Secret';
}

/**
 * The objects as `render` prints them for a choice of `secretValues`. An omitted Secret keeps
 * its name and audience but has no `data` at all: the API server accepts it, a later apply of
 * the values (or a sealed-secrets / External Secrets controller) fills it, and until then the
 * pods that mount it wait instead of starting with an empty key.
 */
export function objectsForSecretValues(
  objects: readonly KubernetesObject[],
  secretValues: RenderSecretValuesV2,
): KubernetesObject[] {
  if (secretValues === 'include') return [...objects];
  if (secretValues === 'only') return objects.filter(isSecret);
  return objects.map((object) => {
    if (!isSecret(object)) return object;
    const { data, ...rest } = object;
    return {
      ...rest,
      metadata: {
        ...rest.metadata,
        annotations: {
          ...rest.metadata?.annotations,
          [kubernetesLabelKeys.keys]: Object.keys(data ?? {}).join(','),
          [kubernetesLabelKeys.values]: 'omitted',
        },
      },
    } satisfies V1Secret;
  });
}

/** The Secrets of a plan, their keys and who reads each, without a value. */
export function renderedSecretsOf(groups: readonly AudienceSecret[], namespace: string): RenderedSecretV2[] {
  return groups.map((group) => ({
    kind: 'Secret',
    name: group.name,
    namespace,
    keys: group.secrets.map((secret) => ({
      key: secret.name,
      providerId: secret.providerId,
      readers: [...new Set(secret.visibleTo)].sort(),
      agentSafe: secret.agentSafe === true,
    })),
  }));
}
