import type { z } from 'zod';
import type { JsonObject } from '../v1/json-value.js';
import type { NetworkMode } from '../v1/network-mode.js';
import type { ReceivedRequestV2, SidecarContributionV2, SidecarRequestV2 } from './contribution-v2.js';
import type { SidecarVerificationV2 } from './verification-v2.js';

export interface SidecarContextV2 {
  instanceName: string;
  networkMode: NetworkMode;
  /** The target's id (`local`, `k8s`). */
  target: string;
  /**
   * `host:port` at which container `from` reaches `port` of container `to` (logical names,
   * `agent` included). The target decides: a DNS name on podman, `localhost` inside one pod,
   * a Service across pods. Build URLs from it; never guess addresses.
   */
  addressOf(from: string, to: string, port: number): string;
  agent: { port: number; skillsDirectory?: string };
  /** Source of randomness (keys, passwords). Injectable so tests get deterministic plans. */
  randomBytes(length: number): Uint8Array;
  /** The exports of the providers this one requires that are in the plan, by provider id. */
  dependencies: Readonly<Record<string, { exports: JsonObject }>>;
  /** What other providers of the plan asked of this one (empty for most providers). */
  requests: readonly ReceivedRequestV2[];
}

/** What `request()` sees: composition has not started, so there are no addresses yet. */
export interface RequestContextV2 {
  instanceName: string;
  networkMode: NetworkMode;
  /** The providers of the plan, so an optional requirement can be honoured only when present. */
  providers: readonly string[];
}

export interface SidecarRequirementV2 {
  provider: string;
  /** An optional requirement orders composition when the provider is present, and is skipped when not. */
  optional?: boolean;
}

/** What a target reads back for a rotation or a view: the sidecar's metadata, exports and secret values. */
export interface SidecarStateV2 {
  metadata: JsonObject;
  exports: JsonObject;
  /** Current values by secret name, as held by the target. Missing when the target lost them. */
  secrets: Record<string, string | undefined>;
  /**
   * What other providers asked of this one, as the stored plan recorded them (without payload):
   * for every `plan.sidecars[i].requests[j]` with `provider` = this provider, that request with
   * `from: plan.sidecars[i].providerId`. A rotation lets the secrets this provider keeps for
   * those requests (`forRequest`) stay visible to exactly those containers; without them such a
   * rotation fails with UNKNOWN_SECRET_CONSUMER. (`context.requests` stays empty in a rotation.)
   */
  requests?: readonly ReceivedRequestV2[];
}

export interface SidecarRotationV2<TChange> {
  /** Validates a change request (for the tokenizer: the credential list, `secret: ""` = keep). */
  changeSchema: z.ZodType<TChange>;
  /** Returns the new contribution; it keeps everything the change keeps. */
  rotate(
    context: SidecarContextV2,
    current: SidecarStateV2,
    change: TChange,
  ): Promise<SidecarContributionV2> | SidecarContributionV2;
  /**
   * The redacted config to persist after this change, from the saved redacted config. Without
   * it, keyward merges the change into the saved config and redacts the result with
   * `redactConfig`, which needs the merged config to pass `configSchema`.
   */
  nextRedactedConfig?(saved: JsonObject, change: TChange): JsonObject;
  /**
   * Rebuilds the contribution from the current state when a provider this one requires changed
   * its exports in a rotation. Without it, such a rotation is refused rather than leave this
   * sidecar pointing at what is gone.
   */
  refresh?(
    context: SidecarContextV2,
    current: SidecarStateV2,
  ): Promise<SidecarContributionV2> | SidecarContributionV2;
}

/** A sidecar's own page in the API: `GET/PUT /api/instances/:id/sidecars/:providerId`. */
export interface SidecarViewV2 {
  /** The shape of the view, for the OpenAPI document and generated UIs. */
  schema: z.ZodType;
  /** What the sidecar shows about itself (never a secret value). */
  build(state: { metadata: JsonObject; exports: JsonObject }): JsonObject;
  /**
   * The view of an instance that does not have this sidecar, for clients that expect a page
   * rather than a 404 (the seed installer's `{ enabled: false, credentials: [] }`). Without it,
   * the API answers 404 for such an instance.
   */
  readonly absent?: JsonObject;
}

export interface SidecarCapabilitiesV2 {
  /** Network modes this sidecar works in. */
  networkModes: readonly NetworkMode[];
}

/** A provider-owned error code, with the HTTP status the API answers it with. */
export interface ProviderErrorCodeV2 {
  httpStatus: number;
  description: string;
}

export interface SidecarProviderV2<TConfig = unknown, TChange = unknown> {
  readonly specificationVersion: 'v2';
  /** DNS label: `tokenizer`, `litellm`, `otel`. Also the key under `sidecars` in the instance spec. */
  readonly id: string;
  readonly displayName?: string;
  readonly configSchema: z.ZodType<TConfig>;
  readonly capabilities: SidecarCapabilitiesV2;
  /** Providers this one builds on: composed and started before it. Cycles are an error. */
  readonly requires?: readonly SidecarRequirementV2[];
  /**
   * What this provider asks of the providers it requires, before anyone contributes (LiteLLM:
   * "seal this provider key for my container"). Pure, from the config.
   */
  request?(context: RequestContextV2, config: TConfig): SidecarRequestV2[];
  /** The request kinds this provider answers, each with the schema its payload must match. */
  readonly answers?: Readonly<Record<string, z.ZodType>>;
  contribute(
    context: SidecarContextV2,
    config: TConfig,
  ): Promise<SidecarContributionV2> | SidecarContributionV2;
  /** The config with every secret value removed, safe to persist and show. */
  redactConfig(config: TConfig): JsonObject;
  readonly rotation?: SidecarRotationV2<TChange>;
  /** Its own self-test checks, run inside the agent by the target. */
  readonly verification?: SidecarVerificationV2;
  readonly view?: SidecarViewV2;
  /** Error codes this provider throws (`OPEN_KEY_MISSING`), registered with keyward at load. */
  readonly errorCodes?: Readonly<Record<string, ProviderErrorCodeV2>>;
  /** Environment or field names whose values are secret (`^TOKENIZER_CRED_`), for `redact()`. */
  readonly redactionPatterns?: readonly RegExp[];
  /** Extra API paths under `/api/instances/:id/` that stand for this sidecar's page (kept for older clients). */
  readonly routeAliases?: readonly string[];
  /**
   * Shared contracts this sidecar's page follows, so clients find it without knowing its id.
   * `credentials`: its view is `{ enabled, credentials: [{ name, allowedHosts, headerDst?,
   * headerFmt? }] }` and its change is the full list `{ credentials: [{ name, secret,
   * allowedHosts, headerDst?, headerFmt? }] }` with `secret: ""` keeping a credential
   * (`keyward creds` uses the sidecar of an instance that has this role).
   */
  readonly roles?: readonly string[];
}
