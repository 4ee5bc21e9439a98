// start, stop and logs of an existing instance.
import {
  KeywardError,
  type LogLineV2,
  type LogOptionsV2,
  type OperationOptionsV2,
  redact,
} from '@keyward/core';
import { containerLogStream, demultiplexLines, mergeIterables } from './container-logs.js';
import type { InstanceRecord } from './instance-record.js';
import { readInstance } from './instance-state.js';
import type { OperationContext } from './operation-context.js';
import { createEmitter, runStep } from './progress-steps.js';
import { readinessProbe, waitUntilReady } from './readiness.js';
import { isNotFound, isNotModified } from './runtime-differences.js';
import { agentNetworkRuntimeName, containerRuntimeName, helperRuntimeName } from './runtime-names.js';
import { startOrder as plannedStartOrder } from './start-order.js';

/**
 * The helper first (it holds the network namespace in open mode), the agent-network helper
 * (proxy-only: the agent joins its namespace), then the containers in `startAfter` order.
 */
function startOrder(record: InstanceRecord): string[] {
  const plan = record.plan;
  return [
    helperRuntimeName(plan.instance.name),
    ...(plan.networkMode === 'proxy-only' ? [agentNetworkRuntimeName(plan.instance.name)] : []),
    ...plannedStartOrder(plan.containers).map((container) =>
      containerRuntimeName(plan.instance.name, container.name),
    ),
  ];
}

/** What start and stop work from: the instance's record and a progress emitter. */
async function lifecycleOperation(context: OperationContext, name: string, options: OperationOptionsV2) {
  const emit = createEmitter(context.settings, options.onProgress);
  const { record } = await readInstance(context, name);
  return { docker: context.runtime.docker, emit, record };
}

export async function startInstance(
  context: OperationContext,
  name: string,
  options: OperationOptionsV2,
): Promise<void> {
  const { docker, emit, record } = await lifecycleOperation(context, name, options);
  for (const runtimeName of startOrder(record)) {
    await runStep(emit, `container.start:${runtimeName}`, `Starting ${runtimeName}`, async () => {
      await docker
        .getContainer(runtimeName)
        .start()
        .catch((error) => {
          if (!isNotModified(error)) throw error;
        });
    });
    const container = record.plan.containers.find(
      (candidate) => containerRuntimeName(record.plan.instance.name, candidate.name) === runtimeName,
    );
    const probe = container && readinessProbe(record.plan, container);
    if (container && probe) {
      await runStep(
        emit,
        `container.ready:${container.name}`,
        `Waiting until ${container.name} is ready`,
        () => waitUntilReady(context, record.plan, container, probe),
      );
    }
  }
}

export async function stopInstance(
  context: OperationContext,
  name: string,
  options: OperationOptionsV2,
): Promise<void> {
  const { docker, emit, record } = await lifecycleOperation(context, name, options);
  for (const runtimeName of startOrder(record).reverse()) {
    await runStep(emit, `container.stop:${runtimeName}`, `Stopping ${runtimeName}`, async () => {
      await docker
        .getContainer(runtimeName)
        .stop({ t: context.settings.stopTimeoutSeconds ?? 5 })
        .catch((error) => {
          if (!isNotModified(error) && !isNotFound(error)) throw error;
        });
    });
  }
}

/** The instance's containers' log lines, merged and redacted; ends quietly when the signal aborts. */
export async function* instanceLogs(
  context: OperationContext,
  name: string,
  options: LogOptionsV2,
): AsyncIterable<LogLineV2> {
  const { docker } = context.runtime;
  const { record } = await readInstance(context, name);
  const containers = record.plan.containers.filter(
    (container) => options.container === undefined || container.name === options.container,
  );
  if (containers.length === 0) {
    throw new KeywardError({
      code: 'UNKNOWN_CONTAINER',
      providerId: context.providerId,
      message: `Instance "${name}" has no container "${options.container}"; it has: ${record.plan.containers.map((container) => container.name).join(', ')}.`,
    });
  }
  const streams = await Promise.all(
    containers.map(async (container) => {
      const raw = await containerLogStream(
        docker,
        containerRuntimeName(record.plan.instance.name, container.name),
        {
          follow: options.follow ?? false,
          ...(options.tail === undefined ? {} : { tail: options.tail }),
        },
      );
      options.signal?.addEventListener('abort', () =>
        (raw as unknown as { destroy?: () => void }).destroy?.(),
      );
      return demultiplexLines(raw, container.name);
    }),
  );
  try {
    for await (const line of mergeIterables(streams)) {
      if (options.signal?.aborted) return;
      yield { ...line, line: redact(line.line) };
    }
  } catch (error) {
    if (options.signal?.aborted) return;
    throw error;
  }
}
