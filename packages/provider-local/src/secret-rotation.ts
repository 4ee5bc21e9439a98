// rotateSecrets: new containers for the rotated sidecars (every part: the rotated provider and
// the dependents that followed), the agent and every container that sees a rotated secret,
// beside the parked old ones, which come back on any failure: all parts or none.
import {
  type InstanceDetailV2,
  KeywardError,
  labelKeys,
  type OperationOptionsV2,
  type PlannedContainerV2,
  redact,
  registerSecret,
  type SidecarRotationRequestV2,
} from '@keyward/core';
import { relayPlan } from './agent-network.js';
import { checkImages, deployContainer } from './container-deployment.js';
import { noCreatedResources, removeCreatedResources } from './instance-cleanup.js';
import { acquireInstanceLock, lockDirectoryOf } from './instance-lock.js';
import { instanceFilter, localLabelKeys, planDigest, type StoredPlan } from './instance-record.js';
import { getInstance, readInstance } from './instance-state.js';
import { newGeneration, type OperationContext } from './operation-context.js';
import { createEmitter, type Emit, failedStep, runStep } from './progress-steps.js';
import { readinessProbe, waitUntilReady } from './readiness.js';
import { affectedContainerNames, rotatedPlan } from './rotated-plan.js';
import {
  containerSummaryName,
  isConflict,
  isNotFound,
  isNotModified,
  matchesAllLabels,
} from './runtime-differences.js';
import { rollbackIncompleteError, runtimeAnswers } from './runtime-loss.js';
import { containerRuntimeName, parkedRuntimeName } from './runtime-names.js';
import { readSecretValues } from './sidecar-state.js';
import { startOrder } from './start-order.js';

/** An old container, stopped and renamed aside until its replacement is ready. */
interface ParkedContainer {
  container: PlannedContainerV2;
  runtimeName: string;
  parkedName: string;
  wasRunning: boolean;
}

/** Sort order that puts the agent first (stop it before its sidecars); reversed for starting. */
function agentFirst(a: PlannedContainerV2, b: PlannedContainerV2): number {
  return (a.role === 'agent' ? 0 : 1) - (b.role === 'agent' ? 0 : 1);
}

export async function rotateSecrets(
  context: OperationContext,
  name: string,
  request: SidecarRotationRequestV2,
  options: OperationOptionsV2,
): Promise<InstanceDetailV2> {
  const { settings, helperImage } = context;
  const { docker } = context.runtime;
  const emit = createEmitter(settings, options.onProgress);
  for (const part of request.parts) for (const secret of part.secrets) registerSecret(secret.value);
  const release = await acquireInstanceLock(name, 'rotateSecrets', {
    directory: lockDirectoryOf(settings),
    waitMs: settings.lockWaitMs ?? 60_000,
  });
  try {
    const { record, containers: summaries } = await readInstance(context, name);
    const current = record.plan;
    const next = rotatedPlan(current, request);
    const providerId = request.providerId;
    const rotated = new Set(request.parts.map((part) => part.providerId));
    // Values of secrets the rotation keeps (other sidecars' secrets) come from the runtime.
    const keptValues = await readSecretValues(docker, current, (secret) => !rotated.has(secret.providerId));
    const secretValues = new Map([
      ...keptValues,
      ...request.parts.flatMap((part) => part.secrets.map((secret) => [secret.name, secret.value] as const)),
    ]);
    if (
      current.networkMode === 'proxy-only' &&
      JSON.stringify(relayPlan(current)) !== JSON.stringify(relayPlan(next))
    ) {
      // The helpers' relays are the agent's only paths; they are made with the instance.
      throw new KeywardError({
        code: 'ROTATION_FAILED',
        providerId: context.providerId,
        message: `Rotating "${providerId}" on "${name}" changes the connections the agent may open (${next.connections
          .filter((connection) => connection.from === 'agent')
          .map((connection) => `${connection.to}:${connection.port}`)
          .join(
            ', ',
          )}); this target sets those up with the instance: delete it and apply the new plan. Nothing was changed.`,
      });
    }
    const affected = affectedContainerNames(current, next, rotated);
    const affectedNew = next.containers.filter((container) => affected.has(container.name));
    const affectedOld = current.containers.filter((container) => affected.has(container.name));
    const generation = newGeneration(settings);
    const digest = planDigest(next, secretValues, helperImage);
    const parked: ParkedContainer[] = affectedOld.map((container) => {
      const runtimeName = containerRuntimeName(name, container.name);
      return {
        container,
        runtimeName,
        parkedName: parkedRuntimeName(runtimeName, generation),
        wasRunning: summaries.some(
          (summary) => containerSummaryName(summary) === runtimeName && summary.State === 'running',
        ),
      };
    });
    // A container new to the plan follows the agent: it runs only if the instance did.
    const agentWasRunning = parked.some((entry) => entry.container.role === 'agent' && entry.wasRunning);
    const startAfterRotation = (container: PlannedContainerV2) =>
      parked.find((entry) => entry.container.name === container.name)?.wasRunning ?? agentWasRunning;
    const created = noCreatedResources();
    let parkedCount = 0;
    try {
      // Keep the old containers, stopped and renamed, until the new ones are ready.
      for (const entry of [...parked].sort((a, b) => agentFirst(a.container, b.container))) {
        await runStep(
          emit,
          `container.park:${entry.container.name}`,
          `Stopping ${entry.runtimeName} (kept until the new one is ready)`,
          async () => {
            const handle = docker.getContainer(entry.runtimeName);
            await handle.stop({ t: settings.stopTimeoutSeconds ?? 5 }).catch((error) => {
              if (!isNotModified(error)) throw error;
            });
            await handle.rename({ name: entry.parkedName });
            parkedCount += 1;
          },
        );
      }
      // Other containers of the instance keep their plan digest label; the agent's record holds the new plan.
      const images = await checkImages(context, emit, [
        ...new Set(affectedNew.map((container) => container.image)),
      ]);
      const ordered = startOrder(affectedNew);
      for (const container of ordered) {
        await deployContainer(context, emit, {
          stored: next,
          container,
          secretValues,
          digest,
          generation,
          images,
          created,
          start: startAfterRotation(container),
          ...(container.role === 'agent' ? { record: { ...record, plan: next, generation } } : {}),
        });
      }
    } catch (error) {
      const { step, original } = failedStep(error, 'rotate');
      emit('rollback', 'started', `Step ${step} failed; restoring the previous containers of "${name}"`);
      await removeCreatedResources(docker, created);
      const restored = await restoreParked(context, current, parked.slice(0, parkedCount));
      if (!restored || !(await runtimeAnswers(docker))) {
        emit(
          'rollback',
          'failed',
          `The container runtime stopped answering; the previous containers of "${name}" are still parked`,
        );
        throw rollbackIncompleteError({
          providerId: context.providerId,
          operation: `Rotating secrets of "${name}"`,
          step,
          cause: original,
          left: `so its previous containers could not be put back yet (they are kept, stopped, as "…-previous-${generation}"): once the runtime answers again, a keyward server puts them back by itself (the target's recoverInterrupted).`,
        });
      }
      emit(
        'rollback',
        'succeeded',
        parked.some((entry) => entry.wasRunning)
          ? `The previous containers of "${name}" run again with the old credentials`
          : `The previous containers of "${name}" are back, stopped, with the old credentials`,
      );
      throw new KeywardError({
        code: 'ROTATION_FAILED',
        providerId: context.providerId,
        message: redact(
          `Rotating secrets of "${name}" failed at step "${step}": ${(original as Error).message}. The previous credentials are still in place.`,
        ),
        details: { step },
        cause: original,
      });
    }
    // The new containers are ready (or created, if stopped): the old ones and their volumes can go.
    await removePrevious(context, emit, name, parked, {
      components: new Set([...affectedOld, ...affectedNew].map((container) => container.name)),
      generation,
    });
    const leftStopped = affectedNew.filter((container) => !startAfterRotation(container));
    if (leftStopped.length > 0) {
      emit(
        'rotate',
        'info',
        `Left ${leftStopped.map((container) => containerRuntimeName(name, container.name)).join(', ')} stopped, as before the rotation; the next start of "${name}" uses the new secrets`,
      );
    }
    emit(
      'rotate',
      'succeeded',
      `Secrets of sidecar "${providerId}" rotated on "${name}"${rotated.size > 1 ? ` (with ${[...rotated].filter((id) => id !== providerId).join(', ')}, which depend on it)` : ''}`,
    );
    return getInstance(context, name);
  } finally {
    await release();
  }
}

/**
 * Renames the parked containers back and starts those that were running (best effort). False
 * when a container could not be renamed back: the old credentials are not in place.
 */
async function restoreParked(
  context: OperationContext,
  current: StoredPlan,
  parked: ParkedContainer[],
): Promise<boolean> {
  const { docker } = context.runtime;
  let renamed = true;
  for (const entry of parked) {
    await docker
      .getContainer(entry.parkedName)
      .rename({ name: entry.runtimeName })
      .catch(() => {
        renamed = false;
      });
  }
  for (const entry of [...parked].sort((a, b) => agentFirst(b.container, a.container))) {
    if (entry.wasRunning) {
      await docker
        .getContainer(entry.runtimeName)
        .start()
        .catch(() => undefined);
      // Best effort: the old credentials should answer again before we report.
      const probe = readinessProbe(current, entry.container);
      if (probe) await waitUntilReady(context, current, entry.container, probe).catch(() => undefined);
    }
  }
  return renamed;
}

/** Removes the parked containers, and the rotated components' file volumes of earlier generations. */
async function removePrevious(
  context: OperationContext,
  emit: Emit,
  name: string,
  parked: ParkedContainer[],
  rotated: { components: Set<string>; generation: string },
): Promise<void> {
  const { docker } = context.runtime;
  await runStep(emit, 'cleanup:previous', 'Removing the previous containers and their volumes', async () => {
    for (const entry of parked) {
      await docker
        .getContainer(entry.parkedName)
        .remove({ force: true })
        .catch((error) => {
          if (!isNotFound(error) && !isConflict(error)) throw error;
        });
    }
    const filter = instanceFilter(name, context.providerId);
    const { Volumes: volumes } = await docker.listVolumes({ filters: filter });
    for (const volume of (volumes ?? []).filter((candidate) => matchesAllLabels(candidate.Labels, filter))) {
      const labels = volume.Labels ?? {};
      if (
        labels[localLabelKeys.volumeKind] === 'files' &&
        rotated.components.has(labels[labelKeys.component] ?? '') &&
        labels[localLabelKeys.generation] !== rotated.generation
      ) {
        await docker
          .getVolume(volume.Name)
          .remove()
          .catch(() => undefined);
      }
    }
  });
}
