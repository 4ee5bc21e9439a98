import {
  AGENT_CONTAINER_NAME,
  type ConnectionV2,
  KeywardError,
  type PlannedContainerV2,
  type SidecarRotationRequestV2,
} from '@keyward/core';
import type { StoredPlan, StoredSecret } from './instance-record.js';

function sortedRecord(record: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * The plan after a rotation: each part's containers, secrets, agent env and agent files
 * replace that provider's (parts in order: the rotated provider, then the dependents that
 * followed); everything else (image, port, own env, other sidecars) is kept exactly as stored.
 * A container's secret mounts follow the secrets' `visibleTo`, so a secret a provider made for
 * another provider's container stays mounted there, and only there.
 */
export function rotatedPlan(current: StoredPlan, request: SidecarRotationRequestV2): StoredPlan {
  if (request.parts.length === 0 || request.parts[0]?.providerId !== request.providerId) {
    throw new KeywardError({
      code: 'INVALID_INPUT',
      providerId: request.providerId,
      message: `A rotation of "${request.providerId}" must have that provider's part first; compose it with composeRotationV2.`,
    });
  }
  let containers = current.containers.map((container) => ({ ...container }));
  let secrets: StoredSecret[] = [...current.secrets];
  let sidecars = [...current.sidecars];
  for (const part of request.parts) {
    const providerId = part.providerId;
    const previous = sidecars.find((sidecar) => sidecar.providerId === providerId);
    if (!previous) {
      throw new KeywardError({
        code: 'UNKNOWN_PROVIDER',
        providerId,
        message: `Instance "${current.instance.name}" has no sidecar "${providerId}" to rotate; deployed sidecars: ${sidecars.map((sidecar) => sidecar.providerId).join(', ') || 'none'}.`,
      });
    }
    const oldEnvKeys = new Set(previous.agentEnvKeys);
    const oldFilePaths = new Set(previous.agentFilePaths);
    const next: PlannedContainerV2[] = [];
    let inserted = false;
    for (const container of containers) {
      if (container.role === 'agent') {
        const env = Object.fromEntries(Object.entries(container.env).filter(([key]) => !oldEnvKeys.has(key)));
        Object.assign(env, part.agentEnv);
        next.push({
          ...container,
          env: sortedRecord(env),
          files: [...container.files.filter((file) => !oldFilePaths.has(file.path)), ...part.agentFiles].sort(
            (a, b) => a.path.localeCompare(b.path),
          ),
        });
      } else if (container.providerId === providerId) {
        if (!inserted) next.push(...part.containers.map((item) => ({ ...item })));
        inserted = true;
      } else {
        next.push(container);
      }
    }
    if (!inserted) next.push(...part.containers.map((item) => ({ ...item })));
    containers = next;
    secrets = [
      ...secrets.filter((secret) => secret.providerId !== providerId),
      ...part.secrets.map(({ value: _value, ...rest }) => rest),
    ];
    sidecars = sidecars.map((sidecar) => (sidecar.providerId === providerId ? part.sidecar : sidecar));
  }
  const rotated = new Set(request.parts.map((part) => part.providerId));
  const rotatedContainers = new Set(
    request.parts.flatMap((part) => part.containers.map((container) => container.name)),
  );
  // Mounts: from `visibleTo`, for the agent, the rotated containers and any container that sees a rotated secret.
  containers = containers.map((container) => {
    const seesRotated =
      container.secretMounts.some((mount) =>
        current.secrets.some((secret) => secret.name === mount.secret && rotated.has(secret.providerId)),
      ) ||
      secrets.some((secret) => rotated.has(secret.providerId) && secret.visibleTo.includes(container.name));
    if (container.name !== AGENT_CONTAINER_NAME && !rotatedContainers.has(container.name) && !seesRotated) {
      return container;
    }
    return {
      ...container,
      secretMounts: secrets
        .filter((secret) => secret.visibleTo.includes(container.name))
        .map((secret) => ({ secret: secret.name, delivery: secret.delivery })),
    };
  });
  // The rotated providers' connections replace theirs; everyone else's stay.
  const replacedConnections = new Set(
    current.sidecars
      .filter((sidecar) => rotated.has(sidecar.providerId))
      .flatMap((sidecar) => sidecar.connections.map(connectionKey)),
  );
  const connections = new Map(
    [
      ...current.connections.filter((connection) => !replacedConnections.has(connectionKey(connection))),
      ...request.parts.flatMap((part) => part.sidecar.connections),
    ].map((connection) => [connectionKey(connection), connection]),
  );
  return {
    ...current,
    containers,
    secrets,
    sidecars,
    connections: [...connections.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, item]) => item),
    redactedSpec: request.redactedSpec,
  };
}

function connectionKey(connection: ConnectionV2): string {
  return `${connection.from}\u0000${connection.to}\u0000${String(connection.port).padStart(5, '0')}`;
}

/**
 * Containers a rotation replaces: the agent, the rotated providers' containers (old and new),
 * and any other container whose mounts or definition changed (it sees a rotated secret).
 */
export function affectedContainerNames(
  current: StoredPlan,
  next: StoredPlan,
  rotated: ReadonlySet<string>,
): Set<string> {
  const names = new Set<string>([AGENT_CONTAINER_NAME]);
  for (const container of [...current.containers, ...next.containers]) {
    if (rotated.has(container.providerId)) names.add(container.name);
  }
  const before = new Map(current.containers.map((container) => [container.name, JSON.stringify(container)]));
  for (const container of next.containers) {
    if (before.get(container.name) !== JSON.stringify(container)) names.add(container.name);
  }
  const rotatedSecrets = new Set(
    [...current.secrets, ...next.secrets]
      .filter((secret) => rotated.has(secret.providerId))
      .map((secret) => secret.name),
  );
  for (const container of [...current.containers, ...next.containers]) {
    if (container.secretMounts.some((mount) => rotatedSecrets.has(mount.secret))) names.add(container.name);
  }
  return names;
}
