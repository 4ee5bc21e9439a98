import type { JsonObject } from './json-value.js';

/** The logical name of the agent container in every plan. */
export const AGENT_CONTAINER_NAME = 'agent';

export interface ContainerPortV1 {
  /** Port name, a DNS label (`proxy`, `admin`). */
  name: string;
  containerPort: number;
  protocol?: 'tcp' | 'udp';
  /** Publish this port on the host (127.0.0.1 by default). Sidecars rarely need it. */
  publish?: boolean;
}

export type ProbeV1 =
  | { type: 'http'; port: number; path: string; timeoutSeconds?: number; retries?: number }
  | { type: 'tcp'; port: number; timeoutSeconds?: number; retries?: number };

export interface SecurityContextV1 {
  runAsUser?: number;
  runAsGroup?: number;
  readOnlyRootFilesystem?: boolean;
  dropAllCapabilities?: boolean;
  noNewPrivileges?: boolean;
}

export interface ContainerContributionV1 {
  /** Logical name, unique within the instance; also the hostname the agent dials in `proxy-only`. */
  name: string;
  image: string;
  /** Full argv. Never put a secret here: argv is readable in /proc by every process. */
  command?: string[];
  /** Non-secret environment. Secrets go in `secrets` with `delivery`. */
  env?: Record<string, string>;
  ports?: ContainerPortV1[];
  readiness?: ProbeV1;
  security?: SecurityContextV1;
  /** Writable scratch directories when the root filesystem is read-only. */
  tmpfs?: string[];
  /** `internet`: needs to reach the outside world (tokenizer, LLM gateway). `none`: internal only. */
  egress: 'internet' | 'none';
}

export type SecretDeliveryV1 =
  /** A file inside each visible container. Preferred: files never show up in `inspect`. */
  | { type: 'file'; path: string; mode?: number }
  /** An environment variable. Only for values the consumers may read anyway (sealed tokens). */
  | { type: 'env'; variable: string };

export interface SecretContributionV1 {
  /** Logical name, a DNS label unique within the instance (`tokenizer-open-key`). */
  name: string;
  /** The value. Lives only in memory; targets store it in their secret facility. */
  value: string;
  /** Container names that may see it. `agent` means the agent. */
  visibleTo: string[];
  delivery: SecretDeliveryV1;
  /**
   * The provider declares the agent may hold this value (a sealed token, a proxy
   * password). Without it the composer refuses to make a secret visible to the agent.
   */
  agentSafe?: boolean;
}

export interface FileContributionV1 {
  /** Container that receives the file (`agent` or a sidecar of this provider). */
  container: string;
  /** `skills`: relative to the agent's skills directory. `absolute`: an absolute path. */
  root: 'skills' | 'absolute';
  path: string;
  content: string;
  mode?: number;
}

export interface SidecarContributionV1 {
  containers: ContainerContributionV1[];
  secrets: SecretContributionV1[];
  files: FileContributionV1[];
  /** Non-secret environment for the agent (addresses, public keys, host lists). */
  agentEnv: Record<string, string>;
  /** What keyward keeps about this sidecar: never a secret value (names, hosts, fingerprints). */
  metadata: JsonObject;
  warnings?: PlanWarningV1[];
}

export interface PlanWarningV1 {
  code: string;
  message: string;
  providerId?: string;
}
