import { posix } from 'node:path';
import { AGENT_CONTAINER_NAME, objectLabels, type PlannedContainerV2 } from '@keyward/core';
import tar from 'tar-stream';
import { localLabelKeys, type StoredPlan } from './instance-record.js';
import { filesVolumeName } from './runtime-names.js';

export interface VolumeFile {
  name: string;
  content: string;
  mode: number;
  /** Secret files name the secret; they are read back for rotations. */
  secret?: string;
}

/** One volume per directory a container receives files in; mounted read-only. */
export interface PlannedVolume {
  volumeName: string;
  directory: string;
  files: VolumeFile[];
  labels: Record<string, string>;
}

/**
 * Secret files and config files of one container, grouped by directory. Each
 * volume is mounted only into this container, so a secret file exists only in the
 * containers whose `secretMounts` name it.
 */
export function plannedVolumes(
  plan: StoredPlan,
  container: PlannedContainerV2,
  secretValues: ReadonlyMap<string, string>,
  generation: string,
): PlannedVolume[] {
  const byDirectory = new Map<string, VolumeFile[]>();
  const add = (path: string, file: Omit<VolumeFile, 'name'>) => {
    const directory = posix.dirname(path);
    const files = byDirectory.get(directory) ?? [];
    files.push({ ...file, name: posix.basename(path) });
    byDirectory.set(directory, files);
  };
  for (const mount of container.secretMounts) {
    if (mount.delivery.type !== 'file') continue;
    const value = secretValues.get(mount.secret);
    if (value === undefined) throw new Error(`no value for secret "${mount.secret}"`);
    add(mount.delivery.path, { content: value, mode: mount.delivery.mode ?? 0o400, secret: mount.secret });
  }
  for (const file of container.files) add(file.path, { content: file.content, mode: file.mode });
  return [...byDirectory.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([directory, files], index) => ({
      volumeName: filesVolumeName(plan.instance.name, container.name, generation, index),
      directory,
      files,
      labels: {
        ...objectLabels(
          plan.instance.name,
          plan.instance.target,
          container.role === 'agent' ? AGENT_CONTAINER_NAME : container.providerId,
          container.name,
        ),
        [localLabelKeys.generation]: generation,
        [localLabelKeys.volumeKind]: 'files',
      },
    }));
}

/** A tar of the volume's files, owned by the container's user so mode 0400 files stay readable to it. */
export function packVolumeFiles(files: readonly VolumeFile[], owner: { uid: number; gid: number }): tar.Pack {
  const pack = tar.pack();
  for (const file of files) {
    pack.entry({ name: file.name, mode: file.mode, uid: owner.uid, gid: owner.gid }, file.content);
  }
  pack.finalize();
  return pack;
}

/** Reads every regular file of a tar archive (from `getArchive`). */
export async function readArchive(stream: NodeJS.ReadableStream): Promise<Map<string, string>> {
  const extract = tar.extract();
  const files = new Map<string, string>();
  extract.on('entry', (header, entry, next) => {
    const chunks: Buffer[] = [];
    entry.on('data', (chunk: unknown) => {
      chunks.push(chunk as Buffer);
    });
    entry.on('end', () => {
      if (header.type === 'file') files.set(header.name, Buffer.concat(chunks).toString('utf8'));
      next();
    });
    entry.resume();
  });
  await new Promise<void>((resolve, reject) => {
    extract.on('finish', resolve);
    extract.on('error', reject);
    stream.on('error', reject);
    stream.pipe(extract);
  });
  return files;
}
