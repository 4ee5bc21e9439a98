// The shipped Role, checked by the real API server's RBAC authorizer: keyward impersonates its
// ServiceAccount and does everything it does; requests outside the Role are refused; the
// agent's ServiceAccount can read no Secret. (No kubelet: pod statuses are written by the
// test as the admin, and the test names say so.)
import { composeRotationV2, labelKeys } from '@keyward/core';
import type { KubeConfig } from '@kubernetes/client-node';
import { HttpMethod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKubernetesProvider, keywardRole, keywardRoleBinding } from '../src/index.js';
import { KubernetesApi, statusOf } from '../src/kubernetes-api.js';
import { podStatusWriter } from '../src/testing/index.js';
import {
  type ControlPlane,
  impersonating,
  kubeConfigOf,
  startControlPlane,
} from './support/control-plane.js';
import type { AnyObject } from './support/object-queries.js';
import { fixturePlan, fixtureSidecars, fixtureSpec, sequenceBytes } from './support/plan-fixtures.js';

let controlPlane: ControlPlane;
let admin: KubeConfig;
let adminApi: KubernetesApi;
let kubelet: ReturnType<typeof podStatusWriter>;
const managed = 'keyward-agents';

beforeAll(async () => {
  controlPlane = await startControlPlane();
  admin = kubeConfigOf(controlPlane);
  adminApi = new KubernetesApi({ kubeConfig: admin });
  for (const name of ['keyward-system', managed]) {
    await adminApi.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  }
  await adminApi.apply({
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { name: 'keyward', namespace: 'keyward-system' },
  });
  await adminApi.apply(keywardRole(managed));
  await adminApi.apply(keywardRoleBinding(managed, { name: 'keyward', namespace: 'keyward-system' }));
  kubelet = podStatusWriter({ kubeConfig: admin }).start();
});

afterAll(async () => {
  await kubelet?.stop();
  await controlPlane?.stop();
});

async function refused(action: () => Promise<unknown>): Promise<number | undefined> {
  try {
    await action();
    return undefined;
  } catch (error) {
    return statusOf(error) ?? causeStatus(error);
  }
}

function causeStatus(error: unknown): number | undefined {
  return statusOf((error as { cause?: unknown }).cause);
}

async function canI(api: KubernetesApi, namespace: string, verb: string, resource: string, subresource = '') {
  const review = await api.request<{ status: { allowed: boolean } }>(
    HttpMethod.POST,
    '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews',
    {
      body: {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SelfSubjectAccessReview',
        spec: { resourceAttributes: { namespace, verb, resource, subresource } },
      },
    },
  );
  return review.status.allowed;
}

describe('keyward as its ServiceAccount with the shipped Role', () => {
  it('does every operation in its namespace: apply, get, list, stop, start, restart, rotate, delete (pod status written by the test)', async () => {
    const asKeyward = impersonating(admin, 'keyward-system', 'keyward');
    const provider = createKubernetesProvider({
      kubeConfig: asKeyward,
      namespaces: [managed],
      pollIntervalMs: 200,
      rolloutTimeoutMs: 60_000,
    });
    const targetOptions = { namespace: managed };
    const plan = await fixturePlan(provider, { name: 'rbac', targetOptions });
    expect((await provider.apply(plan)).state).toBe('running');
    expect((await provider.apply(plan)).state).toBe('running');
    expect((await provider.list()).map((summary) => summary.name)).toEqual(['rbac']);
    await provider.stop('rbac');
    await provider.start('rbac');
    await provider.restart('rbac');
    const spec = fixtureSpec({ name: 'rbac', targetOptions });
    const request = await composeRotationV2({
      spec,
      providerId: 'proxy',
      change: { credentials: [{ name: 'github', secret: 'ghp_rotated_under_rbac_0000000' }] },
      sidecars: { getSidecar: (id) => fixtureSidecars.get(id) },
      target: provider,
      readState: (providerId) => provider.readSidecarState('rbac', providerId),
      randomBytes: sequenceBytes(),
    });
    await provider.rotateSecrets('rbac', request);
    expect((await provider.readSidecarState('rbac', 'proxy')).metadata).toEqual({ credentials: ['github'] });
    const keywardApi = new KubernetesApi({ kubeConfig: asKeyward });
    // Logs and exec need a kubelet; the authorizer still says whether the Role allows them.
    expect(await canI(keywardApi, managed, 'get', 'pods', 'log')).toBe(true);
    expect(await canI(keywardApi, managed, 'create', 'pods', 'exec')).toBe(true);
    await provider.delete('rbac', { removeVolumes: true });
    expect(await adminApi.list('v1', 'Secret', managed, `${labelKeys.instance}=rbac`)).toEqual([]);
  });

  it('is refused what the Role does not grant: other namespaces, namespaces, RBAC, nodes', async () => {
    const keywardApi = new KubernetesApi({ kubeConfig: impersonating(admin, 'keyward-system', 'keyward') });
    expect(await refused(() => keywardApi.list('v1', 'Secret', 'default', ''))).toBe(403);
    expect(await refused(() => keywardApi.list('v1', 'Secret', undefined, ''))).toBe(403);
    expect(
      await refused(() =>
        keywardApi.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'keyward-stolen' } }),
      ),
    ).toBe(403);
    expect(
      await refused(() =>
        keywardApi.apply({
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'Role',
          metadata: { name: 'more', namespace: managed },
        }),
      ),
    ).toBe(403);
    expect(await canI(keywardApi, managed, 'escalate', 'roles')).toBe(false);
    expect(await canI(keywardApi, '', 'list', 'nodes')).toBe(false);
  });

  it('cannot use a namespace per instance: apply fails at its first request, says why, creates nothing', async () => {
    const provider = createKubernetesProvider({
      kubeConfig: impersonating(admin, 'keyward-system', 'keyward'),
      pollIntervalMs: 200,
    });
    const plan = await fixturePlan(provider, { name: 'own-namespace', targetOptions: {} });
    // Its first request, a read in that namespace, is already refused; nothing was created.
    await expect(provider.apply(plan)).rejects.toMatchObject({
      code: 'DEPLOY_FAILED',
      details: { step: 'inspect' },
      message: expect.stringMatching(/HTTP 403: .*forbidden/),
    });
    expect(await adminApi.read('v1', 'Namespace', undefined, 'keyward-own-namespace')).toBeUndefined();
    // With managed namespaces configured, it refuses before any request.
    const scoped = createKubernetesProvider({
      kubeConfig: impersonating(admin, 'keyward-system', 'keyward'),
      namespaces: [managed],
    });
    await expect(scoped.apply(plan)).rejects.toMatchObject({ code: 'INVALID_INPUT' });
  });
});

describe("the agent's ServiceAccount", () => {
  it('can read no Secret, not even its own instance Secrets (asked of the real authorizer)', async () => {
    const provider = createKubernetesProvider({
      kubeConfig: admin,
      pollIntervalMs: 200,
      rolloutTimeoutMs: 60_000,
    });
    const plan = await fixturePlan(provider, { name: 'agent-sa', targetOptions: {} });
    await provider.apply(plan);
    const namespace = 'keyward-agent-sa';
    const agentApi = new KubernetesApi({ kubeConfig: impersonating(admin, namespace, 'kw-agent-sa-agent') });
    expect(await refused(() => agentApi.list('v1', 'Secret', namespace, ''))).toBe(403);
    expect(await refused(() => agentApi.read('v1', 'Secret', namespace, 'kw-agent-sa-secrets-proxy'))).toBe(
      403,
    );
    expect(await refused(() => agentApi.read('v1', 'Secret', namespace, 'kw-agent-sa-secrets-agent'))).toBe(
      403,
    );
    expect(await refused(() => agentApi.list('v1', 'ConfigMap', namespace, ''))).toBe(403);
    expect(await refused(() => agentApi.list('v1', 'Pod', namespace, ''))).toBe(403);
    for (const [verb, resource] of [
      ['get', 'secrets'],
      ['list', 'secrets'],
      ['watch', 'secrets'],
      ['create', 'pods'],
      ['get', 'configmaps'],
    ] as const) {
      expect(await canI(agentApi, namespace, verb, resource), `${verb} ${resource}`).toBe(false);
    }
    // And its pod gets no token to ask with in the first place.
    const deployment = await adminApi.read<AnyObject>(
      'apps/v1',
      'Deployment',
      namespace,
      'kw-agent-sa-agent',
    );
    expect(deployment?.spec.template.spec.automountServiceAccountToken).toBe(false);
    await provider.delete('agent-sa', { removeVolumes: true });
  });
});
