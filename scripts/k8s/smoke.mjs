// Smoke check of the test control plane: node scripts/k8s/smoke.mjs
//
// Builds it if needed, starts it, and uses it through @kubernetes/client-node the
// way provider-k8s will: a namespace, a server-side applied Deployment that the
// controller manager turns into a ReplicaSet and a Pod, a Lease, and a request
// as a ServiceAccount that RBAC refuses. Prints timings; exits non-zero on failure.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  ApiException,
  AppsV1Api,
  CoordinationV1Api,
  CoreV1Api,
  KubeConfig,
  KubernetesObjectApi,
  PatchStrategy,
  RbacAuthorizationV1Api,
} from '@kubernetes/client-node';
import { buildControlPlane, startControlPlane } from './control-plane.mjs';

const timings = {};
async function timed(name, action) {
  const startedAt = performance.now();
  try {
    return await action();
  } finally {
    timings[name] = `${Math.round(performance.now() - startedAt)} ms`;
  }
}

async function eventually(description, check, timeoutMilliseconds = 30_000) {
  const deadline = Date.now() + timeoutMilliseconds;
  for (;;) {
    const result = await check();
    if (result) return result;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${description}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** The HTTP status of a refused call, or 'succeeded'. */
async function statusOf(call) {
  try {
    await call();
    return 'succeeded';
  } catch (error) {
    if (error instanceof ApiException) return error.code;
    throw error;
  }
}

await timed('build (first call: cold if it compiled, else warm)', () => buildControlPlane());
const { binDirectory } = await timed('build (second call, warm)', () => buildControlPlane());
const controlPlane = await timed('start', () => startControlPlane({ binDirectory }));
try {
  const kubeconfig = new KubeConfig();
  kubeconfig.loadFromFile(controlPlane.kubeconfigPath);
  const core = kubeconfig.makeApiClient(CoreV1Api);
  const apps = kubeconfig.makeApiClient(AppsV1Api);
  const coordination = kubeconfig.makeApiClient(CoordinationV1Api);
  const rbac = kubeconfig.makeApiClient(RbacAuthorizationV1Api);
  const objects = KubernetesObjectApi.makeApiClient(kubeconfig);

  const namespace = 'keyward-smoke';
  await timed('create namespace', () => core.createNamespace({ body: { metadata: { name: namespace } } }));

  const labels = { 'app.kubernetes.io/name': 'smoke', 'app.kubernetes.io/managed-by': 'keyward' };
  const deployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'agent', namespace, labels },
    spec: {
      replicas: 1,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          automountServiceAccountToken: false,
          containers: [{ name: 'agent', image: 'localhost/keyward-smoke:never-pulled' }],
        },
      },
    },
  };
  const applied = await timed('server-side apply Deployment', () =>
    objects.patch(deployment, undefined, undefined, 'keyward', true, PatchStrategy.ServerSideApply),
  );
  assert.ok(
    applied.metadata.managedFields.some(
      (entry) => entry.manager === 'keyward' && entry.operation === 'Apply',
    ),
    'the Deployment is managed by field manager keyward through Apply',
  );

  const replicaSet = await timed('controller manager creates the ReplicaSet', () =>
    eventually('a ReplicaSet', async () => (await apps.listNamespacedReplicaSet({ namespace })).items[0]),
  );
  assert.equal(replicaSet.metadata.ownerReferences[0].name, 'agent');
  const pod = await timed('controller manager creates the Pod', () =>
    eventually('a Pod', async () => (await core.listNamespacedPod({ namespace })).items[0]),
  );
  assert.equal(pod.metadata.ownerReferences[0].name, replicaSet.metadata.name);
  // No kubelet and no scheduler: the pod exists but never runs.
  assert.equal(pod.status.phase, 'Pending');
  assert.equal(pod.spec.nodeName, undefined);

  await timed('create Lease', () =>
    coordination.createNamespacedLease({
      namespace,
      body: {
        metadata: { name: 'rotation-lock' },
        spec: {
          holderIdentity: 'smoke',
          leaseDurationSeconds: 15,
          acquireTime: new Date(),
          renewTime: new Date(),
        },
      },
    }),
  );
  const lease = await coordination.readNamespacedLease({ name: 'rotation-lock', namespace });
  assert.equal(lease.spec.holderIdentity, 'smoke');

  // A ServiceAccount allowed to read Leases and nothing else, asked through impersonation.
  await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'agent' } } });
  await rbac.createNamespacedRole({
    namespace,
    body: {
      metadata: { name: 'read-leases' },
      rules: [{ apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get'] }],
    },
  });
  await rbac.createNamespacedRoleBinding({
    namespace,
    body: {
      metadata: { name: 'agent-reads-leases' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'read-leases' },
      subjects: [{ kind: 'ServiceAccount', name: 'agent', namespace }],
    },
  });
  const asServiceAccount = new KubeConfig();
  asServiceAccount.loadFromOptions({
    clusters: kubeconfig.clusters,
    contexts: kubeconfig.contexts,
    currentContext: kubeconfig.currentContext,
    users: [{ ...kubeconfig.getCurrentUser(), impersonateUser: `system:serviceaccount:${namespace}:agent` }],
  });
  const coreAsServiceAccount = asServiceAccount.makeApiClient(CoreV1Api);
  const coordinationAsServiceAccount = asServiceAccount.makeApiClient(CoordinationV1Api);
  const secretsStatus = await statusOf(() => coreAsServiceAccount.listNamespacedSecret({ namespace }));
  assert.equal(secretsStatus, 403, 'RBAC refuses the ServiceAccount a list of Secrets');
  // RBAC grants may take a moment to reach the authorizer's cache.
  await eventually(
    'the RoleBinding to take effect',
    async () =>
      (await statusOf(() =>
        coordinationAsServiceAccount.readNamespacedLease({ name: 'rotation-lock', namespace }),
      )) === 'succeeded',
    10_000,
  );

  await timed('delete namespace', () => core.deleteNamespace({ name: namespace }));
  console.log(
    JSON.stringify(
      {
        ok: true,
        server: controlPlane.server,
        version: execFileSync(`${binDirectory}/kube-apiserver`, ['--version']).toString().trim(),
        pod: { name: pod.metadata.name, phase: pod.status.phase },
        serviceAccountListingSecrets: secretsStatus,
        timings,
      },
      null,
      2,
    ),
  );
} finally {
  await timed('stop', () => controlPlane.stop());
  console.error(`[smoke] stop took ${timings.stop}`);
}
