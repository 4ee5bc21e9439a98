// `keyward images build|ls`: the local, registry-less images keyward runs (the tokenizer, the
// network helper, the demo's stand-ins), built from what the installed packages hold, so an npm
// install needs no checkout. The prebuilt images (collector, LiteLLM) need the repository's scripts.
import type { ImageBuildProgress } from '@keyward/images';
import { detectRuntime } from '@keyward/provider-local';
import type { Command } from 'commander';
import type Docker from 'dockerode';
import { runtimeInstructions } from '../../demo/demo-runtime.js';
import type { CliContext } from '../cli-context.js';
import { CliError, exitCodes } from '../exit-codes.js';

async function loadImagesPackage(): Promise<typeof import('@keyward/images')> {
  try {
    return await import('@keyward/images');
  } catch (error) {
    throw new CliError(
      exitCodes.unexpected,
      'IMAGE_BUILD_FAILED',
      `@keyward/images could not be loaded (${(error as Error).message}); reinstall keyward: npm install -g @keyward/api`,
    );
  }
}

async function runtimeClient(context: CliContext): Promise<Docker> {
  const detected = await detectRuntime({ context: { env: context.io.environment } });
  if (!detected.docker) {
    throw new CliError(
      exitCodes.runtimeFailure,
      'RUNTIME_UNAVAILABLE',
      `No container runtime answers (${detected.tried.join('; ')}).\n${runtimeInstructions()}`,
    );
  }
  return detected.docker;
}

export function registerImageCommands(program: Command, context: CliContext): void {
  const images = program
    .command('images')
    .description('Build and list the local images keyward runs (no registry needed)');

  images
    .command('build [names...]')
    .description(
      'Build images into the container runtime; default: the node images (tokenizer, agentStandIn, demoUpstream, networkHelper). Up-to-date images are skipped.',
    )
    .option('--force', 'rebuild even when an image with the same content exists')
    .option('--registry', 'base the node images on node:20-slim (needs a registry) instead of FROM scratch')
    .option('--verbose', 'print the build output')
    .action(
      async (
        names: string[],
        options: { force?: boolean; registry?: boolean; verbose?: boolean },
        command: Command,
      ) => {
        const { buildImage, buildPrebuiltImage, imageDefinitions, prebuiltImageDefinitions } =
          await loadImagesPackage();
        const known = [...Object.keys(imageDefinitions), ...Object.keys(prebuiltImageDefinitions)];
        const unknown = names.filter((name) => !known.includes(name));
        if (unknown.length > 0) {
          throw new CliError(
            exitCodes.badInput,
            'INVALID_INPUT',
            `Unknown image ${unknown.join(', ')}; known: ${known.join(', ')}.`,
          );
        }
        const json = context.options(command).json;
        const docker = await runtimeClient(context);
        const report = (event: ImageBuildProgress) => {
          if (json) return;
          if (event.type === 'output') {
            if (options.verbose) context.io.stderr.write(`          ${event.line}\n`);
            return;
          }
          const detail =
            event.type === 'built'
              ? `in ${(event.milliseconds / 1000).toFixed(1)} s`
              : event.type === 'skipped'
                ? `(${event.reason})`
                : event.type === 'building'
                  ? `(base: ${event.from ?? event.base})`
                  : '';
          context.io.stderr.write(`${`${event.type.padEnd(9)} ${event.image} ${detail}`.trimEnd()}\n`);
        };
        const results: { name: string; image?: string; built?: boolean; error?: string }[] = [];
        const wanted = (name: string) => names.length === 0 || names.includes(name);
        for (const [name, definition] of Object.entries(imageDefinitions)) {
          if (!wanted(name)) continue;
          try {
            const outcome = await buildImage(docker, definition, {
              onProgress: report,
              ...(options.force ? { force: true } : {}),
              base: options.registry ? 'registry' : 'scratch',
            });
            results.push({ name, image: outcome.image, built: outcome.built });
          } catch (error) {
            results.push({ name, error: (error as Error).message });
          }
        }
        // Prebuilt images take minutes to hours cold: only when named.
        for (const [name, definition] of Object.entries(prebuiltImageDefinitions)) {
          if (!names.includes(name)) continue;
          try {
            const outcome = await buildPrebuiltImage(docker, definition, {
              onProgress: report,
              ...(options.force ? { force: true } : {}),
            });
            results.push({ name, image: outcome.image, built: outcome.built });
          } catch (error) {
            results.push({ name, error: (error as Error).message });
          }
        }
        if (json) context.printJson({ images: results });
        else
          for (const result of results)
            context.print(
              result.error
                ? `✖ ${result.name}: ${result.error}`
                : `✔ ${result.image} ${result.built ? 'built' : 'up to date'}`,
            );
        const failed = results.filter((result) => result.error);
        if (failed.length > 0) {
          throw new CliError(
            exitCodes.runtimeFailure,
            'IMAGE_BUILD_FAILED',
            `Building ${failed.map((result) => result.name).join(', ')} failed${options.verbose ? '' : '; run again with --verbose for the build output'}.`,
          );
        }
      },
    );

  images
    .command('ls')
    .description('The images keyward knows, and whether the runtime has them')
    .action(async (_options: unknown, command: Command) => {
      const { imageDefinitions, prebuiltImageDefinitions, imageReference } = await loadImagesPackage();
      const docker = await runtimeClient(context);
      const rows: { name: string; image: string; present: boolean; prebuilt: boolean }[] = [];
      for (const [name, definition] of [
        ...Object.entries(imageDefinitions),
        ...Object.entries(prebuiltImageDefinitions),
      ]) {
        const image = imageReference(definition);
        const present = await docker
          .getImage(image)
          .inspect()
          .then(
            () => true,
            () => false,
          );
        rows.push({ name, image, present, prebuilt: name in prebuiltImageDefinitions });
      }
      if (context.options(command).json) return context.printJson({ images: rows });
      for (const row of rows)
        context.print(
          `${row.present ? '✔' : '·'} ${row.name.padEnd(14)} ${row.image}${row.present ? '' : `  (missing: keyward images build ${row.name})`}`,
        );
    });
}
