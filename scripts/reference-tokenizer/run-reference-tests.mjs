#!/usr/bin/env node
// `pnpm test:reference`: builds Fly.io's tokenizer from the Go module proxy (once per machine),
// then runs every `*.reference.test.ts` side by side with it. Where the module proxy refuses the
// pinned commit (build.sh exits 3), it says so plainly and runs nothing: the reference is a peer
// we build from its registry, never a copy we carry.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const build = spawnSync('bash', [join(root, 'scripts', 'reference-tokenizer', 'build.sh')], {
  stdio: ['ignore', 'pipe', 'inherit'],
  encoding: 'utf8',
});
if (build.status === 3) {
  console.log(
    'reference tokenizer: not available on this machine (see the line above); the differential suite against it did not run.',
  );
  process.exit(0);
}
if (build.status !== 0) {
  console.error(`reference tokenizer: build failed (exit ${build.status}); see above.`);
  process.exit(1);
}
const run = spawnSync(
  'pnpm',
  ['exec', 'vitest', 'run', '--project', '*:reference', '--no-file-parallelism'],
  {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, REFERENCE_TOKENIZER_DIR: build.stdout.trim().split('\n').at(-1) },
  },
);
process.exit(run.status ?? 1);
