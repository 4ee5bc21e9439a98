// Bringing up containers, shared by apply and rotation: images, the network helper, and
// for each planned container its volumes, files, start and readiness.
import { labelKeys, objectLabels, type PlannedContainerV2 } from '@keyward/core';
import type Docker from 'dockerode';
import { lastLogLines } from './container-logs.js';
import {
  agentNetworkCreateOptions,
  containerCreateOptions,
  helperCreateOptions,
} from './container-options.js';
import type { CreatedResources } from './instance-cleanup.js';
import {
  encodeRecord,
  helperComponent,
  helperLabels,
  type InstanceRecord,
  localLabelKeys,
  type StoredPlan,
} from './instance-record.js';
import type { OperationContext } from './operation-context.js';
import { type Emit, runStep, StepError } from './progress-steps.js';
import { readinessProbe, waitUntilReady } from './readiness.js';
import {
  isNotFound,
  networkAttachStrategy,
  splitNetworks,
  volumeOwnershipStrategy,
  volumeWriteStrategy,
} from './runtime-differences.js';
import {
  agentNetworkComponent,
  containerRuntimeName,
  socketVolumeName,
  stateVolumeName,
} from './runtime-names.js';
import { type PlannedVolume, packVolumeFiles, plannedVolumes } from './volume-files.js';

export type ImageInspections = Map<string, Docker.ImageInspectInfo>;

/** Inspects each image, pulling what is missing; locally built (`localhost/`) images cannot be pulled. */
export async function checkImages(
  { runtime: { docker } }: OperationContext,
  emit: Emit,
  images: string[],
): Promise<ImageInspections> {
  const found: ImageInspections = new Map();
  for (const image of images) {
    await runStep(emit, `image.check:${image}`, `Checking image ${image}`, async () => {
      try {
        found.set(image, await docker.getImage(image).inspect());
        return;
      } catch (error) {
        if (!isNotFound(error)) throw error;
      }
      if (image.startsWith('localhost/')) {
        throw new Error(
          `image ${image} is not present and cannot be pulled (it is built locally); build it with \`keyward images build\` (\`pnpm images\` in a checkout) or set another image`,
        );
      }
      const stream = await docker.pull(image);
      await new Promise<void>((resolve, reject) =>
        docker.modem.followProgress(stream, (problem: Error | null) =>
          problem ? reject(problem) : resolve(),
        ),
      );
      found.set(image, await docker.getImage(image).inspect());
    });
  }
  return found;
}

/**
 * Creates and starts the network helper, which publishes the agent port (and holds the
 * namespace in open mode); in proxy-only also the socket volume and the agent-network helper,
 * which holds the agent's loopback-only namespace.
 */
export async function createNetworkHelper(
  context: OperationContext,
  emit: Emit,
  stored: StoredPlan,
  digest: string,
  generation: string,
  created: CreatedResources,
  images: ImageInspections,
): Promise<void> {
  const { docker } = context.runtime;
  const extraLabels = { [localLabelKeys.planDigest]: digest, [localLabelKeys.generation]: generation };
  if (stored.networkMode === 'proxy-only') {
    const volume = socketVolumeName(stored.instance.name);
    const labels = { ...helperLabels(stored), [localLabelKeys.volumeKind]: 'sockets' };
    await runStep(
      emit,
      'volume.create:sockets',
      `Creating volume ${volume} (the helpers' unix sockets)`,
      async () => {
        await docker.createVolume({ Name: volume, Labels: labels });
        created.volumes.push(volume);
        // Both helpers run as the helper image's user and create their sockets in it.
        await makeVolumeWritable(
          context,
          volume,
          imageUser(images.get(context.helperImage)),
          labels,
          created,
        );
      },
    );
  }
  const options = helperCreateOptions({
    plan: stored,
    image: context.helperImage,
    kind: context.runtime.kind,
    labels: helperLabels(stored),
    extraLabels,
  });
  await runStep(
    emit,
    `container.create:${helperComponent}`,
    'Creating the network helper (publishes the agent port)',
    async () => {
      await createContainer(context, options);
      created.containers.push(options.name as string);
    },
  );
  await runStep(emit, `container.start:${helperComponent}`, 'Starting the network helper', async () => {
    await docker.getContainer(options.name as string).start();
  });
  if (stored.networkMode !== 'proxy-only') return;
  const holder = agentNetworkCreateOptions({
    plan: stored,
    image: context.helperImage,
    kind: context.runtime.kind,
    labels: helperLabels(stored, agentNetworkComponent),
    extraLabels,
  });
  await runStep(
    emit,
    `container.create:${agentNetworkComponent}`,
    "Creating the agent's network (loopback only; relays the allowed connections)",
    async () => {
      await docker.createContainer(holder);
      created.containers.push(holder.name as string);
    },
  );
  await runStep(
    emit,
    `container.start:${agentNetworkComponent}`,
    "Starting the agent's network",
    async () => {
      await docker.getContainer(holder.name as string).start();
    },
  );
}

export interface ContainerDeployment {
  stored: StoredPlan;
  container: PlannedContainerV2;
  secretValues: ReadonlyMap<string, string>;
  digest: string;
  generation: string;
  images: ImageInspections;
  created: CreatedResources;
  /** Given for the agent, which carries the instance record. */
  record?: InstanceRecord;
  /** `false`: create and fill only, so a stopped instance stays stopped. Default `true`. */
  start?: boolean;
}

/** What one container is made of besides its plan: its file volumes, state volumes and secret env. Pure. */
export function containerMaterials(
  stored: StoredPlan,
  container: PlannedContainerV2,
  secretValues: ReadonlyMap<string, string>,
  generation: string,
): {
  volumes: PlannedVolume[];
  stateVolumes: { volumeName: string; directory: string; labels: Record<string, string> }[];
  secretEnv: Record<string, string>;
} {
  const volumes = plannedVolumes(stored, container, secretValues, generation);
  const stateVolumes = container.volumes.map((volume) => ({
    volumeName: stateVolumeName(stored.instance.name, volume.name),
    directory: volume.path,
    labels: {
      ...objectLabels(stored.instance.name, stored.instance.target, container.providerId, container.name),
      [localLabelKeys.volumeKind]: 'state',
    },
  }));
  const secretEnv: Record<string, string> = {};
  for (const mount of container.secretMounts) {
    if (mount.delivery.type !== 'env') continue;
    const value = secretValues.get(mount.secret);
    if (value === undefined)
      throw new StepError(`secrets:${container.name}`, new Error(`no value for ${mount.secret}`));
    secretEnv[mount.delivery.variable] = value;
  }
  return { volumes, stateVolumes, secretEnv };
}

/** Volumes, container, files, start and readiness of one planned container. */
export async function deployContainer(
  context: OperationContext,
  emit: Emit,
  input: ContainerDeployment,
): Promise<void> {
  const { docker } = context.runtime;
  const { stored, container, secretValues, created } = input;
  const { volumes, stateVolumes, secretEnv } = containerMaterials(
    stored,
    container,
    secretValues,
    input.generation,
  );
  for (const volume of volumes) {
    await runStep(
      emit,
      `volume.create:${container.name}`,
      `Creating volume ${volume.volumeName} for ${volume.directory}`,
      async () => {
        await docker.createVolume({ Name: volume.volumeName, Labels: volume.labels });
        created.volumes.push(volume.volumeName);
      },
    );
  }
  for (const volume of stateVolumes) {
    await runStep(
      emit,
      `volume.ensure:${container.name}`,
      `Ensuring state volume ${volume.volumeName} for ${volume.directory}`,
      async () => {
        try {
          const existing = await docker.getVolume(volume.volumeName).inspect();
          if (existing.Labels?.[labelKeys.instance] !== stored.instance.name) {
            throw new Error(
              `volume ${volume.volumeName} exists but does not belong to instance "${stored.instance.name}"; remove or rename it`,
            );
          }
        } catch (error) {
          if (!isNotFound(error)) throw error;
          await docker.createVolume({ Name: volume.volumeName, Labels: volume.labels });
          created.volumes.push(volume.volumeName);
          // Only a volume made now: a kept one holds the agent's state as it left it.
          await makeVolumeWritable(
            context,
            volume.volumeName,
            fileOwner(container, input.images.get(container.image)),
            volume.labels,
            created,
          );
        }
      },
    );
  }
  const options = containerCreateOptions({
    plan: stored,
    container,
    volumes,
    stateVolumes,
    secretEnv,
    kind: context.runtime.kind,
    extraLabels: {
      [localLabelKeys.planDigest]: input.digest,
      [localLabelKeys.generation]: input.generation,
      [localLabelKeys.role]: container.role,
      ...(input.record ? { [localLabelKeys.record]: encodeRecord({ ...input.record, plan: stored }) } : {}),
    },
  });
  const runtimeName = containerRuntimeName(stored.instance.name, container.name);
  await runStep(emit, `container.create:${container.name}`, `Creating container ${runtimeName}`, async () => {
    await createContainer(context, options);
    created.containers.push(runtimeName);
  });
  if (volumes.length > 0) {
    const owner = fileOwner(container, input.images.get(container.image));
    await runStep(
      emit,
      `files.write:${container.name}`,
      `Writing ${volumes.reduce((count, volume) => count + volume.files.length, 0)} file(s) for ${container.name}`,
      async () => {
        for (const volume of volumes) await writeVolume(context, runtimeName, volume, owner, created);
      },
    );
  }
  if (input.start === false) return;
  await runStep(emit, `container.start:${container.name}`, `Starting ${runtimeName}`, async () => {
    await docker.getContainer(runtimeName).start();
  });
  const probe = readinessProbe(stored, container);
  if (probe) {
    await runStep(emit, `container.ready:${container.name}`, `Waiting until ${container.name} is ready`, () =>
      waitUntilReady(context, stored, container, probe),
    );
  }
}

/** Creates a container and joins its networks the way the runtime supports. */
async function createContainer(
  { runtime, settings }: OperationContext,
  options: Docker.ContainerCreateOptions,
): Promise<void> {
  const strategy = settings.networkAttachStrategy ?? networkAttachStrategy(runtime.kind);
  if (strategy === 'at-create') {
    await runtime.docker.createContainer(options);
    return;
  }
  const { create, connect } = splitNetworks(options);
  await runtime.docker.createContainer(create);
  for (const { network, endpoint } of connect) {
    await runtime.docker.getNetwork(network).connect({ Container: create.name, EndpointConfig: endpoint });
  }
}

/** An image's numeric user (`uid` or `uid:gid`); root when it names none or a user by name. */
function imageUser(image: Docker.ImageInspectInfo | undefined): { uid: number; gid: number } {
  const [userPart, groupPart] = (image?.Config?.User ?? '').split(':');
  const uid = /^\d+$/.test(userPart ?? '') ? Number(userPart) : 0;
  return { uid, gid: /^\d+$/.test(groupPart ?? '') ? Number(groupPart) : uid };
}

/** Who owns the files written for a container: its configured user, else the image's numeric user. */
function fileOwner(
  container: PlannedContainerV2,
  image: Docker.ImageInspectInfo | undefined,
): { uid: number; gid: number } {
  const fromImage = imageUser(image);
  const uid = container.security?.runAsUser ?? fromImage.uid;
  return {
    uid,
    gid:
      container.security?.runAsGroup ?? (container.security?.runAsUser !== undefined ? uid : fromImage.gid),
  };
}

/**
 * Gives a new volume's root to the user of the containers that will write to it, the way podman
 * does by itself (see `volumeOwnershipStrategy`): a container of the helper image, as root with
 * only CAP_CHOWN, no network and a read-only root filesystem, chowns it and exits.
 */
async function makeVolumeWritable(
  { runtime, settings, helperImage }: OperationContext,
  volumeName: string,
  owner: { uid: number; gid: number },
  labels: Record<string, string>,
  created: CreatedResources,
): Promise<void> {
  const strategy = settings.volumeOwnershipStrategy ?? volumeOwnershipStrategy(runtime.kind);
  if (strategy === 'runtime' || (owner.uid === 0 && owner.gid === 0)) return;
  const { docker } = runtime;
  const ownerName = `${volumeName}-owner`;
  await docker.createContainer({
    name: ownerName,
    Image: helperImage,
    Labels: { ...labels, [localLabelKeys.role]: 'volume-owner' },
    User: '0:0',
    Entrypoint: ['node'],
    Cmd: [
      '-e',
      "require('node:fs').chownSync('/keyward-volume', Number(process.argv[1]), Number(process.argv[2]))",
      String(owner.uid),
      String(owner.gid),
    ],
    HostConfig: {
      Binds: [`${volumeName}:/keyward-volume`],
      NetworkMode: 'none',
      CapDrop: ['ALL'],
      CapAdd: ['CHOWN'],
      SecurityOpt: ['no-new-privileges'],
      ReadonlyRootfs: true,
    },
    NetworkDisabled: true,
  });
  created.containers.push(ownerName);
  try {
    const container = docker.getContainer(ownerName);
    await container.start();
    const { StatusCode } = (await container.wait()) as { StatusCode: number };
    if (StatusCode !== 0) {
      throw new Error(
        `could not give volume ${volumeName} to uid ${owner.uid}:${owner.gid} (exit ${StatusCode}): ${await lastLogLines(docker, ownerName, 5)}`,
      );
    }
  } finally {
    await docker.getContainer(ownerName).remove({ force: true });
    created.containers.splice(created.containers.indexOf(ownerName), 1);
  }
}

async function writeVolume(
  { runtime, settings, helperImage }: OperationContext,
  runtimeName: string,
  volume: PlannedVolume,
  owner: { uid: number; gid: number },
  created: CreatedResources,
): Promise<void> {
  const { docker } = runtime;
  const strategy = settings.volumeWriteStrategy ?? volumeWriteStrategy(runtime.kind);
  if (strategy === 'archive-into-consumer') {
    await docker
      .getContainer(runtimeName)
      .putArchive(packVolumeFiles(volume.files, owner) as unknown as NodeJS.ReadableStream, {
        path: volume.directory,
      });
    return;
  }
  // A never-started container that mounts the volume read-write, only to receive the archive.
  const writerName = `${volume.volumeName}-writer`;
  await docker.createContainer({
    name: writerName,
    Image: helperImage,
    Labels: { ...volume.labels, [localLabelKeys.role]: 'volume-writer' },
    HostConfig: { Binds: [`${volume.volumeName}:/keyward-volume`], NetworkMode: 'none' },
    NetworkDisabled: true,
  });
  created.containers.push(writerName);
  try {
    await docker
      .getContainer(writerName)
      .putArchive(packVolumeFiles(volume.files, owner) as unknown as NodeJS.ReadableStream, {
        path: '/keyward-volume',
      });
  } finally {
    await docker.getContainer(writerName).remove({ force: true });
    created.containers.splice(created.containers.indexOf(writerName), 1);
  }
}
