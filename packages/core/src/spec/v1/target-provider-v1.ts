import type { PlanWarningV1 } from './contribution-v1.js';
import type {
  DeploymentPlanV1,
  PlannedContainerV1,
  PlannedFileV1,
  PlannedSecretV1,
  PlannedSidecarV1,
} from './deployment-plan-v1.js';
import type { JsonObject } from './json-value.js';
import type { NetworkMode } from './network-mode.js';
import type { SidecarRotationStateV1 } from './sidecar-provider-v1.js';

export interface DetectionResultV1 {
  available: boolean;
  /** Which strategy found the runtime (`DOCKER_HOST`, `rootless podman socket` …). */
  strategy?: string;
  runtime?: { name: string; version?: string; endpoint?: string };
  /** When not available: what was tried and how to get a runtime. */
  reason?: string;
  hint?: string;
}

export type ProgressStatusV1 = 'started' | 'succeeded' | 'failed' | 'info';

export interface ProgressEventV1 {
  /** Stable step id (`network.create`, `container.start:tokenizer`). */
  step: string;
  status: ProgressStatusV1;
  message: string;
  time: string;
}

export type ProgressListenerV1 = (event: ProgressEventV1) => void;

export interface OperationOptionsV1 {
  onProgress?: ProgressListenerV1;
  signal?: AbortSignal;
}

export type InstanceStateV1 = 'running' | 'stopped' | 'partial' | 'failed' | 'unknown';

export interface ContainerStatusV1 {
  name: string;
  providerId: string;
  image: string;
  state: string;
  running: boolean;
}

export interface InstanceSummaryV1 {
  name: string;
  target: string;
  state: InstanceStateV1;
  networkMode: NetworkMode;
  containers: ContainerStatusV1[];
  /** Agent port on the host, when published. */
  agentUrl?: string;
  createdAt?: string;
}

export interface InstanceDetailV1 extends InstanceSummaryV1 {
  redactedSpec: JsonObject;
  sidecars: { providerId: string; metadata: JsonObject }[];
}

export interface LogOptionsV1 {
  follow?: boolean;
  container?: string;
  tail?: number;
  signal?: AbortSignal;
}

export interface LogLineV1 {
  container: string;
  stream: 'stdout' | 'stderr';
  line: string;
}

export interface SidecarRotationRequestV1 {
  providerId: string;
  /** The sidecar's new part of the plan, resolved by the composer. */
  sidecar: PlannedSidecarV1;
  containers: PlannedContainerV1[];
  secrets: PlannedSecretV1[];
  /**
   * The agent's new non-secret env from this sidecar. The target removes the keys in its
   * stored `sidecar.agentEnvKeys` and `agentFilePaths` for this provider, then adds these,
   * and agent-visible secrets from `secrets`; every other part of the agent stays as it was.
   */
  agentEnv: Record<string, string>;
  agentFiles: PlannedFileV1[];
  redactedSpec: JsonObject;
}

export interface VerifyCheckV1 {
  name:
    | 'direct-egress-blocked'
    | 'proxied-request-injected'
    | 'unbound-host-refused'
    | 'self-sealed-token-refused'
    | string;
  passed: boolean;
  /** What was observed (status codes, error codes), never a secret. */
  evidence: string;
}

export interface VerifyResultV1 {
  passed: boolean;
  checks: VerifyCheckV1[];
}

export interface VerifyOptionsV1 {
  /** URL of an allowed upstream for the proxied check; defaults to the first bound host. */
  allowedUrl?: string;
  /** A host the credential is not bound to. */
  unboundUrl?: string;
  /** Credential to use; defaults to the first one. */
  credential?: string;
  /** Where to try a direct connection from the agent (should fail in proxy-only). */
  directUrl?: string;
  /**
   * A token sealed with the instance's public seal key outside keyward (what a compromised
   * agent could make itself): the proxy must refuse it. When given, the self-test adds the
   * check `self-sealed-token-refused`. Not a secret: the agent can seal one on its own.
   */
  selfSealedToken?: string;
}

export interface TargetCapabilitiesV1 {
  networkModes: readonly NetworkMode[];
  rotation: boolean;
  render: boolean;
  verify: boolean;
  logsFollow: boolean;
}

export interface TargetProviderV1 {
  readonly specificationVersion: 'v1';
  /** `local`, `k8s`. */
  readonly id: string;
  readonly displayName?: string;
  readonly capabilities: TargetCapabilitiesV1;
  detect(): Promise<DetectionResultV1>;
  /** Idempotent. On failure removes everything it created for the instance and names the failed step. */
  apply(plan: DeploymentPlanV1, options?: OperationOptionsV1): Promise<InstanceDetailV1>;
  /** One runtime call, whatever the number of instances. */
  list(): Promise<InstanceSummaryV1[]>;
  /** Throws `INSTANCE_NOT_FOUND`. */
  get(name: string): Promise<InstanceDetailV1>;
  start(name: string, options?: OperationOptionsV1): Promise<void>;
  stop(name: string, options?: OperationOptionsV1): Promise<void>;
  restart(name: string, options?: OperationOptionsV1): Promise<void>;
  logs(name: string, options?: LogOptionsV1): AsyncIterable<LogLineV1>;
  delete(name: string, options?: OperationOptionsV1 & { removeVolumes?: boolean }): Promise<void>;
  /** Current metadata and secret values of one sidecar, for its provider's `rotate`. */
  readSidecarState?(name: string, providerId: string): Promise<SidecarRotationStateV1>;
  /** Atomic: the new credentials work, or the old ones still do. */
  rotateSecrets?(
    name: string,
    request: SidecarRotationRequestV1,
    options?: OperationOptionsV1,
  ): Promise<InstanceDetailV1>;
  verify?(name: string, options?: VerifyOptionsV1): Promise<VerifyResultV1>;
  /** Manifests for GitOps users, where the target has them. */
  render?(plan: DeploymentPlanV1): Promise<string> | string;
  warnings?: PlanWarningV1[];
}
