import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// One unit and one integration project per package. Integration tests
// (*.integration.test.ts) talk to real runtimes (podman, TLS servers, nginx) and
// get longer timeouts; unit tests stay fast and hermetic.
const repositoryRoot = dirname(fileURLToPath(import.meta.url));
const packageDirectories = ['packages', 'apps', 'examples'].flatMap((group) => {
  const groupDirectory = join(repositoryRoot, group);
  return existsSync(groupDirectory)
    ? readdirSync(groupDirectory, { withFileTypes: true })
        .filter(
          (entry) => entry.isDirectory() && existsSync(join(groupDirectory, entry.name, 'package.json')),
        )
        .map((entry) => ({ directory: join(groupDirectory, entry.name), name: entry.name }))
    : [];
});

// scripts/setup.sh starts podman's API on this socket but cannot export DOCKER_HOST into
// the caller's shell; point the integration tests at it so `pnpm test` works right after.
// `KEYWARD_TEST_RUNTIME=docker` (`pnpm test:docker`) points them at the Docker engine that
// scripts/docker/start-docker.sh starts instead, whatever DOCKER_HOST the shell has.
const keywardPodmanSocket = process.env['KEYWARD_PODMAN_SOCKET'] ?? '/run/keyward-podman.sock';
if (process.env['KEYWARD_TEST_RUNTIME'] === 'docker') {
  process.env['DOCKER_HOST'] = `unix://${process.env['KEYWARD_DOCKER_SOCKET'] ?? '/run/keyward-docker.sock'}`;
} else if (!process.env['DOCKER_HOST'] && !process.env['CONTAINER_HOST'] && existsSync(keywardPodmanSocket)) {
  process.env['DOCKER_HOST'] = `unix://${keywardPodmanSocket}`;
}
process.env['CONTAINERS_CONF'] ??= join(repositoryRoot, 'scripts', 'ci', 'containers.conf');

const sourceConditions = ['dev-source', 'node', 'import', 'default'];

export default defineConfig({
  test: {
    projects: packageDirectories.flatMap(({ directory, name }) => [
      {
        resolve: { conditions: sourceConditions },
        ssr: { resolve: { conditions: sourceConditions } },
        test: {
          name: `${name}:unit`,
          root: directory,
          include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
          exclude: ['**/*.integration.test.ts', '**/*.reference.test.ts', '**/node_modules/**', '**/dist/**'],
          environment: 'node',
        },
      },
      {
        resolve: { conditions: sourceConditions },
        ssr: { resolve: { conditions: sourceConditions } },
        test: {
          name: `${name}:integration`,
          root: directory,
          include: ['src/**/*.integration.test.ts', 'test/**/*.integration.test.ts'],
          exclude: ['**/node_modules/**', '**/dist/**'],
          environment: 'node',
          testTimeout: 120_000,
          hookTimeout: 300_000,
          // Real runtimes are shared state: run integration files one at a time.
          fileParallelism: false,
        },
      },
      {
        // Side by side with a reference implementation built from its registry (Fly.io's Go
        // tokenizer): run by `pnpm test:reference`, which builds the reference first.
        resolve: { conditions: sourceConditions },
        ssr: { resolve: { conditions: sourceConditions } },
        test: {
          name: `${name}:reference`,
          root: directory,
          include: ['test/**/*.reference.test.ts'],
          exclude: ['**/node_modules/**', '**/dist/**'],
          environment: 'node',
          testTimeout: 120_000,
          hookTimeout: 600_000,
          fileParallelism: false,
        },
      },
    ]),
  },
});
