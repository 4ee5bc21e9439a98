// Reading instances back from the runtime: everything comes from the labels of their containers.
import {
  AGENT_CONTAINER_NAME,
  type ContainerStatusV2,
  type InstanceDetailV2,
  type InstanceStateV2,
  type InstanceSummaryV2,
  KeywardError,
  labelKeys,
} from '@keyward/core';
import type Docker from 'dockerode';
import { decodeRecord, type InstanceRecord, instanceFilter, localLabelKeys } from './instance-record.js';
import type { OperationContext } from './operation-context.js';
import {
  containerSummaryName,
  matchesAllLabels,
  publishedHostPortFromSummary,
} from './runtime-differences.js';
import { agentNetworkRuntimeName, containerRuntimeName, helperRuntimeName } from './runtime-names.js';

export async function instanceContainers(
  { providerId, runtime }: OperationContext,
  name: string,
): Promise<Docker.ContainerInfo[]> {
  const filter = instanceFilter(name, providerId);
  return (await runtime.docker.listContainers({ all: true, filters: filter })).filter((summary) =>
    matchesAllLabels(summary.Labels, filter),
  );
}

/** Whether the container is under its own runtime name (not parked aside by a rotation). */
export function atRuntimeName(summary: Docker.ContainerInfo): boolean {
  const instance = summary.Labels[labelKeys.instance] ?? '';
  const component = summary.Labels[labelKeys.component] ?? '';
  return containerSummaryName(summary) === containerRuntimeName(instance, component);
}

/**
 * The agent container, which carries the instance record. While a rotation runs (or after one
 * was interrupted) the old agent is parked under another name: the one under the agent's own
 * name holds the current record.
 */
export function findAgent(containers: Docker.ContainerInfo[]): Docker.ContainerInfo | undefined {
  const agents = containers.filter(
    (summary) =>
      summary.Labels[labelKeys.component] === AGENT_CONTAINER_NAME && summary.Labels[localLabelKeys.record],
  );
  return agents.find(atRuntimeName) ?? agents[0];
}

export function instanceNotFound(providerId: string, name: string): KeywardError {
  return new KeywardError({
    code: 'INSTANCE_NOT_FOUND',
    providerId,
    message: `No instance "${name}" on the local runtime; \`list\` shows the instances that exist.`,
  });
}

/** The instance's record and containers; `INSTANCE_NOT_FOUND` without an agent. */
export async function readInstance(
  context: OperationContext,
  name: string,
): Promise<{ record: InstanceRecord; containers: Docker.ContainerInfo[] }> {
  const containers = await instanceContainers(context, name);
  const agent = findAgent(containers);
  if (!agent) throw instanceNotFound(context.providerId, name);
  return { record: decodeRecord(agent.Labels[localLabelKeys.record], name), containers };
}

function summaryState(summary: Docker.ContainerInfo | undefined): { state: string; running: boolean } {
  if (!summary) return { state: 'missing', running: false };
  return { state: summary.State, running: summary.State === 'running' };
}

function summarizeInstance(record: InstanceRecord, containers: Docker.ContainerInfo[]): InstanceSummaryV2 {
  const plan = record.plan;
  const byName = new Map(containers.map((summary) => [containerSummaryName(summary), summary]));
  const statuses: ContainerStatusV2[] = plan.containers.map((container) => {
    const summary = byName.get(containerRuntimeName(plan.instance.name, container.name));
    return {
      name: container.name,
      providerId: container.providerId,
      image: container.image,
      ...summaryState(summary),
    };
  });
  const helper = byName.get(helperRuntimeName(plan.instance.name));
  const helpers = [
    helper,
    ...(plan.networkMode === 'proxy-only' ? [byName.get(agentNetworkRuntimeName(plan.instance.name))] : []),
  ];
  const all = [
    ...statuses.map((status) => status.running),
    ...helpers.map((summary) => summaryState(summary).running),
  ];
  const agentPresent = statuses.some(
    (status) => status.name === AGENT_CONTAINER_NAME && status.state !== 'missing',
  );
  let state: InstanceStateV2;
  if (!agentPresent) state = 'failed';
  else if (all.every(Boolean)) state = 'running';
  else if (!all.some(Boolean)) state = 'stopped';
  else state = 'partial';
  const agentPort = plan.ingress[0]?.port;
  const published =
    agentPort === undefined ? undefined : publishedHostPortFromSummary(helper?.Ports, agentPort);
  const agentContainer = plan.containers.find((container) => container.role === 'agent');
  const agent = agentContainer && byName.get(containerRuntimeName(plan.instance.name, agentContainer.name));
  return {
    name: plan.instance.name,
    target: plan.instance.target,
    state,
    networkMode: plan.networkMode,
    containers: statuses,
    ...(published ? { agentUrl: `http://${published.hostAddress}:${published.hostPort}` } : {}),
    ...(agent?.Created ? { createdAt: new Date(agent.Created * 1000).toISOString() } : {}),
  };
}

/** An instance whose record cannot be read: listed as failed, with what the runtime shows. */
function unreadableSummary(
  providerId: string,
  instance: string,
  list: Docker.ContainerInfo[],
): InstanceSummaryV2 {
  return {
    name: instance,
    target: providerId,
    state: 'failed',
    networkMode: 'proxy-only',
    containers: list.map((summary) => ({
      name: summary.Labels[labelKeys.component] ?? containerSummaryName(summary),
      providerId: summary.Labels[labelKeys.provider] ?? 'unknown',
      image: summary.Image,
      ...summaryState(summary),
    })),
  };
}

export async function listInstances({ providerId, runtime }: OperationContext): Promise<InstanceSummaryV2[]> {
  // One runtime call, whatever the number of instances: everything comes from labels.
  const filter = { label: [`${labelKeys.managedBy}=keyward`, `${labelKeys.target}=${providerId}`] };
  const containers = (await runtime.docker.listContainers({ all: true, filters: filter })).filter((summary) =>
    matchesAllLabels(summary.Labels, filter),
  );
  const byInstance = new Map<string, Docker.ContainerInfo[]>();
  for (const summary of containers) {
    const instance = summary.Labels[labelKeys.instance];
    if (!instance) continue;
    const list = byInstance.get(instance) ?? [];
    list.push(summary);
    byInstance.set(instance, list);
  }
  const summaries: InstanceSummaryV2[] = [];
  for (const [instance, list] of byInstance) {
    const agent = findAgent(list);
    if (!agent) {
      summaries.push(unreadableSummary(providerId, instance, list));
      continue;
    }
    let record: InstanceRecord;
    try {
      record = decodeRecord(agent.Labels[localLabelKeys.record], instance);
    } catch {
      // An instance another keyward version made (or a damaged record) must not hide the others.
      summaries.push(unreadableSummary(providerId, instance, list));
      continue;
    }
    summaries.push(summarizeInstance(record, list));
  }
  return summaries.sort((a, b) => a.name.localeCompare(b.name));
}

export async function getInstance(context: OperationContext, name: string): Promise<InstanceDetailV2> {
  const { record, containers } = await readInstance(context, name);
  return {
    ...summarizeInstance(record, containers),
    redactedSpec: record.plan.redactedSpec,
    sidecars: record.plan.sidecars.map((sidecar) => ({
      providerId: sidecar.providerId,
      metadata: sidecar.metadata,
      exports: sidecar.exports,
    })),
  };
}
