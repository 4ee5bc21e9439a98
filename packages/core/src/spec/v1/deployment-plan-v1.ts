import type {
  ContainerContributionV1,
  PlanWarningV1,
  SecretContributionV1,
  SecretDeliveryV1,
} from './contribution-v1.js';
import type { JsonObject } from './json-value.js';
import type { NetworkMode } from './network-mode.js';

export interface PlannedFileV1 {
  /** Absolute path inside the container. */
  path: string;
  content: string;
  mode: number;
  providerId: string;
}

export interface PlannedSecretMountV1 {
  secret: string;
  delivery: SecretDeliveryV1;
}

export interface PlannedContainerV1 extends ContainerContributionV1 {
  role: 'agent' | 'sidecar';
  /** `agent` for the agent, else the sidecar provider's id. */
  providerId: string;
  /** Name in the runtime: `keyward-<instance>-<name>`. */
  runtimeName: string;
  env: Record<string, string>;
  labels: Record<string, string>;
  files: PlannedFileV1[];
  secretMounts: PlannedSecretMountV1[];
}

export interface PlannedSecretV1 extends SecretContributionV1 {
  providerId: string;
  runtimeName: string;
  labels: Record<string, string>;
}

export interface PlannedSidecarV1 {
  providerId: string;
  containerNames: string[];
  secretNames: string[];
  /** Agent env keys this sidecar contributed, so a rotation can replace exactly them. */
  agentEnvKeys: string[];
  /** Agent file paths this sidecar contributed. */
  agentFilePaths: string[];
  metadata: JsonObject;
}

export interface PlannedNetworkV1 {
  mode: NetworkMode;
  /** proxy-only: the network the agent is alone on with the sidecars, with no route out. */
  internalNetwork?: string;
  /** proxy-only: the network that gives sidecars with `egress: internet` a way out. */
  egressNetwork?: string;
}

export interface DeploymentPlanV1 {
  readonly specificationVersion: 'v1';
  instance: { name: string; target: string };
  network: PlannedNetworkV1;
  /** Labels every runtime object of the instance carries. */
  labels: Record<string, string>;
  /** The agent first, then sidecars in a stable order. Targets start sidecars first. */
  containers: PlannedContainerV1[];
  secrets: PlannedSecretV1[];
  sidecars: PlannedSidecarV1[];
  /** Published agent port on the host. */
  publish: { container: string; containerPort: number; hostPort: number | null; hostAddress: string }[];
  /** The instance spec with every secret removed; targets persist it for list/get/rotation. */
  redactedSpec: JsonObject;
  warnings: PlanWarningV1[];
}
