// `pnpm images`: builds every keyward image into the local runtime (DOCKER_HOST).
//   --force      rebuild even when up to date
//   --registry   use `FROM node:20-slim` instead of the scratch base (needs a registry)
//   <names…>     only these definitions (tokenizer, agentStandIn, demoUpstream, networkHelper)
import { buildImage } from './build-image.js';
import { dockerFromEnvironment } from './docker-from-environment.js';
import { imageDefinitions } from './image-definitions.js';

const argv = process.argv.slice(2);
const force = argv.includes('--force');
const base = argv.includes('--registry') ? 'registry' : 'scratch';
const names = argv.filter((argument) => !argument.startsWith('--'));
const selected = Object.entries(imageDefinitions).filter(
  ([key]) => names.length === 0 || names.includes(key),
);

const docker = dockerFromEnvironment();
const started = Date.now();
for (const [, definition] of selected) {
  try {
    await buildImage(docker, definition, {
      force,
      base,
      onProgress: (event) => {
        if (event.type === 'output') return;
        const detail =
          event.type === 'built'
            ? `in ${event.milliseconds} ms`
            : event.type === 'skipped'
              ? `(${event.reason})`
              : event.type === 'building'
                ? `(base: ${event.base})`
                : '';
        console.log(`${event.type.padEnd(8)} ${event.image} ${detail}`.trimEnd());
      },
    });
  } catch (error) {
    console.error(`failed   ${definition.name}: ${(error as Error).message}`);
    process.exitCode = 1;
  }
}
console.log(`done in ${Date.now() - started} ms`);
