import type { V1ContainerStatus, V1Deployment, V1Pod } from '@kubernetes/client-node';
import type { KubernetesApi } from './kubernetes-api.js';

/** Waiting reasons that do not fix themselves: the rollout fails at once with the kubelet's message. */
export const fatalWaitingReasons = new Set([
  'ErrImagePull',
  'ImagePullBackOff',
  'InvalidImageName',
  'ErrImageNeverPull',
  'CreateContainerConfigError',
  'CreateContainerError',
  'CrashLoopBackOff',
  'RunContainerError',
]);

export class RolloutError extends Error {}

export interface RolloutWatch {
  api: KubernetesApi;
  namespace: string;
  name: string;
  /** Pods of this Deployment (its selector). */
  labelSelector: string;
  timeoutMs: number;
  pollMs: number;
  signal?: AbortSignal | undefined;
  /** Each new thing observed (a pod condition, a waiting reason), once. */
  onObservation(message: string): void;
}

function statusesOf(pod: V1Pod): V1ContainerStatus[] {
  return [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];
}

/** What a pod is doing, in words, and whether it can still succeed. */
export function describePod(pod: V1Pod): { notes: string[]; fatal?: string } {
  const name = pod.metadata?.name ?? 'pod';
  const notes: string[] = [];
  let fatal: string | undefined;
  for (const condition of pod.status?.conditions ?? []) {
    if (condition.status === 'True') continue;
    if (condition.type === 'PodScheduled' && condition.reason) {
      notes.push(`${name} not scheduled (${condition.reason}): ${condition.message ?? ''}`.trim());
    }
  }
  for (const status of statusesOf(pod)) {
    const waiting = status.state?.waiting;
    if (waiting?.reason && waiting.reason !== 'ContainerCreating' && waiting.reason !== 'PodInitializing') {
      const note = `${name}/${status.name} waiting (${waiting.reason})${waiting.message ? `: ${waiting.message}` : ''}`;
      notes.push(note);
      if (fatalWaitingReasons.has(waiting.reason)) fatal ??= note;
    }
    const terminated = status.state?.terminated ?? status.lastState?.terminated;
    if (terminated && terminated.exitCode !== 0 && status.restartCount > 0) {
      notes.push(
        `${name}/${status.name} exited with ${terminated.exitCode} (${terminated.reason ?? 'Error'}), restarted ${status.restartCount} time(s)`,
      );
    }
  }
  return fatal ? { notes, fatal } : { notes };
}

/** True when the Deployment's controller has caught up and every wanted replica is available. */
export function deploymentSettled(deployment: V1Deployment): boolean {
  const wanted = deployment.spec?.replicas ?? 1;
  const status = deployment.status ?? {};
  if ((status.observedGeneration ?? 0) < (deployment.metadata?.generation ?? 0)) return false;
  if (wanted === 0) return (status.replicas ?? 0) === 0;
  return (
    (status.updatedReplicas ?? 0) === wanted &&
    (status.availableReplicas ?? 0) === wanted &&
    (status.replicas ?? 0) === wanted
  );
}

/** A Deployment condition that says the rollout cannot finish (quota, admission, deadline). */
export function deploymentFailure(deployment: V1Deployment): string | undefined {
  for (const condition of deployment.status?.conditions ?? []) {
    if (condition.type === 'ReplicaFailure' && condition.status === 'True') {
      return `${condition.reason ?? 'ReplicaFailure'}: ${condition.message ?? ''}`.trim();
    }
    if (
      condition.type === 'Progressing' &&
      condition.status === 'False' &&
      condition.reason === 'ProgressDeadlineExceeded'
    ) {
      return `ProgressDeadlineExceeded: ${condition.message ?? ''}`.trim();
    }
  }
  return undefined;
}

/** Polls a Deployment and its pods until it settles, fails, or the time runs out. */
export async function waitForRollout(watch: RolloutWatch): Promise<void> {
  const deadline = Date.now() + watch.timeoutMs;
  const seen = new Set<string>();
  const observe = (message: string) => {
    if (seen.has(message)) return;
    seen.add(message);
    watch.onObservation(message);
  };
  let last = 'no status yet';
  for (;;) {
    watch.signal?.throwIfAborted();
    const deployment = await watch.api.read<V1Deployment>(
      'apps/v1',
      'Deployment',
      watch.namespace,
      watch.name,
    );
    if (!deployment) throw new RolloutError(`Deployment ${watch.namespace}/${watch.name} disappeared`);
    if (deploymentSettled(deployment)) return;
    const failure = deploymentFailure(deployment);
    if (failure) throw new RolloutError(`Deployment ${watch.name}: ${failure}`);
    const pods = await watch.api.list<V1Pod>('v1', 'Pod', watch.namespace, watch.labelSelector);
    for (const pod of pods) {
      if (pod.metadata?.deletionTimestamp) continue;
      const { notes, fatal } = describePod(pod);
      for (const note of notes) observe(note);
      if (fatal) throw new RolloutError(fatal);
    }
    const status = deployment.status ?? {};
    last = `${status.availableReplicas ?? 0}/${deployment.spec?.replicas ?? 1} available, ${status.updatedReplicas ?? 0} updated, ${pods.length} pod(s)`;
    observe(`Deployment ${watch.name}: ${last}`);
    if (Date.now() >= deadline) {
      throw new RolloutError(
        `Deployment ${watch.name} did not become available within ${Math.round(watch.timeoutMs / 1000)} s (${last})`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, watch.pollMs));
  }
}
