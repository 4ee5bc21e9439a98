import type { V1PolicyRule, V1Role, V1RoleBinding } from '@kubernetes/client-node';

/**
 * Every kind and verb the Kubernetes target uses in a namespace it manages, and nothing else:
 * keyward running in a cluster gets this Role in each managed namespace (and no ClusterRole
 * when its instances name those namespaces). The agents' own ServiceAccounts get no RBAC.
 */
export const keywardPolicyRules: V1PolicyRule[] = [
  {
    apiGroups: [''],
    resources: ['configmaps', 'secrets', 'serviceaccounts', 'services', 'persistentvolumeclaims'],
    verbs: ['get', 'list', 'create', 'patch', 'update', 'delete'],
  },
  // Status and logs of the instances' pods; exec for the self-tests (WebSocket exec needs `create`).
  { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list'] },
  { apiGroups: [''], resources: ['pods/log'], verbs: ['get'] },
  { apiGroups: [''], resources: ['pods/exec'], verbs: ['get', 'create'] },
  {
    apiGroups: ['apps'],
    resources: ['deployments'],
    verbs: ['get', 'list', 'create', 'patch', 'update', 'delete'],
  },
  {
    apiGroups: ['networking.k8s.io'],
    resources: ['networkpolicies'],
    verbs: ['get', 'list', 'create', 'patch', 'update', 'delete'],
  },
  // The rotation lock shared by keyward replicas.
  {
    apiGroups: ['coordination.k8s.io'],
    resources: ['leases'],
    verbs: ['get', 'list', 'create', 'update', 'delete'],
  },
];

export const keywardRoleName = 'keyward-instances';

export function keywardRole(namespace: string): V1Role {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: {
      name: keywardRoleName,
      namespace,
      labels: { 'app.kubernetes.io/name': 'keyward', 'app.kubernetes.io/component': 'rbac' },
    },
    rules: keywardPolicyRules,
  };
}

export function keywardRoleBinding(
  namespace: string,
  serviceAccount: { name: string; namespace: string },
): V1RoleBinding {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: {
      name: keywardRoleName,
      namespace,
      labels: { 'app.kubernetes.io/name': 'keyward', 'app.kubernetes.io/component': 'rbac' },
    },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: keywardRoleName },
    subjects: [{ kind: 'ServiceAccount', name: serviceAccount.name, namespace: serviceAccount.namespace }],
  };
}
