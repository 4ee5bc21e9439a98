// Against a real kube-apiserver, etcd and kube-controller-manager (scripts/k8s). There is no
// kubelet: the test writes pod statuses itself (podStatusWriter), and says so in test names.
import {
  composeRotationV2,
  type InstanceSpec,
  isKeywardError,
  labelKeys,
  type ProgressEventV2,
} from '@keyward/core';
import type { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKubernetesProvider, type KubernetesProvider } from '../src/index.js';
import { KubernetesApi } from '../src/kubernetes-api.js';
import { podStatusWriter } from '../src/testing/index.js';
import {
  type ControlPlane,
  kubeConfigOf,
  requestCounter,
  startControlPlane,
} from './support/control-plane.js';
import type { AnyObject } from './support/object-queries.js';
import { fixturePlan, fixtureSidecars, fixtureSpec, sequenceBytes } from './support/plan-fixtures.js';

let controlPlane: ControlPlane;
let kubeConfig: KubeConfig;
let api: KubernetesApi;
let kubelet: ReturnType<typeof podStatusWriter>;
const counter = requestCounter();
let provider: KubernetesProvider;
/** When set, pods whose template carries another config digest never become ready (ErrImagePull). */
let onlyDigests: Set<string> | undefined;

beforeAll(async () => {
  controlPlane = await startControlPlane();
  kubeConfig = kubeConfigOf(controlPlane);
  api = new KubernetesApi({ kubeConfig });
  kubelet = podStatusWriter({
    kubeConfig,
    outcome: (pod) =>
      onlyDigests && !onlyDigests.has(pod.metadata?.annotations?.['keyward.dev/config-digest'] ?? '')
        ? { waiting: { reason: 'ErrImagePull', message: 'pull access denied for the test image' } }
        : { running: true },
  }).start();
  provider = createKubernetesProvider({
    kubeConfig,
    onRequest: counter.onRequest,
    pollIntervalMs: 200,
    rolloutTimeoutMs: 60_000,
    leaseDurationSeconds: 5,
  });
});

afterAll(async () => {
  await kubelet?.stop();
  await controlPlane?.stop();
});

async function labelled(namespace: string | undefined, instance: string): Promise<string[]> {
  const selector = `${labelKeys.instance}=${instance}`;
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
  const found: string[] = [];
  for (const [apiVersion, kind] of kinds) {
    for (const object of await api.list(
      apiVersion,
      kind,
      kind === 'Namespace' ? undefined : namespace,
      selector,
    )) {
      found.push(`${kind}/${object.metadata?.name}`);
    }
  }
  return found;
}

async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

function rotationOf(spec: InstanceSpec, credentials: { name: string; secret: string }[]) {
  return composeRotationV2({
    spec,
    providerId: 'proxy',
    change: { credentials },
    sidecars: { getSidecar: (id) => fixtureSidecars.get(id) },
    target: provider,
    readState: (providerId) => provider.readSidecarState(spec.name, providerId),
    randomBytes: sequenceBytes(),
  });
}

const callCounts: Record<string, number> = {};

describe.each(['proxy-only', 'open'] as const)('%s instance with two credentials', (mode) => {
  const name = mode === 'open' ? 'life-open' : 'life-proxy';
  const namespace = `keyward-${name}`;
  // proxy-only without a fixed egress IP: apply fills the one the cluster assigns.
  const spec = fixtureSpec({ name, mode, targetOptions: {} });

  it('apply creates every object, fills the egress IP and runs (pod status written by the test: no kubelet)', async () => {
    const plan = await fixturePlan(provider, { name, mode, targetOptions: {} });
    const events: ProgressEventV2[] = [];
    counter.reset();
    const detail = await provider.apply(plan, { onProgress: (event) => events.push(event) });
    callCounts[`apply (${mode}, fresh)`] = counter.count;
    expect(detail.state).toBe('running');
    expect(detail.containers.every((container) => container.running)).toBe(true);
    expect(events.some((event) => event.step === 'rollout:agent' && event.status === 'succeeded')).toBe(true);
    const agent = await api.read<AnyObject>('apps/v1', 'Deployment', namespace, `kw-${name}-agent`);
    if (mode === 'proxy-only') {
      const service = await api.read<AnyObject>('v1', 'Service', namespace, `kw-${name}-egress`);
      expect(service?.spec.clusterIP).toMatch(/^10\.0\.0\.\d+$/);
      expect(agent?.spec.template.spec.hostAliases).toEqual([
        { ip: service?.spec.clusterIP, hostnames: ['gateway.keyward.internal', 'proxy.keyward.internal'] },
      ]);
      expect(agent?.spec.template.spec.dnsPolicy).toBe('None');
      const policies = await api.list(
        'networking.k8s.io/v1',
        'NetworkPolicy',
        namespace,
        `${labelKeys.instance}=${name}`,
      );
      expect(policies.map((policy) => policy.metadata?.name).sort()).toEqual([
        `kw-${name}-agent`,
        `kw-${name}-egress`,
      ]);
    } else {
      // The API server (1.34) accepted native sidecars.
      const init = agent?.spec.template.spec.initContainers.map((item: AnyObject) => [
        item.name,
        item.restartPolicy,
      ]);
      expect(init).toEqual([
        ['proxy', 'Always'],
        ['gateway', 'Always'],
      ]);
    }
    const secrets = await api.list('v1', 'Secret', namespace, `${labelKeys.instance}=${name}`);
    expect(secrets.map((secret) => secret.metadata?.name).sort()).toEqual([
      `kw-${name}-secrets-agent`,
      `kw-${name}-secrets-gateway`,
      `kw-${name}-secrets-proxy`,
    ]);
    const managers = (agent?.metadata.managedFields ?? []).map(
      (field: AnyObject) => `${field.manager}/${field.operation}`,
    );
    expect(managers).toContain('keyward/Apply');
  });

  it('apply again is idempotent: nothing changes, no rollout', async () => {
    const plan = await fixturePlan(provider, { name, mode, targetOptions: {} });
    const before = await api.read<AnyObject>('apps/v1', 'Deployment', namespace, `kw-${name}-agent`);
    counter.reset();
    const events: ProgressEventV2[] = [];
    await provider.apply(plan, { onProgress: (event) => events.push(event) });
    callCounts[`apply (${mode}, unchanged)`] = counter.count;
    const after = await api.read<AnyObject>('apps/v1', 'Deployment', namespace, `kw-${name}-agent`);
    expect(after?.metadata.generation).toBe(before?.metadata.generation);
    expect(events.map((event) => event.message)).toContain(
      `Instance "${name}" already matches the plan; nothing changed.`,
    );
  });

  it('get reads state from the Deployments and pods; list has it', async () => {
    const detail = await provider.get(name);
    expect(detail.networkMode).toBe(mode);
    expect(detail.redactedSpec).toMatchObject({ name, network: { egress: mode } });
    expect(detail.sidecars.map((sidecar) => sidecar.providerId)).toEqual(['proxy', 'gateway']);
    expect(detail.agentUrl).toBe(`http://kw-${name}-agent.${namespace}.svc:18789`);
    const listed = (await provider.list()).find((summary) => summary.name === name);
    expect(listed?.state).toBe('running');
    expect(listed?.containers.map((container) => container.name).sort()).toEqual([
      'agent',
      'gateway',
      'proxy',
    ]);
  });

  it('rotation keeps one credential, replaces one, adds one, and rolls the pods (pod status written by the test)', async () => {
    const before = await provider.readSidecarState(name, 'proxy');
    const agentBefore = await api.read<AnyObject>('apps/v1', 'Deployment', namespace, `kw-${name}-agent`);
    const request = await rotationOf(spec, [
      { name: 'github', secret: 'ghp_raw_github_credential_0123456789' },
      { name: 'stripe', secret: 'sk_live_rotated_stripe_credential_2' },
      { name: 'slack', secret: 'xoxb-raw-slack-credential-000111' },
    ]);
    counter.reset();
    await provider.rotateSecrets(name, request);
    callCounts[`rotateSecrets (${mode})`] = counter.count;
    const after = await provider.readSidecarState(name, 'proxy');
    expect(after.secrets['proxy-token-github']).toBe(before.secrets['proxy-token-github']);
    expect(after.secrets['proxy-token-stripe']).not.toBe(before.secrets['proxy-token-stripe']);
    expect(after.secrets['proxy-token-slack']).toMatch(/^sealed\(/);
    expect(after.metadata).toEqual({ credentials: ['github', 'stripe', 'slack'] });
    const agentAfter = await api.read<AnyObject>('apps/v1', 'Deployment', namespace, `kw-${name}-agent`);
    expect(agentAfter?.spec.template.metadata.annotations['keyward.dev/config-digest']).not.toBe(
      agentBefore?.spec.template.metadata.annotations['keyward.dev/config-digest'],
    );
    const env = agentAfter?.spec.template.spec.containers[0].env.map((item: AnyObject) => item.name);
    expect(env).toContain('PROXY_TOKEN_SLACK');
    expect((await provider.get(name)).state).toBe('running');
    expect(
      await api.list('coordination.k8s.io/v1', 'Lease', namespace, `${labelKeys.instance}=${name}`),
    ).toEqual([]);
    // The gateway's sealed key (an answer to its request) survived the proxy's rotation.
    const gatewaySecret = await api.read<AnyObject>('v1', 'Secret', namespace, `kw-${name}-secrets-gateway`);
    expect(Object.keys(gatewaySecret?.data ?? {})).toEqual(['proxy-for-gateway']);
  });

  it('a rotation whose new pods never become ready restores the previous Secrets and pods (ErrImagePull written by the test)', async () => {
    const before = await provider.readSidecarState(name, 'proxy');
    const secretsBefore = await api.list<AnyObject>(
      'v1',
      'Secret',
      namespace,
      `${labelKeys.instance}=${name}`,
    );
    const agentBefore = await api.read<AnyObject>('apps/v1', 'Deployment', namespace, `kw-${name}-agent`);
    const request = await rotationOf(spec, [{ name: 'github', secret: 'ghp_second_rotation_never_lands_0' }]);
    // Every pod of the new templates fails to pull its image; pods of the current ones run.
    onlyDigests = new Set(
      (await api.list<AnyObject>('apps/v1', 'Deployment', namespace, `${labelKeys.instance}=${name}`)).map(
        (deployment) => deployment.spec.template.metadata.annotations['keyward.dev/config-digest'],
      ),
    );
    const events: ProgressEventV2[] = [];
    let failure: unknown;
    try {
      await provider.rotateSecrets(name, request, { onProgress: (event) => events.push(event) });
    } catch (error) {
      failure = error;
    } finally {
      onlyDigests = undefined;
    }
    expect(isKeywardError(failure, 'ROTATION_FAILED')).toBe(true);
    expect((failure as Error).message).toMatch(/\(ErrImagePull\): pull access denied/);
    expect((failure as Error).message).toMatch(/previous Secrets were restored/);
    const after = await provider.readSidecarState(name, 'proxy');
    expect(after.secrets).toEqual(before.secrets);
    expect(after.metadata).toEqual(before.metadata);
    const secretsAfter = await api.list<AnyObject>(
      'v1',
      'Secret',
      namespace,
      `${labelKeys.instance}=${name}`,
    );
    expect(secretsAfter.map((secret) => [secret.metadata.name, secret.data])).toEqual(
      secretsBefore.map((secret) => [secret.metadata.name, secret.data]),
    );
    const agentAfter = await api.read<AnyObject>('apps/v1', 'Deployment', namespace, `kw-${name}-agent`);
    expect(agentAfter?.spec.template.metadata.annotations['keyward.dev/config-digest']).toBe(
      agentBefore?.spec.template.metadata.annotations['keyward.dev/config-digest'],
    );
    expect(events.some((event) => event.step === 'rollback' && event.status === 'succeeded')).toBe(true);
    await eventually(
      async () => (await provider.get(name)).state === 'running',
      'the previous pods are back',
    );
    onlyDigests = undefined;
  });

  it('stop scales to zero, start brings it back, restart rolls the pods (pod status written by the test)', async () => {
    await provider.stop(name);
    expect((await provider.get(name)).state).toBe('stopped');
    await provider.start(name);
    expect((await provider.get(name)).state).toBe('running');
    const before = await api.read<AnyObject>('apps/v1', 'Deployment', namespace, `kw-${name}-agent`);
    await provider.restart(name);
    const after = await api.read<AnyObject>('apps/v1', 'Deployment', namespace, `kw-${name}-agent`);
    expect(after?.spec.template.metadata.annotations['keyward.dev/restarted-at']).toBeTruthy();
    expect(after?.metadata.generation).toBeGreaterThan(before?.metadata.generation);
    expect((await provider.get(name)).state).toBe('running');
  });

  it('delete with removeVolumes leaves nothing labelled with the instance', async () => {
    await provider.delete(name, { removeVolumes: true });
    await eventually(
      async () => (await labelled(namespace, name)).length === 0,
      'nothing labelled is left',
      90_000,
    );
    await expect(provider.get(name)).rejects.toMatchObject({ code: 'INSTANCE_NOT_FOUND' });
  });
});

describe('list', () => {
  it('makes the same number of API calls with 1 and with 50 instances', async () => {
    const deployInstance = async (index: number) => {
      const plan = await fixturePlan(provider, {
        name: `fleet-${index}`,
        mode: 'open',
        gateway: false,
        stateDirectories: [],
        targetOptions: { namespace: 'default' },
      });
      await provider.apply(plan);
    };
    await deployInstance(0);
    counter.reset();
    const one = await provider.list();
    const callsWithOne = counter.count;
    expect(one.filter((summary) => summary.name.startsWith('fleet-'))).toHaveLength(1);
    // Ten at a time: separate instances, so their applies do not interact.
    for (let batch = 1; batch < 50; batch += 10) {
      await Promise.all(
        Array.from({ length: Math.min(10, 50 - batch) }, (_, offset) => deployInstance(batch + offset)),
      );
    }
    counter.reset();
    const fifty = await provider.list();
    const callsWithFifty = counter.count;
    expect(fifty.filter((summary) => summary.name.startsWith('fleet-'))).toHaveLength(50);
    expect(fifty.every((summary) => summary.state === 'running')).toBe(true);
    expect(callsWithFifty).toBe(callsWithOne);
    callCounts['list (1 instance)'] = callsWithOne;
    callCounts['list (50 instances)'] = callsWithFifty;
    counter.reset();
    await provider.get('fleet-7');
    callCounts['get'] = counter.count;
    console.log(`API calls: ${JSON.stringify(callCounts, null, 2)}`);
  }, 600_000);
});
