#!/usr/bin/env node
// Bundles the UI into dist/ (app.js, app.css, index.html) with esbuild; prints the sizes.
import { copyFileSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const outdir = join(root, 'dist');

/** Builds the bundle; returns the byte sizes (raw and gzip) of what a browser loads. */
export async function buildWeb({ quiet = false } = {}) {
  rmSync(outdir, { recursive: true, force: true });
  mkdirSync(outdir, { recursive: true });
  await build({
    entryPoints: [join(root, 'src/main.ts')],
    bundle: true,
    format: 'esm',
    target: 'es2022',
    platform: 'browser',
    minify: true,
    sourcemap: false,
    legalComments: 'none',
    conditions: ['dev-source', 'browser', 'import', 'default'],
    outfile: join(outdir, 'app.js'),
    logLevel: quiet ? 'silent' : 'warning',
  });
  copyFileSync(join(root, 'static/index.html'), join(outdir, 'index.html'));
  copyFileSync(join(root, 'static/app.css'), join(outdir, 'app.css'));
  const sizes = Object.fromEntries(
    ['app.js', 'app.css', 'index.html'].map((file) => {
      const bytes = readFileSync(join(outdir, file));
      return [file, { bytes: bytes.length, gzip: gzipSync(bytes).length }];
    }),
  );
  if (!quiet) {
    for (const [file, size] of Object.entries(sizes)) {
      console.log(`${file.padEnd(11)} ${String(size.bytes).padStart(7)} B  (${size.gzip} B gzip)`);
    }
  }
  return sizes;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await buildWeb();
}
