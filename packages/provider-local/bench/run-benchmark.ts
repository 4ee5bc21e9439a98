// `pnpm --filter @keyward/provider-local bench` — a benchmark, not a test.
//
// 1. Time to apply a plan with the tokenizer sidecar (proxy-only: two networks, file
//    volumes, the network helper, the tokenizer with readiness, the agent with
//    readiness) through the provider, against a shell script doing the same steps
//    with the podman CLI, in the same run; prints the ratio.
// 2. `list()` with 50 instances: how many runtime calls and how long.
//
// Needs DOCKER_HOST (scripts/ci/start-podman.sh) and the podman CLI.
import { execFile } from 'node:child_process';
import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { composePlanV2, type DeploymentPlanV2, parseInstanceSpec } from '@keyward/core';
import { buildImage, dockerFromEnvironment, imageDefinitions, imageReference } from '@keyward/images';
import { createTokenizerProvider } from '@keyward/provider-tokenizer';
import type Docker from 'dockerode';
import { relayPlan, SOCKET_DIRECTORY } from '../src/agent-network.js';
import { createLocalProvider } from '../src/index.js';
import { encodeRecord, localLabelKeys, storePlan } from '../src/instance-record.js';
import {
  agentNetworkRuntimeName,
  containerRuntimeName,
  egressNetworkName,
  helperRuntimeName,
  internalNetworkName,
  socketVolumeName,
} from '../src/runtime-names.js';
import { startOrder } from '../src/start-order.js';

const run = promisify(execFile);
const rounds = Number(process.env['BENCH_ROUNDS'] ?? 3);
const tokenizer = createTokenizerProvider();
const target = createLocalProvider();

async function tokenizerPlan(name: string): Promise<DeploymentPlanV2> {
  return composePlanV2({
    spec: parseInstanceSpec({
      name,
      target: 'local',
      agent: {
        image: imageReference(imageDefinitions.agentStandIn),
        port: 18789,
        skillsDirectory: '/home/node/.openclaw/skills',
      },
      network: { egress: 'proxy-only' },
      sidecars: {
        tokenizer: {
          credentials: [
            { name: 'bench', secret: 'bench-raw-credential-0001', allowedHosts: ['api.example.com'] },
          ],
        },
      },
    }),
    sidecars: { getSidecar: (id) => (id === 'tokenizer' ? tokenizer : undefined) },
    target,
  });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

const shQuote = (value: string) => `'${value.replaceAll("'", `'\\''`)}'`;

/**
 * The same deployment as a podman CLI script: what an operator would write by hand.
 * Secret files pass through a 0600 temp directory, because `podman cp` needs a file.
 */
async function shellScriptFor(plan: DeploymentPlanV2, directory: string): Promise<string> {
  const name = plan.instance.name;
  const internal = internalNetworkName(name);
  const egress = egressNetworkName(name);
  const lines = [
    'set -eu',
    `podman network create --internal ${internal} >/dev/null`,
    `podman network create ${egress} >/dev/null`,
  ];
  const helper = helperRuntimeName(name);
  const holder = agentNetworkRuntimeName(name);
  const sockets = socketVolumeName(name);
  const relays = relayPlan(plan);
  const helperImage = imageReference(imageDefinitions.networkHelper);
  // The agent's loopback-only namespace and the relays, as provider-local makes them.
  lines.push(
    `podman volume create ${sockets} >/dev/null`,
    `podman create --name ${helper} --network ${egress} --network ${internal} -p 127.0.0.1::18789 -v ${sockets}:${SOCKET_DIRECTORY} -e ${shQuote(`RELAYS=${JSON.stringify(relays.outside)}`)} --read-only --cap-drop ALL --security-opt no-new-privileges ${helperImage} >/dev/null`,
    `podman start ${helper} >/dev/null`,
    `podman create --name ${holder} --network none -v ${sockets}:${SOCKET_DIRECTORY} -e ${shQuote(`RELAYS=${JSON.stringify(relays.inside)}`)} --read-only --cap-drop ALL --security-opt no-new-privileges ${helperImage} >/dev/null`,
    `podman start ${holder} >/dev/null`,
  );
  const order = startOrder(plan.containers);
  let fileIndex = 0;
  for (const container of order) {
    const runtimeName = containerRuntimeName(name, container.name);
    const volumeArgs: string[] = [];
    const copies: string[] = [];
    const directories = new Map<string, string>();
    const files: { path: string; content: string; mode: number }[] = [
      ...container.secretMounts.flatMap((mount) => {
        if (mount.delivery.type !== 'file') return [];
        const secret = plan.secrets.find((candidate) => candidate.name === mount.secret);
        return [
          { path: mount.delivery.path, content: secret?.value ?? '', mode: mount.delivery.mode ?? 0o400 },
        ];
      }),
      ...container.files.map((file) => ({ path: file.path, content: file.content, mode: file.mode })),
    ];
    for (const file of files) {
      const directoryPath = file.path.slice(0, file.path.lastIndexOf('/'));
      if (!directories.has(directoryPath)) {
        const volume = `${runtimeName}-files-sh-${directories.size}`;
        directories.set(directoryPath, volume);
        lines.push(`podman volume create ${volume} >/dev/null`);
        volumeArgs.push(`-v ${volume}:${directoryPath}:ro`);
      }
      const local = join(directory, `file-${fileIndex++}`);
      await writeFile(local, file.content, { mode: 0o600 });
      copies.push(`podman cp ${local} ${runtimeName}:${file.path}`);
    }
    const env = [...Object.entries(container.env).map(([key, value]) => `-e ${shQuote(`${key}=${value}`)}`)];
    // Sealed tokens (agent-safe) go through an env file, never argv.
    const envFile = join(directory, `${container.name}.env`);
    const secretEnv = container.secretMounts.flatMap((mount) =>
      mount.delivery.type === 'env'
        ? [`${mount.delivery.variable}=${plan.secrets.find((secret) => secret.name === mount.secret)?.value}`]
        : [],
    );
    await writeFile(envFile, `${secretEnv.join('\n')}\n`, { mode: 0o600 });
    const security = container.security ?? {};
    const flags = [
      `--name ${runtimeName}`,
      ...(container.role === 'agent'
        ? [`--network container:${holder}`]
        : [
            `--network ${internal}:alias=${container.name}`,
            ...(container.egress.type === 'internet' ? [`--network ${egress}`] : []),
          ]),
      ...volumeArgs,
      ...env,
      `--env-file ${envFile}`,
      ...(security.runAsUser !== undefined
        ? [`--user ${security.runAsUser}:${security.runAsGroup ?? security.runAsUser}`]
        : []),
      ...(security.readOnlyRootFilesystem ? ['--read-only'] : []),
      ...(security.dropAllCapabilities ? ['--cap-drop ALL'] : []),
      ...(security.noNewPrivileges ? ['--security-opt no-new-privileges'] : []),
      ...(container.tmpfs ?? []).map((path) => `--tmpfs ${path}`),
    ];
    lines.push(
      `podman create ${flags.join(' ')} ${container.image} >/dev/null`,
      ...copies,
      `podman start ${runtimeName} >/dev/null`,
    );
    const probe = container.readiness ?? { type: 'tcp' as const, port: 18789 };
    const probeHost = container.role === 'agent' ? '127.0.0.1' : container.name;
    const probeArgs =
      probe.type === 'http'
        ? `http ${probeHost} ${probe.port} ${probe.path}`
        : `tcp ${probeHost} ${probe.port}`;
    lines.push(
      `until podman exec ${container.role === 'agent' ? holder : helper} node /app/main.mjs probe ${probeArgs} >/dev/null 2>&1; do sleep 0.25; done`,
    );
  }
  return lines.join('\n');
}

async function podmanCleanup(name: string): Promise<void> {
  const script = [
    `podman ps -a --filter name=keyward-${name}- --format '{{.Names}}' | xargs -r podman rm -f >/dev/null 2>&1 || true`,
    // Again: the agent-network helper cannot go before the agent that joins its namespace.
    `podman ps -a --filter name=keyward-${name}- --format '{{.Names}}' | xargs -r podman rm -f >/dev/null 2>&1 || true`,
    `podman network rm keyward-${name}-internal keyward-${name}-egress >/dev/null 2>&1 || true`,
    `podman volume ls --format '{{.Name}}' | grep '^keyward-${name}-' | xargs -r podman volume rm >/dev/null 2>&1 || true`,
  ].join('\n');
  await run('sh', ['-c', script]);
}

/** Counts every dockerode call (top level and per container) made through it. */
function countingDocker(real: Docker): { docker: Docker; count: () => number } {
  let calls = 0;
  const docker = new Proxy(real, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== 'function' || property === 'modem') return value;
      return (...args: unknown[]) => {
        if (!['getContainer', 'getVolume', 'getNetwork', 'getImage'].includes(String(property))) calls += 1;
        const result = value.apply(target, args);
        if (property === 'getContainer') {
          return new Proxy(result, {
            get(container, member, containerReceiver) {
              const method = Reflect.get(container, member, containerReceiver);
              if (typeof method !== 'function') return method;
              return (...methodArgs: unknown[]) => {
                calls += 1;
                return method.apply(container, methodArgs);
              };
            },
          });
        }
        return result;
      };
    },
  });
  return { docker, count: () => calls };
}

async function main(): Promise<void> {
  const docker = dockerFromEnvironment();
  await docker.ping().catch((error: Error) => {
    throw new Error(
      `No runtime at DOCKER_HOST (${error.message}); run \`eval "$(scripts/ci/start-podman.sh)"\` first.`,
    );
  });
  for (const definition of Object.values(imageDefinitions)) await buildImage(docker, definition);
  const provider = createLocalProvider({ docker, readinessIntervalMs: 250 });
  const directory = await mkdtemp(join(tmpdir(), 'keyward-bench-'));
  const providerTimes: number[] = [];
  const shellTimes: number[] = [];
  try {
    for (let round = 0; round < rounds; round += 1) {
      // Alternate the order so neither side always runs on a warmer machine.
      const sides = round % 2 === 0 ? (['provider', 'shell'] as const) : (['shell', 'provider'] as const);
      for (const side of sides) {
        const name = `bench-${side}-${round}-${Date.now().toString(36).slice(-4)}`;
        const plan = await tokenizerPlan(name);
        if (side === 'provider') {
          const started = performance.now();
          await provider.apply(plan);
          providerTimes.push(performance.now() - started);
          await provider.delete(name, { removeVolumes: true });
        } else {
          const script = await shellScriptFor(plan, directory);
          const started = performance.now();
          await run('sh', ['-c', script], { env: { ...process.env } });
          shellTimes.push(performance.now() - started);
          await podmanCleanup(name);
        }
      }
    }
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
  const providerMedian = median(providerTimes);
  const shellMedian = median(shellTimes);
  console.log(`apply (tokenizer, proxy-only), ${rounds} rounds, median:`);
  console.log(
    `  @keyward/provider-local  ${providerMedian.toFixed(0)} ms   (${providerTimes.map((t) => t.toFixed(0)).join(', ')})`,
  );
  console.log(
    `  podman CLI shell script  ${shellMedian.toFixed(0)} ms   (${shellTimes.map((t) => t.toFixed(0)).join(', ')})`,
  );
  console.log(`  ratio provider / script  ${(providerMedian / shellMedian).toFixed(2)}x   (aim: <= 1.3x)`);
  // The machines are shared and noisy: the ratio within each round is the fairer view.
  const perRound = providerTimes.map((time, index) => (time / (shellTimes[index] ?? time)).toFixed(2));
  console.log(`  per-round ratios         ${perRound.join(', ')}`);
  const figures: { figure: string; value: number; unit?: string }[] = [
    { figure: 'apply (tokenizer, proxy-only), median', value: Math.round(providerMedian), unit: 'ms' },
    { figure: 'podman CLI script, median', value: Math.round(shellMedian), unit: 'ms' },
    { figure: 'apply / script', value: providerMedian / shellMedian },
    { figure: 'load average (1 min) after the apply rounds', value: loadavg()[0] ?? Number.NaN },
  ];

  // list() with 50 instances: three labelled containers each (created, not started).
  const instances = 50;
  const prefix = `bench-list-${Date.now().toString(36).slice(-4)}`;
  const createdIds: string[] = [];
  try {
    for (let index = 0; index < instances; index += 1) {
      const plan = await tokenizerPlan(`${prefix}-${index}`);
      const stored = storePlan(plan);
      for (const container of plan.containers) {
        const labels: Record<string, string> = { ...container.labels };
        if (container.role === 'agent')
          labels[localLabelKeys.record] = encodeRecord({
            version: 2,
            plan: stored,
            generation: 'bench',
            helperImage: 'x',
          });
        const created = await docker.createContainer({
          name: containerRuntimeName(plan.instance.name, container.name),
          Image: imageReference(imageDefinitions.agentStandIn),
          Labels: labels,
        });
        createdIds.push(created.id);
      }
      const helper = await docker.createContainer({
        name: helperRuntimeName(plan.instance.name),
        Image: imageReference(imageDefinitions.networkHelper),
        Labels: { ...plan.labels, 'keyward.dev/component': 'network-helper' },
      });
      createdIds.push(helper.id);
    }
    const counting = countingDocker(docker);
    const listing = createLocalProvider({ docker: counting.docker, runtimeKind: 'podman' });
    const before = counting.count();
    const started = performance.now();
    const listed = await listing.list();
    const elapsed = performance.now() - started;
    const ours = listed.filter((instance) => instance.name.startsWith(prefix));
    console.log(`list() with ${instances} instances (${createdIds.length} containers):`);
    console.log(`  runtime calls  ${counting.count() - before}`);
    console.log(`  time           ${elapsed.toFixed(0)} ms`);
    figures.push(
      { figure: `list() with ${instances} instances: runtime calls`, value: counting.count() - before },
      { figure: `list() with ${instances} instances: time`, value: Math.round(elapsed), unit: 'ms' },
    );
    console.log(
      `  instances seen ${ours.length}, all stopped: ${ours.every((instance) => instance.state === 'stopped')}`,
    );
  } finally {
    for (const id of createdIds)
      await docker
        .getContainer(id)
        .remove({ force: true })
        .catch(() => undefined);
  }
  // For the root `pnpm bench` table (scripts/reliability/run-suites.mjs): JSON lines, one figure each.
  const figuresFile = process.env['BENCH_FIGURES_FILE'];
  if (figuresFile)
    await appendFile(figuresFile, figures.map((figure) => `${JSON.stringify(figure)}\n`).join(''));
}

await main();
