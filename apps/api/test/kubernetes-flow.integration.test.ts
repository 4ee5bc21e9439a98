// The real `keyward` CLI (bundled from source) against a real `keyward serve` whose only target
// is the built-in Kubernetes one, pointed (KUBECONFIG) at the repository's real control plane
// (scripts/k8s: kube-apiserver, etcd, kube-controller-manager). There is no kubelet: the test
// writes pod statuses itself (podStatusWriter) and says so in the test names.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { labelKeys } from '@keyward/core';
import { podStatusWriter } from '@keyward/provider-k8s/testing';
import { KubeConfig, KubernetesObjectApi } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundle } from './bundle.js';
import { type CommandRun, runCommand } from './cli-command.js';

interface ControlPlane {
  kubeconfigPath: string;
  server: string;
  stop(): Promise<void>;
}

const raw = {
  github: `ghp_K8sFlowGithub_${Math.random().toString(36).slice(2)}0123456789`,
  stripe: `sk_live_K8sFlowStripe_${Math.random().toString(36).slice(2)}98765`,
  slack: `xoxb-K8sFlowSlack-${Math.random().toString(36).slice(2)}-000111`,
};

let controlPlane: ControlPlane;
let kubeConfig: KubeConfig;
let objects: KubernetesObjectApi;
let kubelet: ReturnType<typeof podStatusWriter>;
let directory: string;
let dataDirectory: string;
let cli: string;
let server: ChildProcess;
let serverUrl: string;
let serverLog = '';
const transcripts: string[] = [];

async function run(
  args: string[],
  options: { stdin?: string; inProcess?: Record<string, string> } = {},
): Promise<CommandRun> {
  // inProcess: no --api and a port no server listens on, so the CLI serves itself with this environment.
  const api = options.inProcess ? [] : ['--api', serverUrl];
  const result = await runCommand(cli, [...api, ...args], {
    environment: { ...environment(), KEYWARD_DATA_DIR: dataDirectory, ...options.inProcess },
    stdin: options.stdin,
  });
  transcripts.push(`$ keyward ${args.join(' ')}\n${result.stdout}${result.stderr}`);
  return result;
}

function environment(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    KUBECONFIG: controlPlane.kubeconfigPath,
    KEYWARD_BUILTINS: '@keyward/provider-k8s,@keyward/provider-tokenizer',
  };
}

const kinds: [string, string][] = [
  ['apps/v1', 'Deployment'],
  ['apps/v1', 'ReplicaSet'],
  ['v1', 'Pod'],
  ['v1', 'Service'],
  ['networking.k8s.io/v1', 'NetworkPolicy'],
  ['v1', 'Secret'],
  ['v1', 'ConfigMap'],
  ['v1', 'ServiceAccount'],
  ['v1', 'PersistentVolumeClaim'],
  ['coordination.k8s.io/v1', 'Lease'],
  ['v1', 'Namespace'],
];

// biome-ignore lint/suspicious/noExplicitAny: Kubernetes objects, read as JSON
type AnyObject = any;

async function listed(apiVersion: string, kind: string, instance: string): Promise<AnyObject[]> {
  const namespace = kind === 'Namespace' ? undefined : `keyward-${instance}`;
  const list = await objects.list(
    apiVersion,
    kind,
    namespace,
    undefined,
    undefined,
    undefined,
    undefined,
    `${labelKeys.instance}=${instance}`,
  );
  return list.items as AnyObject[];
}

async function labelled(instance: string): Promise<string[]> {
  const found: string[] = [];
  for (const [apiVersion, kind] of kinds) {
    for (const object of await listed(apiVersion, kind, instance)) {
      if (!object.metadata?.deletionTimestamp) found.push(`${kind}/${object.metadata?.name}`);
    }
  }
  return found;
}

/** Every Secret value of the instance, decoded. */
async function secretValues(instance: string): Promise<Record<string, Record<string, string>>> {
  const result: Record<string, Record<string, string>> = {};
  for (const secret of await listed('v1', 'Secret', instance)) {
    result[secret.metadata.name] = Object.fromEntries(
      Object.entries((secret.data ?? {}) as Record<string, string>).map(([key, value]) => [
        key,
        Buffer.from(value, 'base64').toString('utf8'),
      ]),
    );
  }
  return result;
}

/** Everything the instance has on the API server, Secrets decoded, as one string. */
async function everything(instance: string): Promise<string> {
  const parts: string[] = [JSON.stringify(await secretValues(instance))];
  for (const [apiVersion, kind] of kinds)
    parts.push(JSON.stringify(await listed(apiVersion, kind, instance)));
  return parts.join('\n');
}

async function agentDeployment(instance: string): Promise<AnyObject> {
  return (await listed('apps/v1', 'Deployment', instance)).find(
    (item) => item.metadata.name === `kw-${instance}-agent`,
  );
}

/** What the agent container can read: its env (values and Secret references resolved) and mounted Secret keys. */
async function agentReadable(instance: string): Promise<string> {
  const deployment = await agentDeployment(instance);
  const pod = deployment.spec.template.spec;
  const agent = pod.containers.find((container: AnyObject) => container.name === 'agent');
  const secrets = await secretValues(instance);
  const readable: string[] = [];
  for (const variable of agent.env ?? []) {
    if (variable.value !== undefined) readable.push(variable.value);
    const reference = variable.valueFrom?.secretKeyRef;
    if (reference) readable.push(secrets[reference.name]?.[reference.key] ?? '');
  }
  for (const source of agent.envFrom ?? []) {
    if (source.secretRef) readable.push(JSON.stringify(secrets[source.secretRef.name] ?? {}));
  }
  const mounted = new Set((agent.volumeMounts ?? []).map((mount: AnyObject) => mount.name));
  for (const volume of pod.volumes ?? []) {
    if (!mounted.has(volume.name)) continue;
    if (volume.secret) readable.push(JSON.stringify(secrets[volume.secret.secretName] ?? {}));
    for (const projected of volume.projected?.sources ?? []) {
      if (projected.secret) readable.push(JSON.stringify(secrets[projected.secret.name] ?? {}));
    }
  }
  return readable.join('\n');
}

/**
 * The sealed tokens the agent container gets: its `TOKENIZER_CRED_<NAME>` variables, each from a
 * Secret (`secretKeyRef`), resolved against the API server's Secrets.
 */
async function agentSealedTokens(instance: string): Promise<Record<string, string>> {
  const deployment = await agentDeployment(instance);
  const agent = deployment.spec.template.spec.containers.find(
    (container: AnyObject) => container.name === 'agent',
  );
  const secrets = await secretValues(instance);
  const tokens: Record<string, string> = {};
  for (const variable of agent.env ?? []) {
    if (!variable.name.startsWith('TOKENIZER_CRED_')) continue;
    // Never inline: a credential variable comes from a Secret.
    expect(variable.value).toBeUndefined();
    const reference = variable.valueFrom.secretKeyRef;
    tokens[variable.name] = secrets[reference.name]![reference.key]!;
  }
  return tokens;
}

async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

const specYaml = (name: string, mode: 'proxy-only' | 'open') => `
name: ${name}
target: k8s
network:
  egress: ${mode}
agent:
  image: localhost/keyward-agent-standin:0.1.0
  port: 18789
  skillsDirectory: /home/agent/.agent/skills
  stateDirectories: [/home/agent/.agent]
sidecars:
  tokenizer:
    credentials:
      - name: github
        secret: ${raw.github}
        allowedHosts: [api.github.com]
      - name: stripe
        secret: ${raw.stripe}
        allowedHosts: [api.stripe.com]
`;

beforeAll(async () => {
  const location = new URL('../../../scripts/k8s/control-plane.mjs', import.meta.url).href;
  const module = (await import(location)) as {
    startControlPlane(options?: { timeoutMilliseconds?: number }): Promise<ControlPlane>;
  };
  // One retry: in one CI run etcd never answered /health (a start that failed cleans up after itself).
  try {
    controlPlane = await module.startControlPlane({ timeoutMilliseconds: 100_000 });
  } catch (error) {
    console.warn(`control plane did not start, trying once more: ${(error as Error).message}`);
    controlPlane = await module.startControlPlane({ timeoutMilliseconds: 100_000 });
  }
  kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(controlPlane.kubeconfigPath);
  objects = KubernetesObjectApi.makeApiClient(kubeConfig);
  kubelet = podStatusWriter({ kubeConfig }).start();

  directory = mkdtempSync(join(tmpdir(), 'keyward-k8s-flow-'));
  dataDirectory = join(directory, 'data');
  await mkdir(dataDirectory);
  cli = join(directory, 'keyward.mjs');
  await bundle(new URL('../src/cli.ts', import.meta.url).pathname, cli);
  for (const mode of ['proxy-only', 'open'] as const) {
    writeFileSync(
      join(directory, `${mode}.yaml`),
      specYaml(`k8s-flow-${mode === 'open' ? 'open' : 'proxy'}`, mode),
    );
  }

  server = spawn(process.execPath, [cli, 'serve', '--port', '0'], {
    env: { ...environment(), KEYWARD_DATA_DIR: dataDirectory },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  serverUrl = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${serverLog}`)), 60_000);
    server.stderr!.on('data', (chunk) => {
      serverLog += chunk;
      const match = /keyward API on (http:\/\/127\.0\.0\.1:\d+)/.exec(serverLog);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    server.on('exit', (code) => reject(new Error(`server exited with ${code}:\n${serverLog}`)));
  });
}, 300_000);

afterAll(async () => {
  if (server && server.exitCode === null) {
    const exited = new Promise((resolve) => server.once('exit', resolve));
    server.kill('SIGTERM');
    await exited;
  }
  await kubelet?.stop();
  await controlPlane?.stop();
  if (directory) rmSync(directory, { recursive: true, force: true });
});

describe.each([
  ['proxy-only', 'k8s-flow-proxy'],
  ['open', 'k8s-flow-open'],
] as const)('keyward CLI → API → Kubernetes, %s', { timeout: 180_000 }, (mode, name) => {
  it('deploys with two tokenizer credentials; Secrets hold sealed values only (pod status written by the test: no kubelet)', async () => {
    const deployed = await run(['deploy', '-f', join(directory, `${mode}.yaml`)]);
    expect(deployed.code, deployed.stderr).toBe(0);
    expect(deployed.stdout).toContain(`Deployed "${name}" on k8s`);
    expect(deployed.stderr).toMatch(/\[succeeded\] rollout:agent/);

    const agent = await agentDeployment(name);
    expect(agent.status.availableReplicas).toBe(1);
    const names = (await listed('v1', 'Secret', name)).map((secret) => secret.metadata.name).sort();
    expect(names.length).toBeGreaterThan(0);
    const stored = await everything(name);
    expect(stored).not.toContain(raw.github);
    expect(stored).not.toContain(raw.stripe);
    if (mode === 'proxy-only') {
      expect(agent.spec.template.spec.dnsPolicy).toBe('None');
      const policies = await listed('networking.k8s.io/v1', 'NetworkPolicy', name);
      expect(policies.map((policy) => policy.metadata.name).sort()).toEqual([
        `kw-${name}-agent`,
        `kw-${name}-egress`,
      ]);
    }
    const readable = await agentReadable(name);
    expect(readable).not.toContain(raw.github);
    expect(readable).not.toContain(raw.stripe);
    const tokens = await agentSealedTokens(name);
    expect(Object.keys(tokens).sort()).toEqual(['TOKENIZER_CRED_GITHUB', 'TOKENIZER_CRED_STRIPE']);
    for (const token of Object.values(tokens)) expect(token.length).toBeGreaterThan(20);
  });

  it('lists the instance running', async () => {
    const ls = await run(['ls']);
    expect(ls.code).toBe(0);
    expect(ls.stdout).toMatch(new RegExp(`^${name}\\s+k8s\\s+running\\s+${mode}\\s`, 'm'));
    expect(ls.stderr).toBe('');
    expect((await run(['creds', 'ls', name])).stdout).toMatch(/github\s+api\.github\.com/);
  });

  it('creds set adds one from stdin, creds rm removes one; the Secrets change, still sealed (pod status written by the test)', async () => {
    const before = await secretValues(name);
    const set = await run(['creds', 'set', name, 'slack', '--host', 'slack.com'], {
      stdin: `${raw.slack}\n`,
    });
    expect(set.code, set.stderr).toBe(0);
    const added = JSON.parse((await run(['creds', 'ls', name, '--json'])).stdout);
    expect(added.credentials.map((credential: { name: string }) => credential.name)).toEqual([
      'github',
      'stripe',
      'slack',
    ]);
    const afterSet = await secretValues(name);
    expect(JSON.stringify(afterSet)).not.toBe(JSON.stringify(before));
    expect(await everything(name)).not.toContain(raw.slack);
    expect(await agentReadable(name)).not.toContain(raw.slack);
    const tokensAfterSet = await agentSealedTokens(name);
    expect(Object.keys(tokensAfterSet).sort()).toEqual([
      'TOKENIZER_CRED_GITHUB',
      'TOKENIZER_CRED_SLACK',
      'TOKENIZER_CRED_STRIPE',
    ]);

    const removed = await run(['creds', 'rm', name, 'github']);
    expect(removed.code, removed.stderr).toBe(0);
    const left = JSON.parse((await run(['creds', 'ls', name, '--json'])).stdout);
    expect(left.credentials.map((credential: { name: string }) => credential.name)).toEqual([
      'stripe',
      'slack',
    ]);
    const afterRemove = JSON.stringify(await secretValues(name));
    expect(afterRemove).not.toBe(JSON.stringify(afterSet));
    const stored = await everything(name);
    for (const secret of Object.values(raw)) expect(stored).not.toContain(secret);
    const tokensAfterRemove = await agentSealedTokens(name);
    expect(Object.keys(tokensAfterRemove).sort()).toEqual(['TOKENIZER_CRED_SLACK', 'TOKENIZER_CRED_STRIPE']);
    // The kept ones are unchanged: a removal does not re-seal the others.
    expect(tokensAfterRemove['TOKENIZER_CRED_STRIPE']).toBe(tokensAfterSet['TOKENIZER_CRED_STRIPE']);
    expect(tokensAfterRemove['TOKENIZER_CRED_SLACK']).toBe(tokensAfterSet['TOKENIZER_CRED_SLACK']);
  });

  it('stop scales to zero, start brings it back (pod status written by the test)', async () => {
    const stopped = await run(['stop', name]);
    expect(stopped.stdout, stopped.stderr).toBe(`${name}: stopped\n`);
    const scaled = await listed('apps/v1', 'Deployment', name);
    expect(scaled.map((deployment) => deployment.spec.replicas)).toEqual(scaled.map(() => 0));
    expect((await run(['ls'])).stdout).toMatch(new RegExp(`^${name}\\s+k8s\\s+stopped`, 'm'));
    const started = await run(['start', name]);
    expect(started.stdout, started.stderr).toBe(`${name}: running\n`);
    expect((await agentDeployment(name)).spec.replicas).toBe(1);
  });

  it('rm deletes it: nothing labelled with the instance is left', async () => {
    const removed = await run(['rm', name]);
    expect(removed.stdout, removed.stderr).toBe(`${name}: deleted\n`);
    await eventually(async () => (await labelled(name)).length === 0, `nothing of ${name} is left`);
    expect((await run(['get', name])).code).toBe(3);
  });
});

async function freePort(): Promise<string> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(String(port)));
    });
  });
}

describe('KEYWARD_K8S_NAMESPACES limits the target to those namespaces (in-process CLI)', {
  timeout: 180_000,
}, () => {
  const name = 'k8s-flow-scoped';
  const scoped = { KEYWARD_K8S_NAMESPACES: 'keyward-agents, keyward-other' };

  it('refuses an instance in a namespace outside the list, and nothing is made', async () => {
    writeFileSync(join(directory, 'scoped-default.yaml'), specYaml(name, 'proxy-only'));
    const refused = await run(['deploy', '-f', join(directory, 'scoped-default.yaml')], {
      inProcess: { ...scoped, KEYWARD_PORT: await freePort() },
    });
    expect(refused.code, refused.stderr).toBe(2);
    expect(refused.stderr).toContain(
      `Namespace "keyward-${name}" is not one this keyward manages (keyward-agents, keyward-other)`,
    );
    expect(await labelled(name)).toEqual([]);
  });

  it('deploys into a listed namespace, lists it, deletes it (pod status written by the test: no kubelet)', async () => {
    await objects.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'keyward-agents' } });
    writeFileSync(
      join(directory, 'scoped.yaml'),
      `${specYaml(name, 'proxy-only')}targetOptions:\n  namespace: keyward-agents\n`,
    );
    const port = await freePort();
    const deployed = await run(['deploy', '-f', join(directory, 'scoped.yaml')], {
      inProcess: { ...scoped, KEYWARD_PORT: port },
    });
    expect(deployed.code, deployed.stderr).toBe(0);
    const deployments = await objects.list(
      'apps/v1',
      'Deployment',
      'keyward-agents',
      undefined,
      undefined,
      undefined,
      undefined,
      `${labelKeys.instance}=${name}`,
    );
    expect(deployments.items.map((item) => item.metadata?.name).sort()).toEqual([
      `kw-${name}-agent`,
      `kw-${name}-egress`,
    ]);
    const ls = await run(['ls'], { inProcess: { ...scoped, KEYWARD_PORT: port } });
    expect(ls.stdout).toMatch(new RegExp(`^${name}\\s+k8s\\s+running`, 'm'));
    expect(ls.stderr).toBe('');
    expect((await run(['rm', name], { inProcess: { ...scoped, KEYWARD_PORT: port } })).code).toBe(0);
    await eventually(async () => {
      const left = await objects.list(
        'v1',
        'Secret',
        'keyward-agents',
        undefined,
        undefined,
        undefined,
        undefined,
        `${labelKeys.instance}=${name}`,
      );
      return left.items.length === 0;
    }, `no Secret of ${name} is left`);
    // The namespace was given, not made by keyward: it stays.
    await objects.delete({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'keyward-agents' } });
  });
});

describe('afterwards', () => {
  it('never printed a raw credential, in any command output or server log line', () => {
    const all = [...transcripts, serverLog].join('\n');
    expect(transcripts.length).toBeGreaterThan(10);
    for (const secret of Object.values(raw)) expect(all).not.toContain(secret);
  });
});
