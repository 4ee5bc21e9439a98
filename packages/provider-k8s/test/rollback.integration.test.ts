// apply → failure → rollback, against the real control plane (scripts/k8s; no kubelet: pod
// statuses are written by the test, and the test names say so).
import { isKeywardError, labelKeys, type ProgressEventV2 } from '@keyward/core';
import type { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKubernetesProvider } from '../src/index.js';
import { KubernetesApi } from '../src/kubernetes-api.js';
import { podStatusWriter } from '../src/testing/index.js';
import { type ControlPlane, kubeConfigOf, startControlPlane } from './support/control-plane.js';
import type { AnyObject } from './support/object-queries.js';
import { fixturePlan } from './support/plan-fixtures.js';

let controlPlane: ControlPlane;
let kubeConfig: KubeConfig;
let api: KubernetesApi;
let kubelet: ReturnType<typeof podStatusWriter>;
let failingImage: string | undefined;

beforeAll(async () => {
  controlPlane = await startControlPlane();
  kubeConfig = kubeConfigOf(controlPlane);
  api = new KubernetesApi({ kubeConfig });
  kubelet = podStatusWriter({
    kubeConfig,
    outcome: (_pod, container) =>
      container.image === failingImage
        ? { waiting: { reason: 'ImagePullBackOff', message: `Back-off pulling image "${container.image}"` } }
        : { running: true },
  }).start();
});

afterAll(async () => {
  await kubelet?.stop();
  await controlPlane?.stop();
});

async function everythingOf(namespace: string, instance: string): Promise<string[]> {
  const found: string[] = [];
  for (const [apiVersion, kind] of [
    ['apps/v1', 'Deployment'],
    ['v1', 'Service'],
    ['networking.k8s.io/v1', 'NetworkPolicy'],
    ['v1', 'Secret'],
    ['v1', 'ConfigMap'],
    ['v1', 'ServiceAccount'],
    ['v1', 'PersistentVolumeClaim'],
  ] as const) {
    for (const object of await api.list(apiVersion, kind, namespace, `${labelKeys.instance}=${instance}`)) {
      found.push(`${kind}/${object.metadata?.name}`);
    }
  }
  return found.sort();
}

describe('apply rollback', () => {
  it('a failure injected before the agent Deployment removes everything this apply created, namespace included', async () => {
    const provider = createKubernetesProvider({
      kubeConfig,
      pollIntervalMs: 200,
      rolloutTimeoutMs: 30_000,
      beforeStep: (step) => {
        if (step === 'deployment.apply:agent') throw new Error('injected failure');
      },
    });
    const plan = await fixturePlan(provider, { name: 'rb-fresh', targetOptions: {} });
    const events: ProgressEventV2[] = [];
    await expect(provider.apply(plan, { onProgress: (event) => events.push(event) })).rejects.toMatchObject({
      code: 'DEPLOY_FAILED',
      details: { step: 'deployment.apply:agent' },
    });
    expect(events.filter((event) => event.step === 'rollback').map((event) => event.status)).toEqual([
      'started',
      'succeeded',
    ]);
    expect(await everythingOf('keyward-rb-fresh', 'rb-fresh')).toEqual([]);
    const namespace = await api.read<AnyObject>('v1', 'Namespace', undefined, 'keyward-rb-fresh');
    expect(namespace === undefined || namespace.status?.phase === 'Terminating').toBe(true);
  });

  it('an image that cannot be pulled fails the rollout with the kubelet message and rolls back (status written by the test)', async () => {
    const provider = createKubernetesProvider({ kubeConfig, pollIntervalMs: 200, rolloutTimeoutMs: 30_000 });
    const plan = await fixturePlan(provider, {
      name: 'rb-pull',
      mode: 'open',
      targetOptions: { namespace: 'default' },
    });
    failingImage = 'localhost/keyward-litellm:0.1.0';
    try {
      await provider.apply(plan);
      expect.unreachable('apply should fail');
    } catch (error) {
      expect(isKeywardError(error, 'DEPLOY_FAILED')).toBe(true);
      expect((error as Error).message).toMatch(/rollout:agent.*ImagePullBackOff.*Back-off pulling image/);
    } finally {
      failingImage = undefined;
    }
    expect(await everythingOf('default', 'rb-pull')).toEqual([]);
    // The given namespace is the user's: never removed.
    expect(await api.read('v1', 'Namespace', undefined, 'default')).toBeDefined();
  });

  it('a failed update restores what it changed (re-reading resourceVersions) and removes what it added', async () => {
    const provider = createKubernetesProvider({ kubeConfig, pollIntervalMs: 200, rolloutTimeoutMs: 30_000 });
    const first = await fixturePlan(provider, { name: 'rb-update', targetOptions: {} });
    await provider.apply(first);
    const namespace = 'keyward-rb-update';
    const before = new Map(
      (await api.list<AnyObject>('v1', 'Secret', namespace, `${labelKeys.instance}=rb-update`)).map(
        (secret) => [secret.metadata.name, secret.data],
      ),
    );
    const agentBefore = await api.read<AnyObject>('apps/v1', 'Deployment', namespace, 'kw-rb-update-agent');
    // A new plan: other credentials (new Secret values), no gateway, an extra state directory.
    const failing = createKubernetesProvider({
      kubeConfig,
      pollIntervalMs: 200,
      rolloutTimeoutMs: 30_000,
      beforeStep: (step) => {
        if (step === 'rollout:agent') throw new Error('injected failure after the agent Deployment changed');
      },
    });
    const second = await fixturePlan(provider, {
      name: 'rb-update',
      targetOptions: {},
      credentials: [{ name: 'github', secret: 'ghp_other_raw_credential_42424242' }],
      stateDirectories: ['/home/agent/.agent', '/workspace'],
    });
    await expect(failing.apply(second)).rejects.toMatchObject({ details: { step: 'rollout:agent' } });
    const after = new Map(
      (await api.list<AnyObject>('v1', 'Secret', namespace, `${labelKeys.instance}=rb-update`)).map(
        (secret) => [secret.metadata.name, secret.data],
      ),
    );
    expect(after).toEqual(before);
    const agentAfter = await api.read<AnyObject>('apps/v1', 'Deployment', namespace, 'kw-rb-update-agent');
    expect(agentAfter?.spec.template).toEqual(agentBefore?.spec.template);
    expect(agentAfter?.metadata.annotations['keyward.dev/plan-digest']).toBe(
      agentBefore?.metadata.annotations['keyward.dev/plan-digest'],
    );
    // The restored Deployment's pods come back through the controller, and this test's status
    // writer (there is no kubelet) marks them running a moment later: wait for that, bounded.
    let state = (await provider.get('rb-update')).state;
    for (let attempt = 0; attempt < 50 && state !== 'running'; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      state = (await provider.get('rb-update')).state;
    }
    expect(state).toBe('running');
    await provider.delete('rb-update', { removeVolumes: true });
  });
});
