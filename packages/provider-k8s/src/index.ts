export { type InstanceRecord, type StoredPlanV2, storePlan } from './instance-record.js';
export { keywardPolicyRules, keywardRole, keywardRoleBinding, keywardRoleName } from './keyward-rbac.js';
export { fieldManager, type KubernetesRequest } from './kubernetes-api.js';
export {
  createKubernetesProvider,
  KubernetesProvider,
  type KubernetesProviderSettings,
  VERSION,
} from './kubernetes-target-provider.js';
export {
  buildManifests,
  type InstanceManifests,
  kubernetesLabelKeys,
  type ManifestInput,
} from './manifests.js';
export { agentHostName, boundedName, instanceNamespace, instanceObjectName } from './object-names.js';
export {
  type KubernetesTargetOptions,
  type KubernetesTargetOptionsInput,
  kubernetesTargetOptionsSchema,
} from './target-options.js';
