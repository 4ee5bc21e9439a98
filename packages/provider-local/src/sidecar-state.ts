// A sidecar's current secrets, read back from where the runtime holds them.
import { KeywardError, registerSecret, type SidecarStateV2 } from '@keyward/core';
import type Docker from 'dockerode';
import { instanceLockHolder, lockDirectoryOf } from './instance-lock.js';
import type { StoredPlan } from './instance-record.js';
import { readInstance } from './instance-state.js';
import type { OperationContext } from './operation-context.js';
import { isMissingContainer } from './runtime-differences.js';
import { containerRuntimeName } from './runtime-names.js';
import { readArchive } from './volume-files.js';

/** Reads the current value of every wanted secret of a plan: env from `inspect`, files through the archive API. */
export async function readSecretValues(
  docker: Docker,
  plan: StoredPlan,
  wanted: (secret: StoredPlan['secrets'][number]) => boolean,
): Promise<Map<string, string>> {
  const values = new Map<string, string>();
  const envCache = new Map<string, string[]>();
  for (const secret of plan.secrets.filter(wanted)) {
    const consumers = plan.containers.filter((container) =>
      container.secretMounts.some((mount) => mount.secret === secret.name),
    );
    const consumer = consumers[0];
    if (!consumer) continue;
    const runtimeName = containerRuntimeName(plan.instance.name, consumer.name);
    let value: string | undefined;
    if (secret.delivery.type === 'env') {
      const variable = secret.delivery.variable;
      let env = envCache.get(runtimeName);
      if (!env) {
        env = (await docker.getContainer(runtimeName).inspect()).Config.Env ?? [];
        envCache.set(runtimeName, env);
      }
      value = env.find((entry) => entry.startsWith(`${variable}=`))?.slice(variable.length + 1);
    } else {
      try {
        const archive = await docker.getContainer(runtimeName).getArchive({ path: secret.delivery.path });
        value = [...(await readArchive(archive)).values()][0];
      } catch (error) {
        if (!isMissingContainer(error)) throw error;
      }
    }
    if (value !== undefined) {
      registerSecret(value);
      values.set(secret.name, value);
    }
  }
  return values;
}

export async function readSidecarState(
  context: OperationContext,
  name: string,
  providerId: string,
): Promise<SidecarStateV2> {
  const { record } = await readInstance(context, name);
  const sidecar = record.plan.sidecars.find((candidate) => candidate.providerId === providerId);
  if (!sidecar) {
    throw new KeywardError({
      code: 'UNKNOWN_PROVIDER',
      providerId,
      message: `Instance "${name}" has no sidecar "${providerId}"; it has: ${record.plan.sidecars.map((candidate) => candidate.providerId).join(', ') || 'none'}.`,
    });
  }
  let values: Map<string, string>;
  try {
    values = await readSecretValues(
      context.runtime.docker,
      record.plan,
      (secret) => secret.providerId === providerId,
    );
  } catch (error) {
    if (!isMissingContainer(error)) throw error;
    // A container that held a secret is gone: another process is replacing it (a rotation parks
    // the old containers under other names), or it was removed behind keyward's back.
    const holder = await instanceLockHolder(name, lockDirectoryOf(context.settings));
    throw new KeywardError({
      code: holder ? 'ROTATION_IN_PROGRESS' : 'RUNTIME_ERROR',
      providerId: context.providerId,
      message: holder
        ? `Instance "${name}" is being changed by process ${holder.pid} (${holder.operation}); wait for it to finish and try again.`
        : `A container of instance "${name}" that holds a secret of sidecar "${providerId}" is missing (${error instanceof Error ? error.message : String(error)}); redeploy the instance.`,
      ...(holder ? { isRetryable: true } : {}),
      cause: error,
    });
  }
  return {
    metadata: sidecar.metadata,
    exports: sidecar.exports,
    secrets: Object.fromEntries(
      sidecar.secretNames.map((secretName) => [secretName, values.get(secretName)]),
    ),
    // What others asked of it (from the stored plan), so a rotation keeps its answers visible to them.
    requests: record.plan.sidecars.flatMap((other) =>
      other.requests
        .filter((request) => request.provider === providerId)
        .map((request) => ({ ...request, from: other.providerId })),
    ),
  };
}
