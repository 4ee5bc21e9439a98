import type { JsonObject } from '../v1/json-value.js';
import type { NetworkMode } from '../v1/network-mode.js';
import type {
  ConnectionV2,
  ContainerContributionV2,
  ContainerPortV2,
  PlanWarningV2,
  SecretContributionV2,
  SecretDeliveryV2,
} from './contribution-v2.js';

export interface PlannedFileV2 {
  /** Absolute path inside the container. */
  path: string;
  content: string;
  mode: number;
  providerId: string;
}

export interface PlannedSecretMountV2 {
  secret: string;
  delivery: SecretDeliveryV2;
}

export interface PlannedVolumeV2 {
  /** A DNS label unique within the instance. */
  name: string;
  /** Absolute path inside the container. */
  path: string;
}

export interface PlannedContainerV2 extends Omit<ContainerContributionV2, 'ports' | 'env'> {
  role: 'agent' | 'sidecar';
  /** `agent` for the agent, else the sidecar provider's id. */
  providerId: string;
  env: Record<string, string>;
  ports: ContainerPortV2[];
  labels: Record<string, string>;
  files: PlannedFileV2[];
  secretMounts: PlannedSecretMountV2[];
  /** Writable directories that outlive the container (the agent's state). */
  volumes: PlannedVolumeV2[];
  /** Containers that must be ready before this one starts: the providers it depends on. */
  startAfter: string[];
}

export interface PlannedSecretV2 extends SecretContributionV2 {
  providerId: string;
  labels: Record<string, string>;
}

/** A request as the plan keeps it: without its payload, which may have held a raw value. */
export interface PlannedRequestV2 {
  id: string;
  provider: string;
  kind: string;
  container: string;
}

export interface PlannedSidecarV2 {
  providerId: string;
  containerNames: string[];
  secretNames: string[];
  /** Agent env keys this sidecar contributed, so a rotation can replace exactly them. */
  agentEnvKeys: string[];
  /** Agent file paths this sidecar contributed. */
  agentFilePaths: string[];
  /** Providers of this plan it requires (required ones and optional ones that are present). */
  requires: string[];
  /** What it asked of other providers; a rotation replays these without payload. */
  requests: PlannedRequestV2[];
  exports: JsonObject;
  connections: ConnectionV2[];
  metadata: JsonObject;
}

/**
 * A target-neutral plan: what runs, who may reach what, which secret each container sees.
 * Runtime names, networks, Services and published ports are the target's to choose.
 */
export interface DeploymentPlanV2 {
  readonly specificationVersion: 'v2';
  instance: { name: string; target: string };
  networkMode: NetworkMode;
  /** Labels every runtime object of the instance carries. */
  labels: Record<string, string>;
  /** The agent first, then sidecars in dependency order (a provider after those it requires). */
  containers: PlannedContainerV2[];
  secrets: PlannedSecretV2[];
  /** In dependency order. */
  sidecars: PlannedSidecarV2[];
  /**
   * Every allowed connection between the instance's containers. In `proxy-only` targets allow
   * exactly these; in `open` every container shares one network namespace and these are informative.
   */
  connections: ConnectionV2[];
  /** Ports that may be reached from outside the instance (the agent's own port). */
  ingress: { container: string; port: number }[];
  /** The instance's options for its target, validated by the target's `configSchema`. */
  targetOptions: JsonObject;
  /** The instance spec with every secret removed; targets persist it for list/get/rotation. */
  redactedSpec: JsonObject;
  warnings: PlanWarningV2[];
}
