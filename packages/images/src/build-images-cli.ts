// `pnpm images`: builds every keyward image into the local runtime (DOCKER_HOST).
//   --force      rebuild even when up to date
//   --registry   use `FROM node:20-slim` instead of the scratch base (needs a registry)
//   <names…>     only these definitions (tokenizer, agentStandIn, demoUpstream, networkHelper,
//                otelCollector, litellm)
// Prebuilt images (otelCollector, litellm) run their build scripts first: minutes when cold.
import { buildImage } from './build-image.js';
import { buildPrebuiltImage } from './build-prebuilt-image.js';
import { dockerFromEnvironment } from './docker-from-environment.js';
import { type ImageBuildProgress, imageReference } from './image-definition.js';
import { imageDefinitions, prebuiltImageDefinitions } from './image-definitions.js';

const argv = process.argv.slice(2);
const force = argv.includes('--force');
const base = argv.includes('--registry') ? 'registry' : 'scratch';
const names = argv.filter((argument) => !argument.startsWith('--'));
const selected = (key: string) => names.length === 0 || names.includes(key);
const known = [...Object.keys(imageDefinitions), ...Object.keys(prebuiltImageDefinitions)];
for (const name of names.filter((name) => !known.includes(name))) {
  console.error(`unknown image ${name}; known: ${known.join(', ')}`);
  process.exitCode = 1;
}

// The last lines of each image's build output, printed when its build fails.
const recentOutput = new Map<string, string[]>();

function report(event: ImageBuildProgress): void {
  // Build scripts report their own steps on stderr; container build output stays quiet.
  if (event.type === 'output') {
    if (event.line.startsWith('build-')) console.log(`         ${event.line}`);
    const lines = recentOutput.get(event.image) ?? [];
    lines.push(event.line);
    if (lines.length > 30) lines.shift();
    recentOutput.set(event.image, lines);
    return;
  }
  const detail =
    event.type === 'built'
      ? `in ${event.milliseconds} ms`
      : event.type === 'skipped'
        ? `(${event.reason})`
        : event.type === 'building'
          ? `(base: ${event.from ?? event.base})`
          : event.type === 'preparing'
            ? `(${event.script})`
            : '';
  console.log(`${event.type.padEnd(9)} ${event.image} ${detail}`.trimEnd());
}

const docker = dockerFromEnvironment();
const started = Date.now();
for (const [key, definition] of Object.entries(imageDefinitions)) {
  if (!selected(key)) continue;
  try {
    await buildImage(docker, definition, { force, base, onProgress: report });
  } catch (error) {
    console.error(`failed    ${definition.name}: ${(error as Error).message}`);
    process.exitCode = 1;
  }
}
for (const [key, definition] of Object.entries(prebuiltImageDefinitions)) {
  if (!selected(key)) continue;
  try {
    await buildPrebuiltImage(docker, definition, { force, onProgress: report });
  } catch (error) {
    for (const line of recentOutput.get(imageReference(definition)) ?? []) console.error(`         ${line}`);
    console.error(`failed    ${definition.name}: ${(error as Error).message}`);
    process.exitCode = 1;
  }
}
console.log(`done in ${Date.now() - started} ms`);
