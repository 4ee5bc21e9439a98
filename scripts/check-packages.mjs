#!/usr/bin/env node
// What npm users get (issue 18), for every published package (`@keyward/*` without "private"):
//   1. its tarball (`pnpm pack`) holds every file its `exports` (types, default) and `bin` name,
//      and nothing from tests or sources (no test/, *.test.*, src/, fixtures);
//   2. publint (strict: warnings fail) and @arethetypeswrong/cli (ESM-only profile) pass on it;
//   3. in a throwaway copy of the repository, `changeset version` and `pnpm publish -r --dry-run`
//      run clean, and no packed manifest keeps a `workspace:` or `catalog:` range.
// Needs built packages (`pnpm build`). Exits 1 with a list of problems.
//   node scripts/check-packages.mjs [--skip-publish-dry-run]
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname.replace(/\/$/, '');
const skipPublish = process.argv.includes('--skip-publish-dry-run');
const problems = [];
const work = mkdtempSync(join(tmpdir(), 'keyward-check-packages-'));
const bin = (name) => join(root, 'node_modules', '.bin', name);
const run = (command, args, options = {}) =>
  execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...options });
const failureText = (error) => `${error.stdout ?? ''}${error.stderr ?? ''}`.trim() || error.message;

const published = ['packages', 'apps']
  .flatMap((group) => readdirSync(join(root, group)).map((name) => join(root, group, name)))
  .filter((directory) => existsSync(join(directory, 'package.json')))
  .map((directory) => ({
    directory,
    manifest: JSON.parse(readFileSync(join(directory, 'package.json'), 'utf8')),
  }))
  .filter(({ manifest }) => !manifest.private);

/** Files an exports map names for consumers: every condition but the monorepo's `dev-source`. */
function exportedFiles(exportsMap) {
  const files = [];
  const visit = (value, condition) => {
    if (typeof value === 'string') {
      if (condition !== 'dev-source') files.push(value);
    } else if (value && typeof value === 'object') {
      for (const [key, nested] of Object.entries(value)) visit(nested, key.startsWith('.') ? condition : key);
    }
  };
  visit(exportsMap, undefined);
  return files;
}

const forbidden = [
  [/(^|\/)(test|tests|__tests__|fixtures?)\//, 'a test folder'],
  [/\.(test|spec|bench)\.[cm]?[jt]sx?$/, 'a test file'],
  [/\.(integration|reference)\.test\./, 'a test file'],
  [/^src\//, 'sources (src/)'],
  [/(^|\/)tsconfig(\.[\w-]+)?\.json$/, 'a tsconfig'],
  [/\.tsbuildinfo$/, 'a build cache'],
];

try {
  for (const { directory, manifest } of published) {
    const name = manifest.name;
    const problem = (message) => problems.push(`${name}: ${message}`);
    let tarball;
    try {
      const output = run('pnpm', ['pack', '--pack-destination', work], { cwd: directory });
      tarball = output.trim().split('\n').pop().trim();
      if (!tarball.startsWith('/')) tarball = join(work, tarball);
    } catch (error) {
      problem(`pnpm pack failed: ${failureText(error)}`);
      continue;
    }
    const files = run('tar', ['-tzf', tarball])
      .split('\n')
      .filter(Boolean)
      .map((path) => path.replace(/^package\//, ''));
    const named = [...exportedFiles(manifest.exports ?? {}), ...Object.values(manifest.bin ?? {})].map(
      (path) => path.replace(/^\.\//, ''),
    );
    for (const path of named)
      if (!files.includes(path)) problem(`the tarball lacks ${path}, which exports/bin name`);
    for (const path of files)
      for (const [pattern, what] of forbidden)
        if (pattern.test(path)) problem(`the tarball holds ${what}: ${path}`);
    const packed = JSON.parse(run('tar', ['-xzOf', tarball, 'package/package.json']));
    for (const field of ['dependencies', 'peerDependencies', 'optionalDependencies'])
      for (const [dependency, range] of Object.entries(packed[field] ?? {}))
        if (/^(workspace|catalog):/.test(range)) problem(`packed ${field}.${dependency} is still ${range}`);

    try {
      run(bin('publint'), ['run', tarball, '--strict', '--level', 'warning'], { cwd: directory });
    } catch (error) {
      problem(`publint:\n${failureText(error)}`);
    }
    try {
      run(bin('attw'), [tarball, '--profile', 'esm-only', '--format', 'ascii', '--no-emoji'], {
        cwd: directory,
      });
    } catch (error) {
      problem(`@arethetypeswrong/cli:\n${failureText(error)}`);
    }
    console.log(`checked ${name} (${files.length} files, ${relative(root, directory)})`);
  }

  if (!skipPublish) {
    // A throwaway copy: changeset version rewrites manifests, changelogs and .changeset.
    const copy = join(work, 'repository');
    cpSync(root, copy, {
      recursive: true,
      verbatimSymlinks: true,
      filter: (source) => {
        const path = relative(root, source);
        return path !== '.git' && path !== 'node_modules' && !path.includes('node_modules/.cache');
      },
    });
    symlinkSync(join(root, 'node_modules'), join(copy, 'node_modules'));
    try {
      run(bin('changeset'), ['version'], { cwd: copy });
    } catch (error) {
      problems.push(`changeset version failed:\n${failureText(error)}`);
    }
    const pending = readdirSync(join(copy, '.changeset')).filter(
      (file) => file.endsWith('.md') && file !== 'README.md',
    );
    if (pending.length > 0)
      problems.push(`changeset version left ${pending.length} changesets: ${pending.join(', ')}`);
    for (const { directory, manifest } of published) {
      const after = JSON.parse(readFileSync(join(copy, relative(root, directory), 'package.json'), 'utf8'));
      if (!existsSync(join(copy, relative(root, directory), 'CHANGELOG.md')))
        problems.push(`${manifest.name}: changeset version wrote no CHANGELOG.md`);
      console.log(`changeset version: ${manifest.name} ${manifest.version} → ${after.version}`);
    }
    try {
      const output = run('pnpm', ['publish', '-r', '--dry-run', '--no-git-checks', '--access', 'public'], {
        cwd: copy,
        env: { ...process.env, npm_config_loglevel: 'warn' },
      });
      const names = published.map(({ manifest }) => manifest.name);
      const missing = names.filter((name) => !output.includes(name));
      if (missing.length > 0)
        problems.push(`pnpm publish -r --dry-run did not publish ${missing.join(', ')}`);
      console.log(`pnpm publish -r --dry-run: ${names.length} packages`);
    } catch (error) {
      problems.push(`pnpm publish -r --dry-run failed:\n${failureText(error)}`);
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

if (problems.length > 0) {
  console.error(`Package problems:\n${problems.map((line) => `- ${line}`).join('\n')}`);
  process.exit(1);
}
console.log(`Packages: ${published.length} published packages pack, lint and publish clean.`);
