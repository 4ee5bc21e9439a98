// Node 20 cannot run TypeScript directly: bundle the benchmark with esbuild, then run it.
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as esbuild from 'esbuild';

const output = fileURLToPath(
  new URL('../node_modules/.cache/keyward-bench/run-benchmark.mjs', import.meta.url),
);
await mkdir(new URL('../node_modules/.cache/keyward-bench/', import.meta.url), { recursive: true });
// The same runtime and podman settings the tests use (the root vitest.config.ts), so a fresh
// shell finds them: the benchmark's podman CLI needs the project's containers.conf.
const repositoryRoot = fileURLToPath(new URL('../../../', import.meta.url));
const keywardPodmanSocket = process.env.KEYWARD_PODMAN_SOCKET ?? '/run/keyward-podman.sock';
if (!process.env.DOCKER_HOST && !process.env.CONTAINER_HOST && existsSync(keywardPodmanSocket)) {
  process.env.DOCKER_HOST = `unix://${keywardPodmanSocket}`;
}
process.env.CONTAINERS_CONF ??= `${repositoryRoot}scripts/ci/containers.conf`;

await esbuild.build({
  entryPoints: [fileURLToPath(new URL('./run-benchmark.ts', import.meta.url))],
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  conditions: ['dev-source'],
  external: ['dockerode', 'esbuild', 'tar-stream'],
  logLevel: 'warning',
  outfile: output,
  // Bundled CommonJS dependencies call require() for node built-ins.
  banner: {
    js: "import { createRequire as __createRequire } from 'node:module';\nconst require = __createRequire(import.meta.url);",
  },
});
await import(pathToFileURL(output).href);
