import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import type Docker from 'dockerode';
import * as esbuild from 'esbuild';
import { type ContextEntry, packContext } from './build-context.js';
import {
  type ImageBase,
  type ImageBuildProgress,
  type ImageDefinition,
  imageReference,
} from './image-definition.js';
import { collectNodeRuntime } from './node-runtime.js';

export interface BuildImageOptions {
  onProgress?: (event: ImageBuildProgress) => void;
  /** Rebuild even when an image with the same content already exists. */
  force?: boolean;
  /** `scratch` (default): no registry needed. `registry`: `FROM node:20-slim`. */
  base?: ImageBase;
  /** Base image for `registry` builds. */
  registryBaseImage?: string;
}

export interface BuildImageResult {
  image: string;
  built: boolean;
  contentDigest: string;
}

/** Label holding a digest of everything that went into the image, so an up-to-date image is skipped. */
export const contentLabel = 'keyward.dev/image-content';

const runtimeImageName = 'keyward-node-runtime';

export class ImageBuildError extends Error {
  override name = 'ImageBuildError';
}

/**
 * Bundles the program into one ESM file that runs on plain node with no node_modules. A
 * TypeScript entry is a checkout's source: its workspace imports resolve to sources too
 * (`dev-source`); a JavaScript entry is a published package's `dist`, whose dependencies
 * resolve to what npm installed.
 */
export async function bundleProgram(entry: string): Promise<string> {
  const result = await esbuild.build({
    entryPoints: [entry],
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    conditions: entry.endsWith('.ts') ? ['dev-source'] : [],
    write: false,
    minify: false,
    legalComments: 'none',
    logLevel: 'silent',
    // Bundled CommonJS dependencies may call require() for node built-ins.
    banner: {
      js: "import { createRequire as __keywardCreateRequire } from 'node:module';\nconst require = __keywardCreateRequire(import.meta.url);",
    },
  });
  const output = result.outputFiles[0];
  if (!output) throw new ImageBuildError(`esbuild produced no output for ${entry}`);
  return output.text;
}

function digest(...parts: (string | Buffer)[]): string {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part).update('\0');
  return hash.digest('hex').slice(0, 32);
}

async function existingContentDigest(docker: Docker, image: string): Promise<string | undefined | null> {
  try {
    const info = await docker.getImage(image).inspect();
    return info.Config?.Labels?.[contentLabel] ?? undefined;
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode === 404) return null;
    throw error;
  }
}

export async function runBuild(
  docker: Docker,
  image: string,
  entries: ContextEntry[],
  onProgress: ((event: ImageBuildProgress) => void) | undefined,
): Promise<void> {
  const stream: NodeJS.ReadableStream = await docker.buildImage(
    packContext(entries) as unknown as NodeJS.ReadableStream,
    {
      t: image,
      forcerm: true,
      rm: true,
    },
  );
  await new Promise<void>((resolve, reject) => {
    docker.modem.followProgress(
      stream,
      (error: Error | null, output: { error?: string; errorDetail?: { message?: string } }[]) => {
        const failure = error?.message ?? output?.find((line) => line.error)?.error;
        if (failure) reject(new ImageBuildError(`Building ${image} failed: ${failure}`));
        else resolve();
      },
      (event: { stream?: string }) => {
        const line = event.stream?.trim();
        if (line) onProgress?.({ type: 'output', image, line });
      },
    );
  });
}

/** `localhost/keyward-node-runtime:<node version>`: the host's node + its libraries, built once. */
export async function ensureNodeRuntimeImage(
  docker: Docker,
  options: BuildImageOptions = {},
): Promise<string> {
  const runtime = await collectNodeRuntime();
  const binaryInfo = await stat(runtime.nodeBinary);
  const contentDigest = digest(runtime.nodeVersion, String(binaryInfo.size), ...runtime.libraries);
  const image = imageReference({ name: runtimeImageName, tag: runtime.nodeVersion.replace(/^v/, '') });
  if (!options.force && (await existingContentDigest(docker, image)) === contentDigest) return image;
  const started = Date.now();
  options.onProgress?.({ type: 'building', image, base: 'scratch' });
  const dockerfile = [
    'FROM scratch',
    'COPY rootfs/ /',
    'ENV PATH=/usr/local/bin:/usr/bin:/bin',
    `LABEL ${contentLabel}="${contentDigest}"`,
    '',
  ].join('\n');
  const entries: ContextEntry[] = [
    { type: 'file', name: 'Dockerfile', content: dockerfile },
    { type: 'directory', name: 'rootfs/tmp', mode: 0o1777 },
    { type: 'directory', name: 'rootfs/app' },
    { type: 'host-file', name: 'rootfs/usr/bin/node', source: runtime.nodeBinary, mode: 0o755 },
    ...runtime.libraries.map(
      (library): ContextEntry => ({ type: 'host-file', name: `rootfs${library}`, source: library }),
    ),
  ];
  await runBuild(docker, image, entries, options.onProgress);
  options.onProgress?.({ type: 'built', image, milliseconds: Date.now() - started });
  return image;
}

/** The Dockerfile of one definition on a given base image. */
export function renderDockerfile(
  definition: ImageDefinition,
  baseImage: string,
  contentDigest: string,
): string {
  const command = JSON.stringify(['node', '/app/main.mjs', ...definition.args]);
  return [
    `FROM ${baseImage}`,
    'COPY main.mjs /app/main.mjs',
    ...Object.entries(definition.env).map(([key, value]) => `ENV ${key}=${JSON.stringify(value)}`),
    ...definition.exposedPorts.map((port) => `EXPOSE ${port}`),
    `LABEL ${contentLabel}="${contentDigest}" org.opencontainers.image.description=${JSON.stringify(definition.description)}`,
    `USER ${definition.user}`,
    `CMD ${command}`,
    '',
  ].join('\n');
}

/**
 * Builds `localhost/<name>:<tag>` from a definition. Skips the build when an image
 * with the same content digest exists, unless `force`.
 */
export async function buildImage(
  docker: Docker,
  definition: ImageDefinition,
  options: BuildImageOptions = {},
): Promise<BuildImageResult> {
  const image = imageReference(definition);
  const base = options.base ?? 'scratch';
  const { onProgress } = options;
  onProgress?.({ type: 'bundling', image });
  const bundle = await bundleProgram(definition.entry);
  const baseImage =
    base === 'scratch'
      ? await ensureNodeRuntimeImage(docker, { onProgress, force: options.force })
      : (options.registryBaseImage ?? 'node:20-slim');
  const contentDigest = digest(bundle, baseImage, renderDockerfile(definition, baseImage, ''));
  if (!options.force && (await existingContentDigest(docker, image)) === contentDigest) {
    onProgress?.({ type: 'skipped', image, reason: 'an image with the same content exists' });
    return { image, built: false, contentDigest };
  }
  const started = Date.now();
  onProgress?.({ type: 'building', image, base });
  await runBuild(
    docker,
    image,
    [
      { type: 'file', name: 'Dockerfile', content: renderDockerfile(definition, baseImage, contentDigest) },
      { type: 'file', name: 'main.mjs', content: bundle },
    ],
    onProgress,
  );
  onProgress?.({ type: 'built', image, milliseconds: Date.now() - started });
  return { image, built: true, contentDigest };
}
