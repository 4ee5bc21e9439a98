import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type Docker from 'dockerode';
import type { ContextEntry } from './build-context.js';
import { contentLabel, ImageBuildError, runBuild } from './build-image.js';
import { type ImageBuildProgress, imageReference, type PrebuiltImageDefinition } from './image-definition.js';
import { repositoryRoot } from './image-definitions.js';

export interface BuildPrebuiltImageOptions {
  onProgress?: (event: ImageBuildProgress) => void;
  /** Rebuild the image even when one with the same content exists (the script keeps its own cache). */
  force?: boolean;
  /** Environment of the build script; `KEYWARD_CACHE` moves its cache (default `~/.cache/keyward`). */
  environment?: NodeJS.ProcessEnv;
  /** Checkout holding the build scripts; defaults to the one this package lives in. */
  repositoryRoot?: string;
}

export interface BuildPrebuiltImageResult {
  image: string;
  built: boolean;
  contentDigest: string;
  /** The context directory the build script printed. */
  contextDirectory: string;
}

/** Runs a build script and returns the last line of its stdout; its stderr goes to progress. */
export async function runBuildScript(
  script: string,
  options: { environment?: NodeJS.ProcessEnv; onLine?: (line: string) => void } = {},
): Promise<string> {
  const child = spawn('bash', [script], {
    env: options.environment ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let pending = '';
  const recent: string[] = [];
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (pending + chunk).split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      recent.push(line);
      if (recent.length > 20) recent.shift();
      options.onLine?.(line);
    }
  });
  const exitCode = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  if (pending) recent.push(pending);
  if (exitCode !== 0) {
    throw new ImageBuildError(`${script} exited with ${exitCode}:\n${recent.join('\n')}`);
  }
  const lastLine = stdout.trim().split('\n').pop()?.trim();
  if (!lastLine) throw new ImageBuildError(`${script} printed no build context directory`);
  return lastLine;
}

/** Every file under a directory, relative paths sorted, so the digest does not depend on readdir order. */
async function listFiles(directory: string, prefix = ''): Promise<string[]> {
  const files: string[] = [];
  for (const entry of await readdir(join(directory, prefix), { withFileTypes: true })) {
    const relativePath = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) files.push(...(await listFiles(directory, relativePath)));
    else if (entry.isFile()) files.push(relativePath);
  }
  return files.sort();
}

async function hashFile(hash: ReturnType<typeof createHash>, path: string): Promise<void> {
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
}

/** Base images a Containerfile builds on (`FROM x`, skipping `scratch` and earlier stages). */
export function containerfileBaseImages(containerfile: string): string[] {
  const stages = new Set<string>();
  const bases: string[] = [];
  for (const line of containerfile.split('\n')) {
    const match = /^\s*FROM\s+(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?/i.exec(line);
    if (!match?.[1]) continue;
    const image = match[1];
    if (image !== 'scratch' && !stages.has(image.toLowerCase())) bases.push(image);
    if (match[2]) stages.add(match[2].toLowerCase());
  }
  return bases;
}

/**
 * Builds `localhost/<name>:<tag>` from a prebuilt definition: runs its build script
 * (idempotent, cached outside the checkout), digests the context directory it prints
 * (files and the ids of local base images), and builds through dockerode unless an
 * image with that digest exists.
 */
export async function buildPrebuiltImage(
  docker: Docker,
  definition: PrebuiltImageDefinition,
  options: BuildPrebuiltImageOptions = {},
): Promise<BuildPrebuiltImageResult> {
  const image = imageReference(definition);
  const { onProgress } = options;
  const script = join(options.repositoryRoot ?? repositoryRoot, definition.buildScript);
  if (!existsSync(script)) {
    // An npm install has no build scripts: these programs are compiled from Go modules and
    // PyPI by scripts that live in the keyward repository.
    throw new ImageBuildError(
      `${imageReference(definition)} is built by ${definition.buildScript} of the keyward repository, which this installation does not have (it compiles the program from Go modules or PyPI): in a keyward checkout, run \`bash scripts/setup.sh && pnpm images\` against the same runtime (DOCKER_HOST).`,
    );
  }
  onProgress?.({ type: 'preparing', image, script: definition.buildScript });
  const contextDirectory = await runBuildScript(script, {
    ...(options.environment ? { environment: options.environment } : {}),
    onLine: (line) => onProgress?.({ type: 'output', image, line }),
  });
  const files = await listFiles(contextDirectory);
  if (!files.includes('Containerfile')) {
    throw new ImageBuildError(
      `${definition.buildScript} printed ${contextDirectory}, which has no Containerfile`,
    );
  }
  const containerfile = await readFile(join(contextDirectory, 'Containerfile'), 'utf8');

  const hash = createHash('sha256');
  hash.update(`description ${definition.description}\0`);
  for (const base of containerfileBaseImages(containerfile)) {
    const baseId = await docker
      .getImage(base)
      .inspect()
      .then(
        (info) => info.Id,
        () => {
          throw new ImageBuildError(`${definition.buildScript} left no base image ${base} for ${image}`);
        },
      );
    hash.update(`base ${base} ${baseId}\0`);
  }
  for (const file of files) {
    const { mode } = await stat(join(contextDirectory, file));
    hash.update(`file ${file} ${mode & 0o7777}\0`);
    await hashFile(hash, join(contextDirectory, file));
    hash.update('\0');
  }
  const contentDigest = hash.digest('hex').slice(0, 32);

  if (!options.force) {
    const existing = await docker
      .getImage(image)
      .inspect()
      .then(
        (info) => info.Config?.Labels?.[contentLabel],
        () => undefined,
      );
    if (existing === contentDigest) {
      onProgress?.({ type: 'skipped', image, reason: 'an image with the same content exists' });
      return { image, built: false, contentDigest, contextDirectory };
    }
  }

  const started = Date.now();
  // No base comes from a registry: `FROM scratch` or a local image the build script made.
  const from = containerfileBaseImages(containerfile)[0] ?? 'scratch';
  onProgress?.({ type: 'building', image, base: 'scratch', from });
  const entries: ContextEntry[] = files.map((file) =>
    file === 'Containerfile'
      ? {
          type: 'file',
          name: 'Dockerfile',
          content: `${containerfile.trimEnd()}\nLABEL ${contentLabel}="${contentDigest}" org.opencontainers.image.description=${JSON.stringify(definition.description)}\n`,
        }
      : { type: 'host-file', name: file, source: join(contextDirectory, file) },
  );
  await runBuild(docker, image, entries, onProgress);
  onProgress?.({ type: 'built', image, milliseconds: Date.now() - started });
  return { image, built: true, contentDigest, contextDirectory };
}
