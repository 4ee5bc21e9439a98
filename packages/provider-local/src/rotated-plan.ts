import {
  AGENT_CONTAINER_NAME,
  KeywardError,
  type PlannedContainerV1,
  type SidecarRotationRequestV1,
} from '@keyward/core';
import type { StoredPlan } from './instance-record.js';

/**
 * The plan after one sidecar's rotation: that sidecar's containers, secrets, agent
 * env and agent files are replaced; everything else (image, port, env, other
 * sidecars) is kept exactly as stored.
 */
export function rotatedPlan(current: StoredPlan, request: SidecarRotationRequestV1): StoredPlan {
  const providerId = request.providerId;
  const previous = current.sidecars.find((sidecar) => sidecar.providerId === providerId);
  if (!previous) {
    throw new KeywardError({
      code: 'INVALID_INPUT',
      providerId,
      message: `Instance "${current.instance.name}" has no sidecar "${providerId}" to rotate; deployed sidecars: ${current.sidecars.map((sidecar) => sidecar.providerId).join(', ') || 'none'}.`,
    });
  }
  const oldSecretNames = new Set(previous.secretNames);
  const oldEnvKeys = new Set(previous.agentEnvKeys);
  const oldFilePaths = new Set(previous.agentFilePaths);
  const agentSecretMounts = request.secrets
    .filter((secret) => secret.visibleTo.includes(AGENT_CONTAINER_NAME))
    .map((secret) => ({ secret: secret.name, delivery: secret.delivery }));

  const containers: PlannedContainerV1[] = [];
  let inserted = false;
  for (const container of current.containers) {
    if (container.role === 'agent') {
      const env = Object.fromEntries(Object.entries(container.env).filter(([key]) => !oldEnvKeys.has(key)));
      Object.assign(env, request.agentEnv);
      containers.push({
        ...container,
        env: Object.fromEntries(Object.entries(env).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
        files: [
          ...container.files.filter((file) => !oldFilePaths.has(file.path)),
          ...request.agentFiles,
        ].sort((a, b) => a.path.localeCompare(b.path)),
        secretMounts: [
          ...container.secretMounts.filter((mount) => !oldSecretNames.has(mount.secret)),
          ...agentSecretMounts,
        ],
      });
    } else if (container.providerId === providerId) {
      if (!inserted) containers.push(...request.containers);
      inserted = true;
    } else {
      containers.push(container);
    }
  }
  if (!inserted) containers.push(...request.containers);

  return {
    ...current,
    containers,
    secrets: [
      ...current.secrets.filter((secret) => secret.providerId !== providerId),
      ...request.secrets.map(({ value: _value, ...rest }) => rest),
    ],
    sidecars: current.sidecars.map((sidecar) =>
      sidecar.providerId === providerId ? request.sidecar : sidecar,
    ),
    redactedSpec: request.redactedSpec,
  };
}
