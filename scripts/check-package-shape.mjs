#!/usr/bin/env node
// Every package has the same shape (AGENTS.md): ESM, an exports map ordered
// dev-source → types → default, `files: ["dist"]`, build/typecheck scripts, and
// provider packages export the same public surface. Exits 1 with a list of problems.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const problems = [];
const directories = ['packages', 'apps'].flatMap((group) =>
  existsSync(join(root, group))
    ? readdirSync(join(root, group))
        .map((name) => join(group, name))
        .filter((directory) => existsSync(join(root, directory, 'package.json')))
    : [],
);

for (const directory of directories) {
  const manifest = JSON.parse(readFileSync(join(root, directory, 'package.json'), 'utf8'));
  const problem = (message) => problems.push(`${directory}: ${message}`);
  if (!manifest.name?.startsWith('@keyward/')) problem('name must be in the @keyward scope');
  if (manifest.type !== 'module') problem('"type" must be "module"');
  for (const script of ['build', 'typecheck'])
    if (!manifest.scripts?.[script]) problem(`no "${script}" script`);
  if (manifest.private) continue;
  if (manifest.sideEffects !== false && !manifest.bin) problem('"sideEffects" must be false');
  if (JSON.stringify(manifest.files) !== JSON.stringify(['dist']) && !manifest.files?.includes('dist'))
    problem('"files" must include "dist"');
  if (!manifest.engines?.node) problem('"engines.node" must state the supported Node range');
  const exportsMap = manifest.exports ?? {};
  if (exportsMap['./package.json'] !== './package.json') problem('exports must include "./package.json"');
  for (const [subpath, target] of Object.entries(exportsMap)) {
    if (subpath === './package.json') continue;
    const conditions = Object.keys(target ?? {});
    if (JSON.stringify(conditions) !== JSON.stringify(['dev-source', 'types', 'default'])) {
      problem(
        `exports["${subpath}"] must list dev-source, types, default in that order (has ${conditions.join(', ')})`,
      );
    }
  }
  const changesets = existsSync(join(root, '.changeset'))
    ? readdirSync(join(root, '.changeset'))
        .filter((file) => file.endsWith('.md') && file !== 'README.md')
        .map((file) => readFileSync(join(root, '.changeset', file), 'utf8'))
    : [];
  if (
    !changesets.some((text) => text.includes(`"${manifest.name}"`)) &&
    !existsSync(join(root, directory, 'CHANGELOG.md'))
  ) {
    problem('no changeset mentions this published package (pnpm changeset)');
  }
  if (/^packages\/provider-/.test(directory)) {
    const indexPath = join(root, directory, 'src/index.ts');
    const index = existsSync(indexPath) ? readFileSync(indexPath, 'utf8') : '';
    if (
      !/export \{[^}]*\bcreate\w+Provider\b/.test(index) &&
      !/export (async )?function create\w+Provider/.test(index)
    ) {
      problem('src/index.ts must export create<X>Provider');
    }
    if (!/\bVERSION\b/.test(index)) problem('src/index.ts must export VERSION');
  }
}

if (problems.length > 0) {
  console.error(`Package shape problems:\n${problems.map((line) => `- ${line}`).join('\n')}`);
  process.exit(1);
}
console.log(`Package shape: ${directories.length} packages checked, all follow AGENTS.md.`);
