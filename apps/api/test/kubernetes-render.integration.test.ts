// `keyward render` for GitOps users, checked against the repository's real control plane
// (scripts/k8s: kube-apiserver, etcd, kube-controller-manager). The real `keyward` CLI (bundled
// from source) renders in process; what it prints goes to the API server by server-side apply,
// dry-run (`dryRun=All`) unless the test applies for real. kubectl is not needed.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSecret } from '@keyward/tokenizer';
import {
  KubeConfig,
  type KubernetesObject,
  KubernetesObjectApi,
  PatchStrategy,
  type V1Secret,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { bundle } from './bundle.js';
import { type CommandRun, runCommand } from './cli-command.js';

interface ControlPlane {
  kubeconfigPath: string;
  server: string;
  stop(): Promise<void>;
}

const raw = {
  github: `ghp_RenderGithub_${Math.random().toString(36).slice(2)}0123456789`,
  stripe: `sk_live_RenderStripe_${Math.random().toString(36).slice(2)}98765`,
};
const instance = 'render-gitops';
const namespace = `keyward-${instance}`;

let controlPlane: ControlPlane;
let objects: KubernetesObjectApi;
let directory: string;
let dataDirectory: string;
let cli: string;
let specPath: string;

function run(args: string[]): Promise<CommandRun> {
  // No --api and a port nobody listens on: the CLI serves itself, with the k8s target built in.
  return runCommand(cli, args, {
    environment: {
      ...process.env,
      KUBECONFIG: controlPlane.kubeconfigPath,
      KEYWARD_BUILTINS: '@keyward/provider-k8s,@keyward/provider-tokenizer',
      KEYWARD_DATA_DIR: dataDirectory,
      KEYWARD_PORT: '1',
    },
  });
}

function documents(text: string): KubernetesObject[] {
  return parseAllDocuments(text)
    .map((document) => document.toJS() as KubernetesObject | null)
    .filter((object): object is KubernetesObject => object !== null);
}

/** Server-side apply, as kubectl apply --server-side does; dry-run unless told. */
function apply(object: KubernetesObject, dryRun: boolean): Promise<KubernetesObject> {
  return objects.patch(
    object,
    undefined,
    dryRun ? 'All' : undefined,
    'keyward-render-test',
    true,
    PatchStrategy.ServerSideApply,
  );
}

/** Applies each object and collects the API server's refusals as `Kind/name: message`. */
async function refusals(list: KubernetesObject[], dryRun: boolean): Promise<string[]> {
  const refused: string[] = [];
  for (const object of list) {
    try {
      await apply(object, dryRun);
    } catch (error) {
      const body = (error as { body?: unknown }).body;
      refused.push(
        `${object.kind}/${object.metadata?.name}: ${typeof body === 'string' ? body : String(error)}`,
      );
    }
  }
  return refused;
}

function decoded(secret: V1Secret): Record<string, string> {
  return Object.fromEntries(
    Object.entries(secret.data ?? {}).map(([key, value]) => [
      key,
      Buffer.from(value, 'base64').toString('utf8'),
    ]),
  );
}

const specYaml = `
name: ${instance}
target: k8s
network:
  egress: open
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
  controlPlane = await module.startControlPlane({ timeoutMilliseconds: 120_000 });
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(controlPlane.kubeconfigPath);
  objects = KubernetesObjectApi.makeApiClient(kubeConfig);
  directory = mkdtempSync(join(tmpdir(), 'keyward-k8s-render-'));
  dataDirectory = join(directory, 'data');
  await mkdir(dataDirectory);
  cli = join(directory, 'keyward.mjs');
  await bundle(new URL('../src/cli.ts', import.meta.url).pathname, cli);
  specPath = join(directory, 'spec.yaml');
  writeFileSync(specPath, specYaml);
}, 300_000);

afterAll(async () => {
  try {
    await objects?.delete({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
  } catch {
    // Not created when an earlier step failed.
  }
  await controlPlane?.stop();
  if (directory) rmSync(directory, { recursive: true, force: true });
});

describe('keyward render on a real kube-apiserver', { timeout: 180_000 }, () => {
  it('default output: every object is accepted by a dry-run apply; Secrets have no values; stderr lists them', async () => {
    const rendered = await run(['render', '-f', specPath]);
    expect(rendered.stderr).not.toContain('Error');
    expect(rendered.code).toBe(0);
    const list = documents(rendered.stdout);
    const secrets = list.filter((object) => object.kind === 'Secret') as V1Secret[];
    expect(secrets.length).toBeGreaterThan(1);
    for (const secret of secrets) {
      expect(secret.data, secret.metadata?.name).toBeUndefined();
      expect(secret.metadata?.annotations?.['keyward.dev/values']).toBe('omitted');
      expect(rendered.stderr).toContain(`Secret ${namespace}/${secret.metadata?.name}:`);
      for (const key of secret.metadata?.annotations?.['keyward.dev/keys']?.split(',') ?? []) {
        expect(rendered.stderr).toContain(`    ${key}  from tokenizer, read by `);
      }
    }
    expect(rendered.stderr).toMatch(
      /tokenizer-open-key {2}from tokenizer, read by tokenizer; never for the agent/,
    );
    expect(rendered.stderr).toContain('--secrets-file');

    // A dry run of namespaced objects needs their namespace: create it for real first.
    const [namespaceObject, ...rest] = list;
    expect(namespaceObject?.kind).toBe('Namespace');
    expect(await refusals([namespaceObject!], false)).toEqual([]);
    expect(await refusals(rest, true)).toEqual([]);
  });

  it('--secrets-file: stdout and stderr hold no secret value (raw or base64); the file holds them, mode 0600', async () => {
    const secretsPath = join(directory, 'secrets.yaml');
    const rendered = await run(['render', '-f', specPath, '--secrets-file', secretsPath]);
    expect(rendered.code).toBe(0);
    expect(statSync(secretsPath).mode & 0o777).toBe(0o600);
    const secrets = documents(readFileSync(secretsPath, 'utf8')) as V1Secret[];
    expect(secrets.map((secret) => secret.kind)).toEqual(secrets.map(() => 'Secret'));
    const values = [...Object.values(raw), ...secrets.flatMap((secret) => Object.values(decoded(secret)))];
    expect(values.length).toBeGreaterThan(4);
    const printed = rendered.stdout + rendered.stderr;
    for (const value of values) {
      expect(printed).not.toContain(value);
      expect(printed).not.toContain(Buffer.from(value, 'utf8').toString('base64'));
    }

    // Manifests and Secrets of the same render, applied for real: the open key in the cluster
    // opens the agent's sealed tokens back into the spec's raw credentials.
    expect(await refusals(documents(rendered.stdout), false)).toEqual([]);
    expect(await refusals(secrets, false)).toEqual([]);
    const stored = new Map<string, Record<string, string>>();
    for (const secret of secrets) {
      const read = (await objects.read({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: secret.metadata!.name!, namespace },
      })) as V1Secret;
      stored.set(secret.metadata!.name!, decoded(read));
      expect(decoded(read)).toEqual(decoded(secret));
    }
    const all = Object.assign({}, ...stored.values()) as Record<string, string>;
    const openKey = all['tokenizer-open-key'];
    expect(openKey).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(openSecret(all['tokenizer-cred-github']!, openKey!))).toContain(raw.github);
    expect(JSON.stringify(openSecret(all['tokenizer-cred-stripe']!, openKey!))).toContain(raw.stripe);
  });

  it('--include-secrets: everything applies, the Secret values come back from the API server as printed; stderr warns', async () => {
    const rendered = await run(['render', '-f', specPath, '--include-secrets']);
    expect(rendered.code).toBe(0);
    expect(rendered.stderr).toContain('WARNING: this output holds secret values');
    expect(rendered.stderr).toContain('never commit it');
    const list = documents(rendered.stdout);
    const secrets = list.filter((object) => object.kind === 'Secret') as V1Secret[];
    expect(secrets.length).toBeGreaterThan(1);
    expect(await refusals(list, true)).toEqual([]);
    for (const secret of secrets) {
      const answered = (await apply(secret, true)) as V1Secret;
      expect(Object.keys(secret.data ?? {}).length).toBeGreaterThan(0);
      expect(decoded(answered)).toEqual(decoded(secret));
    }
    const all = Object.assign({}, ...secrets.map(decoded)) as Record<string, string>;
    expect(JSON.stringify(openSecret(all['tokenizer-cred-github']!, all['tokenizer-open-key']!))).toContain(
      raw.github,
    );
    // Values go to stdout only: stderr names keys, never a value.
    for (const value of Object.values(all)) expect(rendered.stderr).not.toContain(value);
  });

  it('refuses values for a deployed instance and two value options at once, saying what to run', async () => {
    const deployed = await run(['render', instance, '--include-secrets']);
    expect(deployed.code).toBe(2);
    expect(deployed.stderr).toContain(`keyward render -f <spec file> --include-secrets`);
    const both = await run([
      'render',
      '-f',
      specPath,
      '--include-secrets',
      '--secrets-file',
      join(directory, 'x'),
    ]);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('Choose one');
  });
});
