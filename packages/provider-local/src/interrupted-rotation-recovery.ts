// recoverInterrupted: an instance a rotation left half-done (its process was killed, or the
// runtime stopped answering) made whole again. The rotation parks the old containers (stopped,
// renamed `…-previous-<new generation>`), makes the new ones with the agent last, then removes
// the parked ones: the new agent existing is the point after which finishing is the way out;
// before it, the parked containers come back with the old credentials.
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AGENT_CONTAINER_NAME,
  type InterruptedOperationRecoveryV2,
  labelKeys,
  type OperationOptionsV2,
} from '@keyward/core';
import type Docker from 'dockerode';
import { acquireInstanceLock } from './instance-lock.js';
import { decodeRecord, instanceFilter, localLabelKeys, type StoredPlan } from './instance-record.js';
import { atRuntimeName, instanceContainers, instanceNotFound } from './instance-state.js';
import type { OperationContext } from './operation-context.js';
import { createEmitter, type Emit, runStep } from './progress-steps.js';
import { readinessProbe, waitUntilReady } from './readiness.js';
import { containerSummaryName, isNotFound, isNotModified, matchesAllLabels } from './runtime-differences.js';
import { containerRuntimeName, helperRuntimeName, parkingGeneration } from './runtime-names.js';
import { startOrder } from './start-order.js';

interface Parked {
  summary: Docker.ContainerInfo;
  /** The name it goes back to. */
  runtimeName: string;
  /** The generation of the rotation that parked it (the new containers carry it). */
  generation: string;
}

function parkedContainers(containers: Docker.ContainerInfo[]): Parked[] {
  return containers.flatMap((summary) => {
    const instance = summary.Labels[labelKeys.instance] ?? '';
    const runtimeName = containerRuntimeName(instance, summary.Labels[labelKeys.component] ?? '');
    const generation = parkingGeneration(containerSummaryName(summary), runtimeName);
    return generation === undefined ? [] : [{ summary, runtimeName, generation }];
  });
}

function isAgentWithRecord(summary: Docker.ContainerInfo): boolean {
  return (
    summary.Labels[labelKeys.component] === AGENT_CONTAINER_NAME &&
    summary.Labels[localLabelKeys.record] !== undefined
  );
}

export async function recoverInterruptedRotation(
  context: OperationContext,
  name: string,
  options: OperationOptionsV2,
): Promise<InterruptedOperationRecoveryV2> {
  const { settings } = context;
  const emit = createEmitter(settings, options.onProgress, options.signal);
  // The dead process's lock is stale (its pid is gone) and is taken over; a live rotation's is waited for.
  const release = await acquireInstanceLock(name, 'recoverInterrupted', {
    directory: settings.lockDirectory ?? join(tmpdir(), 'keyward-locks'),
    waitMs: settings.lockWaitMs ?? 60_000,
  });
  try {
    const containers = await instanceContainers(context, name);
    if (containers.length === 0) throw instanceNotFound(context.providerId, name);
    const writers = containers.filter((summary) => summary.Labels[localLabelKeys.role] === 'volume-writer');
    await removeContainers(context, emit, 'recover.remove-writers', writers, 'file writers');
    const parked = parkedContainers(containers);
    // Rotations never stop the helpers; `stop` does: a running helper means the instance ran.
    const helper = containers.find((summary) => containerSummaryName(summary) === helperRuntimeName(name));
    const wasRunning = helper?.State === 'running';
    let result: InterruptedOperationRecoveryV2;
    if (parked.length === 0) {
      result = await restartStopped(context, emit, name, containers, wasRunning);
    } else {
      const generations = new Set(parked.map((entry) => entry.generation));
      const current = containers.filter(
        (summary) => atRuntimeName(summary) && summary.Labels[localLabelKeys.role] !== 'volume-writer',
      );
      const made = current.filter((summary) =>
        generations.has(summary.Labels[localLabelKeys.generation] ?? ''),
      );
      const newAgent = made.find(isAgentWithRecord);
      result = newAgent
        ? await finishRotation(context, emit, name, newAgent, parked, wasRunning)
        : await restoreRotation(context, emit, name, parked, made, wasRunning);
    }
    await removeUnusedFileVolumes(context, emit, name);
    return result;
  } finally {
    await release();
  }
}

/** The new agent exists: every new container is there; start what should run, drop the old ones. */
async function finishRotation(
  context: OperationContext,
  emit: Emit,
  name: string,
  agent: Docker.ContainerInfo,
  parked: Parked[],
  wasRunning: boolean,
): Promise<InterruptedOperationRecoveryV2> {
  const plan = decodeRecord(agent.Labels[localLabelKeys.record], name).plan;
  const started = wasRunning ? await startPlanContainers(context, emit, plan) : [];
  await removeContainers(
    context,
    emit,
    'recover.remove-previous',
    parked.map((entry) => entry.summary),
    'previous containers',
  );
  return {
    outcome: 'completed',
    message: `A rotation of "${name}" stopped after its new containers were made: they were kept${started.length > 0 ? ` (started ${started.join(', ')})` : ''} and the previous ones (${parked.map((entry) => containerSummaryName(entry.summary)).join(', ')}) removed, so the new credentials are in place.`,
  };
}

/** The new agent was never made: the new containers go, the parked ones come back. */
async function restoreRotation(
  context: OperationContext,
  emit: Emit,
  name: string,
  parked: Parked[],
  made: Docker.ContainerInfo[],
  wasRunning: boolean,
): Promise<InterruptedOperationRecoveryV2> {
  const { docker } = context.runtime;
  await removeContainers(context, emit, 'recover.remove-new', made, 'containers the rotation made');
  for (const entry of parked) {
    await runStep(
      emit,
      `recover.rename:${entry.summary.Labels[labelKeys.component]}`,
      `Renaming ${containerSummaryName(entry.summary)} back to ${entry.runtimeName}`,
      () => docker.getContainer(entry.summary.Id).rename({ name: entry.runtimeName }),
    );
  }
  const agent = parked.find((entry) => isAgentWithRecord(entry.summary))?.summary;
  const plan = agent ? decodeRecord(agent.Labels[localLabelKeys.record], name).plan : undefined;
  const started = wasRunning && plan ? await startPlanContainers(context, emit, plan) : [];
  return {
    outcome: 'restored',
    message: `A rotation of "${name}" stopped before its new agent was made: ${made.length > 0 ? `the containers it had made (${made.map(containerSummaryName).join(', ')}) were removed and ` : ''}the previous containers were put back${started.length > 0 ? ` and started (${started.join(', ')})` : ''}, so the previous credentials are in place.`,
  };
}

/**
 * Nothing parked: the rotation stopped before it parked anything, while it was stopping a
 * container, or after it removed the parked ones. A container of the plan left stopped while
 * the instance runs is started again.
 */
async function restartStopped(
  context: OperationContext,
  emit: Emit,
  name: string,
  containers: Docker.ContainerInfo[],
  wasRunning: boolean,
): Promise<InterruptedOperationRecoveryV2> {
  const agent = containers.find((summary) => isAgentWithRecord(summary) && atRuntimeName(summary));
  if (!agent) {
    return {
      outcome: 'none',
      message: `Instance "${name}" has no agent container: no rotation was left half-done (what a deploy left is removed with delete).`,
    };
  }
  const plan = decodeRecord(agent.Labels[localLabelKeys.record], name).plan;
  const started = wasRunning ? await startPlanContainers(context, emit, plan) : [];
  return started.length > 0
    ? {
        outcome: 'restored',
        message: `A rotation of "${name}" stopped while it was stopping containers: ${started.join(', ')} started again, so the previous credentials are in place.`,
      }
    : { outcome: 'none', message: `Nothing of "${name}" was left half-done.` };
}

/** Starts the plan's containers that are not running, in start order, each until it is ready. */
async function startPlanContainers(
  context: OperationContext,
  emit: Emit,
  plan: StoredPlan,
): Promise<string[]> {
  const { docker } = context.runtime;
  const started: string[] = [];
  for (const container of startOrder(plan.containers)) {
    const runtimeName = containerRuntimeName(plan.instance.name, container.name);
    const state = await docker
      .getContainer(runtimeName)
      .inspect()
      .then(
        (info) => info.State,
        (error) => {
          if (isNotFound(error)) return undefined;
          throw error;
        },
      );
    if (!state || state.Running) continue;
    await runStep(emit, `recover.start:${container.name}`, `Starting ${runtimeName}`, async () => {
      await docker
        .getContainer(runtimeName)
        .start()
        .catch((error) => {
          if (!isNotModified(error)) throw error;
        });
    });
    const probe = readinessProbe(plan, container);
    if (probe) {
      await runStep(emit, `recover.ready:${container.name}`, `Waiting until ${container.name} is ready`, () =>
        waitUntilReady(context, plan, container, probe),
      );
    }
    started.push(runtimeName);
  }
  return started;
}

async function removeContainers(
  context: OperationContext,
  emit: Emit,
  step: string,
  containers: Docker.ContainerInfo[],
  what: string,
): Promise<void> {
  if (containers.length === 0) return;
  await runStep(
    emit,
    step,
    `Removing the ${what}: ${containers.map(containerSummaryName).join(', ')}`,
    async () => {
      for (const summary of containers) {
        await context.runtime.docker
          .getContainer(summary.Id)
          .remove({ force: true })
          .catch((error) => {
            if (!isNotFound(error)) throw error;
          });
      }
    },
  );
}

/** File volumes (secrets and config of one generation) that no container of the instance mounts. */
async function removeUnusedFileVolumes(context: OperationContext, emit: Emit, name: string): Promise<void> {
  const { docker } = context.runtime;
  const filter = instanceFilter(name, context.providerId);
  const { Volumes: volumes } = await docker.listVolumes({ filters: filter });
  const files = (volumes ?? []).filter(
    (volume) =>
      matchesAllLabels(volume.Labels, filter) && volume.Labels?.[localLabelKeys.volumeKind] === 'files',
  );
  if (files.length === 0) return;
  const mounted = new Set<string>();
  for (const summary of await instanceContainers(context, name)) {
    const info = await docker.getContainer(summary.Id).inspect();
    for (const mount of info.Mounts ?? []) if (mount.Name) mounted.add(mount.Name);
  }
  const unused = files.filter((volume) => !mounted.has(volume.Name));
  if (unused.length === 0) return;
  await runStep(
    emit,
    'recover.remove-volumes',
    `Removing file volumes no container uses: ${unused.map((volume) => volume.Name).join(', ')}`,
    async () => {
      for (const volume of unused) {
        await docker
          .getVolume(volume.Name)
          .remove()
          .catch((error) => {
            if (!isNotFound(error)) throw error;
          });
      }
    },
  );
}
