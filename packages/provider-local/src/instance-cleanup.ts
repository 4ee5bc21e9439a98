// Taking things away: what one apply or rotation created (rollback), and everything an instance owns (delete).
import { labelKeys, type OperationOptionsV2 } from '@keyward/core';
import type Docker from 'dockerode';
import { helperComponent, instanceFilter, localLabelKeys } from './instance-record.js';
import { instanceNotFound } from './instance-state.js';
import type { OperationContext } from './operation-context.js';
import { createEmitter, runStep } from './progress-steps.js';
import { isNotFound, matchesAllLabels } from './runtime-differences.js';
import { agentNetworkComponent } from './runtime-names.js';

/** Everything created during one apply or rotation, so a failure can take it back. */
export interface CreatedResources {
  containers: string[];
  volumes: string[];
  networks: string[];
}

export function noCreatedResources(): CreatedResources {
  return { containers: [], volumes: [], networks: [] };
}

/** Removes what was created, newest first; best effort, the label sweep catches the rest. */
export async function removeCreatedResources(docker: Docker, created: CreatedResources): Promise<void> {
  for (const name of [...created.containers].reverse()) {
    await docker
      .getContainer(name)
      .remove({ force: true, v: true })
      .catch(() => undefined);
  }
  for (const name of [...created.volumes].reverse()) {
    await docker
      .getVolume(name)
      .remove()
      .catch(() => undefined);
  }
  for (const name of [...created.networks].reverse()) {
    await docker
      .getNetwork(name)
      .remove()
      .catch(() => undefined);
  }
}

/** Removes every labelled object of an instance: containers, networks, then volumes. */
export async function sweepInstance(
  { providerId, runtime: { docker } }: OperationContext,
  name: string,
  removeVolumes: boolean,
): Promise<number> {
  const filters = instanceFilter(name, providerId);
  let removed = 0;
  const containers = (await docker.listContainers({ all: true, filters })).filter((summary) =>
    matchesAllLabels(summary.Labels, filters),
  );
  // Containers that join a helper's namespace go first, then the helpers.
  const rank = (summary: Docker.ContainerInfo) =>
    summary.Labels[labelKeys.component] === helperComponent
      ? 2
      : summary.Labels[labelKeys.component] === agentNetworkComponent
        ? 1
        : 0;
  const ordered = [...containers].sort((a, b) => rank(a) - rank(b));
  for (const summary of ordered) {
    await docker
      .getContainer(summary.Id)
      .remove({ force: true, v: true })
      .catch((error) => {
        if (!isNotFound(error)) throw error;
      });
    removed += 1;
  }
  const networks = (await docker.listNetworks({ filters })).filter((network) =>
    matchesAllLabels(network.Labels, filters),
  );
  for (const network of networks) {
    const handle = docker.getNetwork(network.Id ?? network.Name);
    // A container that is not the instance's may still be attached (a test upstream, a
    // debugging container): disconnected first, or the network goes while the runtime still
    // holds its port forwards for that container, and they outlive it.
    const attached = await handle.inspect().then(
      (info: { Containers?: Record<string, unknown> | null }) => Object.keys(info.Containers ?? {}),
      () => [] as string[],
    );
    for (const container of attached) {
      await handle.disconnect({ Container: container, Force: true }).catch(() => undefined);
    }
    await handle.remove().catch((error) => {
      if (!isNotFound(error)) throw error;
    });
    removed += 1;
  }
  const { Volumes: volumes } = await docker.listVolumes({ filters });
  for (const volume of (volumes ?? []).filter((candidate) => matchesAllLabels(candidate.Labels, filters))) {
    // Only state volumes outlive the instance; file volumes hold secrets, socket volumes nothing worth keeping.
    const kind = volume.Labels?.[localLabelKeys.volumeKind];
    if (!removeVolumes && (kind === 'state' || kind === 'data')) continue;
    await docker
      .getVolume(volume.Name)
      .remove()
      .catch((error) => {
        if (!isNotFound(error)) throw error;
      });
    removed += 1;
  }
  return removed;
}

export async function deleteInstance(
  context: OperationContext,
  name: string,
  options: OperationOptionsV2 & { removeVolumes?: boolean },
): Promise<void> {
  const emit = createEmitter(context.settings, options.onProgress);
  const removed = await runStep(
    emit,
    'delete',
    `Removing every object labelled with instance "${name}"`,
    () => sweepInstance(context, name, options.removeVolumes ?? false),
  );
  if (removed === 0) throw instanceNotFound(context.providerId, name);
}
