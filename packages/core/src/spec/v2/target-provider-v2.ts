import type { z } from 'zod';
import type { JsonObject } from '../v1/json-value.js';
import type { NetworkMode } from '../v1/network-mode.js';
import type {
  ContainerStatusV1,
  DetectionResultV1,
  InstanceStateV1,
  LogLineV1,
  LogOptionsV1,
  OperationOptionsV1,
  ProgressEventV1,
  ProgressListenerV1,
} from '../v1/target-provider-v1.js';
import type { PlanWarningV2 } from './contribution-v2.js';
import type {
  DeploymentPlanV2,
  PlannedContainerV2,
  PlannedFileV2,
  PlannedSecretV2,
  PlannedSidecarV2,
} from './deployment-plan-v2.js';
import type { SidecarStateV2 } from './sidecar-provider-v2.js';
import type { ExecRequestV2, ExecResultV2, VerifyCheckV2 } from './verification-v2.js';

export type DetectionResultV2 = DetectionResultV1;
export type ProgressEventV2 = ProgressEventV1;
export type ProgressListenerV2 = ProgressListenerV1;
export type OperationOptionsV2 = OperationOptionsV1;
export type InstanceStateV2 = InstanceStateV1;
export type ContainerStatusV2 = ContainerStatusV1;
export type LogOptionsV2 = LogOptionsV1;
export type LogLineV2 = LogLineV1;

/** One end of a connection, as the target needs it to choose an address. */
export interface AddressEndpointV2 {
  container: string;
  role: 'agent' | 'sidecar';
}

export interface AddressRequestV2 {
  instanceName: string;
  networkMode: NetworkMode;
  targetOptions: JsonObject;
  from: AddressEndpointV2;
  to: AddressEndpointV2;
  port: number;
}

export interface InstanceSummaryV2 {
  name: string;
  target: string;
  state: InstanceStateV2;
  networkMode: NetworkMode;
  containers: ContainerStatusV2[];
  /** Where an operator reaches the agent, when the target exposes it. */
  agentUrl?: string;
  createdAt?: string;
}

export interface InstanceDetailV2 extends InstanceSummaryV2 {
  redactedSpec: JsonObject;
  sidecars: { providerId: string; metadata: JsonObject; exports: JsonObject }[];
}

/** One sidecar's new part of the plan in a rotation, resolved by the composer. */
export interface RotationPartV2 {
  providerId: string;
  sidecar: PlannedSidecarV2;
  containers: PlannedContainerV2[];
  secrets: PlannedSecretV2[];
  /**
   * The agent's new non-secret env from this sidecar. The target removes the keys in its stored
   * `agentEnvKeys` and `agentFilePaths` for this provider, then adds these, and agent-visible
   * secrets from `secrets`; every other part of the agent stays as it was.
   */
  agentEnv: Record<string, string>;
  agentFiles: PlannedFileV2[];
}

export interface SidecarRotationRequestV2 {
  /** The provider whose change this is. */
  providerId: string;
  /**
   * Its new part first, then the parts of the providers that depend on it and had to follow
   * (its exports changed). The target applies them all or none.
   */
  parts: RotationPartV2[];
  redactedSpec: JsonObject;
}

/**
 * What `recoverInterrupted` found and did. `none`: no operation of this target was left half-done
 * on the instance. `restored`: the instance is back in its state before the operation (a rotation's
 * old containers, with the old credentials). `completed`: the operation had gone far enough that
 * the target finished it (the new containers, with the new credentials).
 */
export interface InterruptedOperationRecoveryV2 {
  outcome: 'none' | 'restored' | 'completed';
  /** What was found and done, for the job's record and the operator. */
  message: string;
}

export type EgressKindV2 = 'none' | 'internet' | 'destinations';

/**
 * What `render` does with secret values: `omit` (the default) prints every object with the
 * objects that hold secrets present but without their values, `include` prints the values in
 * place, `only` prints just the objects that hold secrets, with their values (the rest of the
 * same plan's `omit` output, to apply or seal apart).
 */
export type RenderSecretValuesV2 = 'omit' | 'include' | 'only';

export interface RenderOptionsV2 {
  secretValues?: RenderSecretValuesV2;
}

/** One object `render` prints that holds secret values: what a user must supply when they are omitted. */
export interface RenderedSecretV2 {
  /** The object's kind and name in the manifests (`Secret`, `kw-demo-secrets-tokenizer`). */
  kind: string;
  name: string;
  namespace?: string;
  keys: {
    key: string;
    providerId: string;
    /** The containers that read it. */
    readers: string[];
    /** A sealed token or the like, that the agent may hold. */
    agentSafe: boolean;
  }[];
}

export interface TargetCapabilitiesV2 {
  networkModes: readonly NetworkMode[];
  /** The container egress kinds this target can enforce. */
  egress: readonly EgressKindV2[];
  rotation: boolean;
  render: boolean;
  exec: boolean;
  logsFollow: boolean;
}

export interface TargetProviderV2<TOptions = unknown> {
  readonly specificationVersion: 'v2';
  /** `local`, `k8s`. */
  readonly id: string;
  readonly displayName?: string;
  readonly capabilities: TargetCapabilitiesV2;
  /** The instance's `targetOptions` (local: host port and address; k8s: namespace, context). */
  readonly configSchema: z.ZodType<TOptions>;
  /** `host:port` at which one container of an instance reaches a port of another. Pure. */
  addressOf(request: AddressRequestV2): string;
  detect(): Promise<DetectionResultV2>;
  /**
   * Idempotent. On failure removes everything it created for the instance and names the failed step.
   * When it cannot (its runtime stopped answering), it throws `RUNTIME_UNAVAILABLE` with
   * `details.rollback: 'incomplete'`: the caller deletes the instance once the runtime answers again.
   */
  apply(plan: DeploymentPlanV2, options?: OperationOptionsV2): Promise<InstanceDetailV2>;
  /** A bounded number of runtime calls, whatever the number of instances. */
  list(): Promise<InstanceSummaryV2[]>;
  /** Throws `INSTANCE_NOT_FOUND`. */
  get(name: string): Promise<InstanceDetailV2>;
  start(name: string, options?: OperationOptionsV2): Promise<void>;
  stop(name: string, options?: OperationOptionsV2): Promise<void>;
  restart(name: string, options?: OperationOptionsV2): Promise<void>;
  logs(name: string, options?: LogOptionsV2): AsyncIterable<LogLineV2>;
  delete(name: string, options?: OperationOptionsV2 & { removeVolumes?: boolean }): Promise<void>;
  /** Current metadata, exports and secret values of one sidecar, for its provider's `rotate`. */
  readSidecarState?(name: string, providerId: string): Promise<SidecarStateV2>;
  /**
   * Atomic: the new secrets work, or the old ones still do. When the old ones cannot be put back
   * (its runtime stopped answering), it throws `RUNTIME_UNAVAILABLE` with
   * `details.rollback: 'incomplete'`: the caller runs `recoverInterrupted` once the runtime answers.
   */
  rotateSecrets?(
    name: string,
    request: SidecarRotationRequestV2,
    options?: OperationOptionsV2,
  ): Promise<InstanceDetailV2>;
  /**
   * Brings an instance left half-done by an operation that stopped midway (the process running it
   * was killed, or its runtime stopped answering) back to a whole state: the state before the
   * operation (`restored`) or, when it had gone far enough, the state after (`completed`). Safe to
   * call on an instance with nothing half-done (`none`). Targets whose operations cannot be left
   * half-done (a single transactional API call) leave it out. Throws `INSTANCE_NOT_FOUND` when
   * nothing of the instance exists.
   */
  recoverInterrupted?(name: string, options?: OperationOptionsV2): Promise<InterruptedOperationRecoveryV2>;
  /** Runs a command in one container of a running instance (the self-tests). */
  exec?(name: string, request: ExecRequestV2, options?: { signal?: AbortSignal }): Promise<ExecResultV2>;
  /** The target's own checks of its isolation (direct egress, DNS, the host), run like the sidecars'. */
  verificationChecks?(instance: InstanceDetailV2): Promise<VerifyCheckV2[]> | VerifyCheckV2[];
  /**
   * Manifests for GitOps users, where the target has them. A target that implements
   * `renderedSecrets` honours `options.secretValues` (default `omit`); one that does not may
   * print values, and callers must redact its output.
   */
  render?(plan: DeploymentPlanV2, options?: RenderOptionsV2): Promise<string> | string;
  /** The objects `render` prints that hold secret values, with their keys and readers (no values). */
  renderedSecrets?(plan: DeploymentPlanV2): Promise<RenderedSecretV2[]> | RenderedSecretV2[];
  warnings?: PlanWarningV2[];
}
