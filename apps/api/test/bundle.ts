import { createRequire } from 'node:module';
import { build } from 'esbuild';

/**
 * Bundles a TypeScript entry (workspace packages from source, through the
 * `dev-source` condition) into one ESM file node can run, so tests spawn the
 * real CLI without a prior `pnpm build`.
 */
export async function bundle(entry: string, outfile: string): Promise<void> {
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    conditions: ['dev-source'],
    logLevel: 'error',
    // CommonJS dependencies call require(); give the ESM bundle one.
    banner: {
      js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);",
    },
    plugins: [
      {
        // Packages with native addons cannot be bundled: load them from where pnpm put them.
        name: 'native-addons-in-place',
        setup(builder) {
          builder.onResolve({ filter: /^(ssh2|cpu-features|better-sqlite3)$/ }, (args) => ({
            path: createRequire(args.importer).resolve(args.path),
            external: true,
          }));
        },
      },
      {
        // core/testing re-exports vitest suites; the bundle never runs them.
        name: 'stub-vitest',
        setup(builder) {
          builder.onResolve({ filter: /^vitest$/ }, () => ({ path: 'vitest', namespace: 'stub' }));
          builder.onLoad({ filter: /.*/, namespace: 'stub' }, () => ({
            contents:
              'export const describe = () => {}; export const it = () => {}; export const expect = () => {};',
          }));
        },
      },
    ],
  });
}
