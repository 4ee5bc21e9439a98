// @ts-check
// `pnpm test:reliability` and `pnpm bench`: run the long suites (or the benchmarks) and print one
// Markdown table of their figures.
//
//   node scripts/reliability/run-suites.mjs reliability [--fast] [suite…]
//       soak          keyward-tokenizer with 1,000 keep-alive clients for 60 s (wrk, nginx upstream)
//       deploys       20 instances deployed and rotated at once through the API on real podman
//       schemathesis  the API fuzzed from its OpenAPI document, at least 100,000 cases
//       properties    fast-check over the instance spec and the credential change, 100,000 cases each
//     --fast runs CI's sizes instead (what `pnpm test` runs).
//   node scripts/reliability/run-suites.mjs bench
//       the tokenizer's and provider-local's benchmarks, then the soak.
//
// Tests hand their figures over in vitest's JSON report (`task.meta.figures`); the benchmarks
// append JSON lines to BENCH_FIGURES_FILE. A suite that fails is marked in the table, and the
// command exits 1.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repositoryRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const work = mkdtempSync(join(tmpdir(), 'keyward-reliability-'));

/**
 * @typedef {{ figure: string, value: number | string, unit?: string }} Figure
 * @typedef {{ suite: string, test: string, passed: boolean, figures: Figure[] }} Outcome
 * @typedef {{ name: string, project: string, file: string, long: Record<string, string>, what: string }} Suite
 */

/** @type {Suite[]} */
const suites = [
  {
    name: 'soak',
    what: 'proxy soak',
    project: 'tokenizer:integration',
    file: 'packages/tokenizer/test/proxy-soak.integration.test.ts',
    long: { KEYWARD_SOAK_CLIENTS: '1000', KEYWARD_SOAK_SECONDS: '60' },
  },
  {
    name: 'deploys',
    what: 'concurrent deploys and rotations (podman)',
    project: 'api:integration',
    file: 'apps/api/test/concurrent-deploys.integration.test.ts',
    long: { KEYWARD_LOAD_INSTANCES: '20' },
  },
  {
    name: 'schemathesis',
    what: 'API fuzzed by schemathesis',
    project: 'api:integration',
    file: 'apps/api/test/openapi-fuzz.integration.test.ts',
    // Seven schemathesis processes (its workers are threads under one GIL, so a process uses one core
    // at most). Measured: a fuzzing-only process stops near 16,000 cases (about 1,000 per operation)
    // at 1,600 examples per operation as at 1,000, so 100,000 cases take about seven processes.
    long: {
      KEYWARD_FUZZ_MAX_EXAMPLES: '1600',
      KEYWARD_FUZZ_PROCESSES: '7',
      KEYWARD_FUZZ_MINIMUM_CASES: '100000',
      KEYWARD_FUZZ_TIMEOUT_SECONDS: '5400',
    },
  },
  {
    name: 'properties',
    what: 'instance spec properties',
    project: 'core:unit',
    file: 'packages/core/src/instance-spec.property.test.ts',
    long: { KEYWARD_PROPERTY_CASES: '100000' },
  },
  {
    name: 'properties',
    what: 'credential change properties',
    project: 'provider-tokenizer:unit',
    file: 'packages/provider-tokenizer/test/credential-change.property.test.ts',
    long: { KEYWARD_PROPERTY_CASES: '100000' },
  },
];

/**
 * Runs one vitest file (output to this terminal) and reads the figures from its JSON report.
 * @param {Suite} suite
 * @param {boolean} fast
 * @returns {Outcome[]}
 */
function runSuite(suite, fast) {
  const report = join(work, `${suite.project.replace(':', '-')}-${suite.file.split('/').at(-1)}.json`);
  console.log(`\n── ${suite.what}: ${suite.file}${fast ? ' (CI size)' : ''}`);
  const result = spawnSync(
    'pnpm',
    [
      'exec',
      'vitest',
      'run',
      '--project',
      suite.project,
      suite.file,
      '--reporter=default',
      '--reporter=json',
      `--outputFile.json=${report}`,
    ],
    // A variable set by the caller wins: `KEYWARD_LOAD_INSTANCES=8 pnpm test:reliability deploys`.
    { cwd: repositoryRoot, stdio: 'inherit', env: { ...(fast ? {} : suite.long), ...process.env } },
  );
  if (!existsSync(report)) {
    return [
      {
        suite: suite.what,
        test: `vitest exited ${result.status} without a report`,
        passed: false,
        figures: [],
      },
    ];
  }
  /** @type {{ testResults: { assertionResults: { title: string, status: string, meta?: { figures?: Figure[] } }[] }[] }} */
  const json = JSON.parse(readFileSync(report, 'utf8'));
  const outcomes = json.testResults.flatMap((file) =>
    file.assertionResults.map((test) => ({
      suite: suite.what,
      test: test.title,
      passed: test.status === 'passed',
      figures: test.meta?.figures ?? [],
    })),
  );
  if (outcomes.length === 0)
    outcomes.push({ suite: suite.what, test: 'no test ran', passed: false, figures: [] });
  return outcomes;
}

/**
 * Runs a package's benchmark; it appends its figures to BENCH_FIGURES_FILE as JSON lines.
 * @param {string} packageName
 * @returns {Outcome[]}
 */
function runBenchmark(packageName) {
  const figuresFile = join(work, `${packageName.replace(/[@/]/g, '_')}.jsonl`);
  console.log(`\n── benchmark of ${packageName}`);
  const result = spawnSync('pnpm', ['--filter', packageName, 'bench'], {
    cwd: repositoryRoot,
    stdio: 'inherit',
    env: { ...process.env, BENCH_FIGURES_FILE: figuresFile },
  });
  /** @type {Figure[]} */
  const figures = existsSync(figuresFile)
    ? readFileSync(figuresFile, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line))
    : [];
  return [{ suite: `${packageName} bench`, test: 'pnpm bench', passed: result.status === 0, figures }];
}

/** @param {number | string} value */
function formatValue(value) {
  if (typeof value !== 'number') return String(value);
  if (!Number.isFinite(value)) return 'n/a';
  return Number.isInteger(value) ? value.toLocaleString('en-US') : value.toFixed(2);
}

/** @param {string} text */
const cell = (text) => text.replaceAll('|', '\\|').replaceAll('\n', ' ');

/**
 * @param {string} title
 * @param {Outcome[]} outcomes
 * @param {number[]} loadBefore
 */
function printTable(title, outcomes, loadBefore) {
  const loadAfter = loadavg();
  const load = (/** @type {number[]} */ values) => values.map((value) => value.toFixed(2)).join(' ');
  console.log(
    `\n${title} — ${new Date().toISOString()}, load average before ${load(loadBefore)}, after ${load(loadAfter)}\n`,
  );
  console.log('| suite | test | result | figure | value |');
  console.log('| --- | --- | --- | --- | --- |');
  for (const outcome of outcomes) {
    const result = outcome.passed ? 'passed' : '**FAILED**';
    const rows = outcome.figures.length > 0 ? outcome.figures : [{ figure: '', value: '' }];
    for (const figure of rows) {
      const value =
        figure.value === '' ? '' : `${formatValue(figure.value)}${figure.unit ? ` ${figure.unit}` : ''}`;
      console.log(
        `| ${cell(outcome.suite)} | ${cell(outcome.test)} | ${result} | ${cell(figure.figure)} | ${cell(value)} |`,
      );
    }
  }
}

const [mode, ...rest] = process.argv.slice(2);
const fast = rest.includes('--fast');
const chosen = rest.filter((argument) => !argument.startsWith('--'));
const unknown = chosen.filter((name) => !suites.some((suite) => suite.name === name));
if ((mode !== 'reliability' && mode !== 'bench') || unknown.length > 0) {
  console.error(
    `usage: run-suites.mjs reliability [--fast] [${[...new Set(suites.map((suite) => suite.name))].join('|')}…] | run-suites.mjs bench${unknown.length > 0 ? `\nunknown suite: ${unknown.join(', ')}` : ''}`,
  );
  process.exit(2);
}

const loadBefore = loadavg();
/** @type {Outcome[]} */
const outcomes = [];
try {
  if (mode === 'bench') {
    outcomes.push(...runBenchmark('@keyward/tokenizer'));
    outcomes.push(...runBenchmark('@keyward/provider-local'));
    outcomes.push(...runSuite(/** @type {Suite} */ (suites.find((suite) => suite.name === 'soak')), fast));
    printTable('keyward benchmarks (pnpm bench)', outcomes, loadBefore);
  } else {
    for (const suite of suites.filter((item) => chosen.length === 0 || chosen.includes(item.name))) {
      outcomes.push(...runSuite(suite, fast));
    }
    printTable(
      `keyward reliability suites (pnpm test:reliability${fast ? ' --fast' : ''})`,
      outcomes,
      loadBefore,
    );
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
process.exitCode = outcomes.every((outcome) => outcome.passed) ? 0 : 1;
