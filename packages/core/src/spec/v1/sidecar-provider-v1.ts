import type { z } from 'zod';
import type { SidecarContributionV1 } from './contribution-v1.js';
import type { JsonObject } from './json-value.js';
import type { NetworkMode } from './network-mode.js';

export interface SidecarContextV1 {
  instanceName: string;
  networkMode: NetworkMode;
  /** The URL the agent uses to reach `container` on `port`, computed for the network mode. */
  addressOf(container: string, port: number): string;
  agent: { port: number; skillsDirectory: string };
  /** Source of randomness (keys, passwords). Injectable so tests get deterministic plans. */
  randomBytes(length: number): Uint8Array;
}

/** What a target reads back for a rotation: the sidecar's metadata and its secret values. */
export interface SidecarRotationStateV1 {
  metadata: JsonObject;
  /** Current values by secret name, as held by the target. Missing when the target lost them. */
  secrets: Record<string, string | undefined>;
}

export interface SidecarRotationV1<TChange> {
  /** Validates a change request (for the tokenizer: the credential list, `secret: ""` = keep). */
  changeSchema: z.ZodType<TChange>;
  /** Returns the new contribution; it keeps everything the change keeps. */
  rotate(
    context: SidecarContextV1,
    current: SidecarRotationStateV1,
    change: TChange,
  ): Promise<SidecarContributionV1> | SidecarContributionV1;
}

export interface SidecarCapabilitiesV1 {
  /** Network modes this sidecar works in. */
  networkModes: readonly NetworkMode[];
}

export interface SidecarProviderV1<TConfig = unknown, TChange = unknown> {
  readonly specificationVersion: 'v1';
  /** DNS label: `tokenizer`, `litellm`, `otel`. Also the key under `sidecars` in the instance spec. */
  readonly id: string;
  readonly displayName?: string;
  readonly configSchema: z.ZodType<TConfig>;
  readonly capabilities: SidecarCapabilitiesV1;
  contribute(
    context: SidecarContextV1,
    config: TConfig,
  ): Promise<SidecarContributionV1> | SidecarContributionV1;
  /** The config with every secret value removed, safe to persist and show. */
  redactConfig(config: TConfig): JsonObject;
  readonly rotation?: SidecarRotationV1<TChange>;
}
