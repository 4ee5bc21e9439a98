import type { KubeConfig, V1Container, V1ContainerStatus, V1Pod } from '@kubernetes/client-node';
import { KubernetesApi } from '../kubernetes-api.js';

/** What a stand-in kubelet reports for one container: running and ready, or waiting with a reason. */
export type ContainerOutcome = { running: true } | { waiting: { reason: string; message: string } };

export interface PodStatusWriterOptions {
  kubeConfig: KubeConfig;
  /** Pods to act on; default every pod keyward manages. */
  labelSelector?: string;
  namespace?: string;
  /** Per container; default running and ready. */
  outcome?: (pod: V1Pod, container: V1Container) => ContainerOutcome;
  intervalMs?: number;
}

function containerStatus(container: V1Container, outcome: ContainerOutcome, now: string): V1ContainerStatus {
  return {
    name: container.name,
    image: container.image ?? '',
    imageID: '',
    restartCount: 0,
    ready: 'running' in outcome,
    started: 'running' in outcome,
    state:
      'running' in outcome
        ? { running: { startedAt: now as unknown as Date } }
        : { waiting: { reason: outcome.waiting.reason, message: outcome.waiting.message } },
  };
}

/**
 * Writes the status a kubelet would write, for control planes without nodes (the tests' real
 * kube-apiserver has no kubelet): each pod becomes Running and Ready, or its containers wait
 * with the given reason. It is a stand-in for the kubelet only; the API server, the
 * Deployment and ReplicaSet controllers that read these statuses are real.
 */
export function podStatusWriter(options: PodStatusWriterOptions) {
  const api = new KubernetesApi({ kubeConfig: options.kubeConfig });
  const selector = options.labelSelector ?? 'keyward.dev/managed-by=keyward';
  const outcome = options.outcome ?? (() => ({ running: true }) as const);
  const done = new Set<string>();

  async function writeOnce(): Promise<number> {
    const pods = await api.list<V1Pod>('v1', 'Pod', options.namespace, selector);
    let written = 0;
    for (const pod of pods) {
      const key = `${pod.metadata?.namespace}/${pod.metadata?.name}/${pod.metadata?.uid}`;
      if (done.has(key) || pod.metadata?.deletionTimestamp) continue;
      const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
      const spec = pod.spec ?? { containers: [] };
      const init = (spec.initContainers ?? []).map((container) =>
        containerStatus(container, outcome(pod, container), now),
      );
      const regular = spec.containers.map((container) =>
        containerStatus(container, outcome(pod, container), now),
      );
      const ready = [...init, ...regular].every((status) => status.ready);
      const condition = (type: string, status: boolean) => ({
        type,
        status: status ? 'True' : 'False',
        lastTransitionTime: now as unknown as Date,
      });
      const updated: V1Pod = {
        ...pod,
        status: {
          phase: ready ? 'Running' : 'Pending',
          hostIP: '127.0.0.1',
          podIP: '10.244.0.10',
          startTime: now as unknown as Date,
          conditions: [
            condition('PodScheduled', true),
            condition('Initialized', true),
            condition('ContainersReady', ready),
            condition('Ready', ready),
          ],
          ...(init.length > 0 ? { initContainerStatuses: init } : {}),
          containerStatuses: regular,
        },
      };
      try {
        await api.replaceStatus(updated);
        done.add(key);
        written += 1;
      } catch {
        // Changed or deleted meanwhile: the next round sees the new version.
      }
    }
    return written;
  }

  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> = Promise.resolve();
  return {
    writeOnce,
    start() {
      timer = setInterval(() => {
        running = running.then(writeOnce).catch(() => undefined);
      }, options.intervalMs ?? 250);
      return this;
    },
    async stop() {
      if (timer) clearInterval(timer);
      await running;
    },
  };
}
