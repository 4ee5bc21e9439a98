import type { FileContributionV1, ProbeV1, SecretDeliveryV1 } from '../v1/contribution-v1.js';
import type { JsonObject } from '../v1/json-value.js';

/** The logical name of the agent container in every plan (the same as in v1). */
export { AGENT_CONTAINER_NAME } from '../v1/contribution-v1.js';

export interface ContainerPortV2 {
  /** Port name, a DNS label (`proxy`, `admin`, `otlp-grpc`). */
  name: string;
  containerPort: number;
  protocol?: 'tcp' | 'udp';
}

export type ProbeV2 = ProbeV1;

export interface SecurityContextV2 {
  /** Only where the image needs a fixed user; Kubernetes targets leave the UID to the platform when absent. */
  runAsUser?: number;
  runAsGroup?: number;
  readOnlyRootFilesystem?: boolean;
  dropAllCapabilities?: boolean;
  noNewPrivileges?: boolean;
}

/**
 * Where a container may connect outside the instance. `none`: nowhere (it still reaches the
 * containers its connections name). `internet`: anywhere the target's network allows.
 * `destinations`: only these host names or CIDRs (targets that cannot enforce a list say so
 * through `capabilities.egress`, and the composer refuses the plan rather than widen it).
 */
export type EgressV2 =
  | { type: 'none' }
  | { type: 'internet' }
  | { type: 'destinations'; destinations: string[] };

/** Requests and limits in Kubernetes notation (`100m`, `128Mi`); local targets map what they can. */
export interface ResourcesV2 {
  requests?: { cpu?: string; memory?: string };
  limits?: { cpu?: string; memory?: string };
}

export interface ContainerContributionV2 {
  /** Logical name, a DNS label of at most 40 characters, unique within the instance. */
  name: string;
  image: string;
  /** Full argv. Never put a secret here: argv is readable in /proc by every process. */
  command?: string[];
  /** Non-secret environment. Secrets go in `secrets` with `delivery`. */
  env?: Record<string, string>;
  ports?: ContainerPortV2[];
  readiness?: ProbeV2;
  security?: SecurityContextV2;
  /** Writable scratch directories when the root filesystem is read-only. */
  tmpfs?: string[];
  egress: EgressV2;
  resources?: ResourcesV2;
}

/**
 * One allowed connection inside an instance, between logical container names (`agent` included).
 * Targets allow these and nothing else between the instance's containers.
 */
export interface ConnectionV2 {
  from: string;
  to: string;
  port: number;
}

export type SecretDeliveryV2 = SecretDeliveryV1;

export interface SecretContributionV2 {
  /** Logical name, a DNS label unique within the instance (`tokenizer-open-key`). */
  name: string;
  /** The value. Lives only in memory; targets store it in their secret facility. */
  value: string;
  /**
   * Containers that may see it: the provider's own, `agent` (only with `agentSafe`), or a
   * container of another provider that asked for it (only with `forRequest`).
   */
  visibleTo: string[];
  delivery: SecretDeliveryV2;
  /** The provider declares the agent may hold this value (a sealed token, a proxy password). */
  agentSafe?: boolean;
  /**
   * The id of the request (from `SidecarContextV2.requests`) this secret answers. Required when
   * the secret is visible to another provider's container: a provider only hands secrets to the
   * containers that asked for them.
   */
  forRequest?: string;
}

export type FileContributionV2 = FileContributionV1;

/**
 * What one provider asks of another before either contributes. The kind and payload are the
 * answering provider's vocabulary (the tokenizer answers `sealed-credential`). A payload may
 * hold a raw value (the credential to seal): it lives only in memory, goes only to the answering
 * provider, and never into the plan.
 */
export interface SidecarRequestV2 {
  /** Unique among the asking provider's requests; the answer's secrets name it in `forRequest`. */
  id: string;
  /** The provider asked (it must be in the asker's `requires`). */
  provider: string;
  kind: string;
  /** The asker's own container that receives what the answer makes. */
  container: string;
  /**
   * Absent when a rotation replays a request from the stored plan: the answering provider keeps
   * what it made for it before (the raw value is gone by then, by design).
   */
  payload?: JsonObject;
}

/** A request as the answering provider sees it: with the asker's id. */
export interface ReceivedRequestV2 extends SidecarRequestV2 {
  from: string;
}

export interface PlanWarningV2 {
  code: string;
  message: string;
  providerId?: string;
}

export interface SidecarContributionV2 {
  containers: ContainerContributionV2[];
  secrets: SecretContributionV2[];
  files: FileContributionV2[];
  /** Non-secret environment for the agent (addresses, public keys, host lists). */
  agentEnv: Record<string, string>;
  /**
   * Connections this provider needs: from the agent or one of its own containers to one of its
   * own, or from one of its own to a container of a provider it requires.
   */
  connections?: ConnectionV2[];
  /** Non-secret values the providers that require this one read in `context.dependencies`. */
  exports?: JsonObject;
  /** What keyward keeps about this sidecar: never a secret value (names, hosts, fingerprints). */
  metadata: JsonObject;
  warnings?: PlanWarningV2[];
}
