import {
  type ConnectionV2,
  KeywardError,
  type PlannedContainerV2,
  type SidecarRotationRequestV2,
} from '@keyward/core';
import type { StoredPlanV2 } from './instance-record.js';

function sortedRecord(record: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * The plan after a rotation: each part's containers, secrets, agent env and agent files replace
 * its provider's; everything else stays as stored. Mounts, start order and connections are
 * derived again from the result, the way the composer derives them.
 */
export function rotatedPlan(current: StoredPlanV2, request: SidecarRotationRequestV2): StoredPlanV2 {
  let next: StoredPlanV2 = structuredClone(current);
  for (const part of request.parts) {
    const providerId = part.providerId;
    const previous = next.sidecars.find((sidecar) => sidecar.providerId === providerId);
    if (!previous) {
      throw new KeywardError({
        code: 'INVALID_INPUT',
        providerId,
        message: `Instance "${current.instance.name}" has no sidecar "${providerId}" to rotate; deployed sidecars: ${next.sidecars.map((sidecar) => sidecar.providerId).join(', ') || 'none'}.`,
      });
    }
    const oldEnvKeys = new Set(previous.agentEnvKeys);
    const oldFilePaths = new Set(previous.agentFilePaths);
    const containers: PlannedContainerV2[] = [];
    let inserted = false;
    for (const container of next.containers) {
      if (container.role === 'agent') {
        const env = Object.fromEntries(Object.entries(container.env).filter(([key]) => !oldEnvKeys.has(key)));
        Object.assign(env, part.agentEnv);
        containers.push({
          ...container,
          env: sortedRecord(env),
          files: [
            ...container.files.filter((file) => !oldFilePaths.has(file.path)),
            ...structuredClone(part.agentFiles),
          ].sort((a, b) => a.path.localeCompare(b.path)),
        });
      } else if (container.providerId === providerId) {
        if (!inserted) containers.push(...structuredClone(part.containers));
        inserted = true;
      } else {
        containers.push(container);
      }
    }
    if (!inserted) containers.push(...structuredClone(part.containers));
    next = {
      ...next,
      containers,
      secrets: [
        ...next.secrets.filter((secret) => secret.providerId !== providerId),
        ...part.secrets.map(({ value: _value, ...rest }) => structuredClone(rest)),
      ],
      sidecars: next.sidecars.map((sidecar) =>
        sidecar.providerId === providerId
          ? {
              ...structuredClone(part.sidecar),
              // A rotation makes no requests (core resolves the part with none): what this
              // provider asked of others at deploy stays asked, or their answers would go.
              requests:
                part.sidecar.requests.length > 0 ? structuredClone(part.sidecar.requests) : previous.requests,
            }
          : sidecar,
      ),
    };
  }
  // Mounts follow `visibleTo`; sidecars start after the providers they require; the agent after all.
  const containersOf = new Map(next.sidecars.map((sidecar) => [sidecar.providerId, sidecar.containerNames]));
  const requiresOf = new Map(next.sidecars.map((sidecar) => [sidecar.providerId, sidecar.requires]));
  next.containers = next.containers.map((container) => ({
    ...container,
    secretMounts: next.secrets
      .filter((secret) => secret.visibleTo.includes(container.name))
      .map((secret) => ({ secret: secret.name, delivery: secret.delivery })),
    startAfter:
      container.role === 'agent'
        ? next.containers.filter((item) => item.role !== 'agent').map((item) => item.name)
        : (requiresOf.get(container.providerId) ?? []).flatMap((id) => containersOf.get(id) ?? []),
  }));
  const key = (item: ConnectionV2) =>
    `${item.from}\u0000${item.to}\u0000${String(item.port).padStart(5, '0')}`;
  const connections = new Map<string, ConnectionV2>();
  for (const sidecar of next.sidecars) {
    for (const connection of sidecar.connections) connections.set(key(connection), { ...connection });
  }
  next.connections = [...connections.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([, item]) => item);
  next.redactedSpec = structuredClone(request.redactedSpec);
  return next;
}
