import { isDeepStrictEqual } from 'node:util';
import { KeywardError } from '../errors/keyward-error.js';
import { formatIssues, type InstanceSpec } from '../instance-spec.js';
import type { SecretRedactor } from '../redaction.js';
import type { JsonObject } from '../spec/v1/json-value.js';
import type { SidecarContributionV2 } from '../spec/v2/contribution-v2.js';
import type { SidecarStateV2 } from '../spec/v2/sidecar-provider-v2.js';
import type { RotationPartV2, SidecarRotationRequestV2 } from '../spec/v2/target-provider-v2.js';
import {
  type AnySidecarProviderV2,
  createSidecarContextV2,
  defaultRandomBytes,
  parseTargetOptions,
  redactedSpecOf,
  type SidecarLookupV2,
  type TargetForComposition,
} from './compose-plan.js';
import { dependencyOrder } from './dependency-order.js';
import { resolveSidecarContributionV2 } from './resolve-contribution.js';

export interface ComposeRotationV2Options {
  /** The instance spec as the target persisted it (secrets removed). */
  spec: InstanceSpec;
  /** The provider whose change this is. */
  providerId: string;
  change: unknown;
  sidecars: SidecarLookupV2;
  target: TargetForComposition;
  /** Reads one sidecar's current state from the target (metadata, exports, secret values). */
  readState(providerId: string): Promise<SidecarStateV2>;
  randomBytes?: (length: number) => Uint8Array;
  redactor?: SecretRedactor;
}

function providerOf(sidecars: SidecarLookupV2, providerId: string): AnySidecarProviderV2 {
  const provider = sidecars.getSidecar(providerId);
  if (!provider) {
    throw new KeywardError({
      code: 'UNKNOWN_PROVIDER',
      providerId,
      message: `The instance has sidecar "${providerId}", but no sidecar provider with that id is installed; install it to change the instance.`,
    });
  }
  return provider;
}

/**
 * A rotation: validate the change with the provider's schema, let the provider build its new
 * contribution, resolve it exactly as a deploy would, and when its exports changed, rebuild the
 * providers that depend on it (they move together, or the rotation is refused).
 */
export async function composeRotationV2(
  options: ComposeRotationV2Options,
): Promise<SidecarRotationRequestV2> {
  const { spec, sidecars, target } = options;
  const provider = providerOf(sidecars, options.providerId);
  if (!provider.rotation) {
    throw new KeywardError({
      code: 'ROTATION_NOT_SUPPORTED',
      providerId: provider.id,
      message: `Sidecar "${provider.id}" does not support changes after install.`,
    });
  }
  const parsed = provider.rotation.changeSchema.safeParse(options.change);
  if (!parsed.success) {
    const problems = formatIssues(parsed.error.issues);
    throw new KeywardError({
      code: 'INVALID_INPUT',
      providerId: provider.id,
      message: `Invalid change for sidecar "${provider.id}": ${problems.join('; ')}`,
      details: { problems },
    });
  }
  const targetOptions = parseTargetOptions(target, spec);
  const randomBytes = options.randomBytes ?? defaultRandomBytes;
  const installed = Object.keys(spec.sidecars).map((id) => providerOf(sidecars, id));
  const order = dependencyOrder(installed);
  const requiresOf = (id: string) =>
    (installed.find((item) => item.id === id)?.requires ?? [])
      .map((requirement) => requirement.provider)
      .filter((required) => order.includes(required));

  const states = new Map<string, SidecarStateV2>();
  const stateOf = async (id: string) => {
    let state = states.get(id);
    if (!state) {
      state = await options.readState(id);
      states.set(id, state);
    }
    return state;
  };
  const exportsNow = new Map<string, JsonObject>();
  const contextFor = async (id: string) => {
    const dependencies: Record<string, { exports: JsonObject }> = {};
    for (const required of requiresOf(id)) {
      dependencies[required] = { exports: exportsNow.get(required) ?? (await stateOf(required)).exports };
    }
    return createSidecarContextV2({ spec, target, targetOptions, randomBytes, dependencies, requests: [] });
  };

  const parts: RotationPartV2[] = [];
  const resolve = (id: string, contribution: SidecarContributionV2) => {
    const part = resolveSidecarContributionV2({
      spec,
      providerId: id,
      contribution,
      requires: requiresOf(id),
      // What it asked of the providers it requires stays in the stored plan (their states know it),
      // so a later rotation of those providers still keeps what they made for it.
      requests: requiresOf(id).flatMap((required) =>
        (states.get(required)?.requests ?? []).filter((request) => request.from === id),
      ),
      // What it answered before stays visible to the containers that asked (the stored plan's requests).
      received: states.get(id)?.requests ?? [],
      redactor: options.redactor,
    });
    parts.push({
      providerId: id,
      sidecar: part.sidecar,
      containers: part.containers,
      secrets: part.secrets,
      agentEnv: part.agentEnv,
      agentFiles: part.agentFiles,
    });
    return part;
  };

  const current = await stateOf(provider.id);
  const first = resolve(
    provider.id,
    await provider.rotation.rotate(await contextFor(provider.id), current, parsed.data),
  );
  const changed = new Set<string>();
  if (!isDeepStrictEqual(first.sidecar.exports, current.exports)) changed.add(provider.id);
  exportsNow.set(provider.id, first.sidecar.exports);

  // Dependents follow in dependency order, so a chain of changed exports is followed too.
  for (const id of order) {
    if (id === provider.id || !requiresOf(id).some((required) => changed.has(required))) continue;
    const dependent = providerOf(sidecars, id);
    const because = requiresOf(id).filter((required) => changed.has(required));
    if (!dependent.rotation?.refresh) {
      throw new KeywardError({
        code: 'ROTATION_FAILED',
        providerId: id,
        message: `This change alters what sidecar "${because.join('", "')}" exports, and sidecar "${id}" depends on it but cannot follow a change (no rotation.refresh); nothing was changed. Redeploy the instance instead.`,
      });
    }
    const state = await stateOf(id);
    const part = resolve(id, await dependent.rotation.refresh(await contextFor(id), state));
    exportsNow.set(id, part.sidecar.exports);
    if (!isDeepStrictEqual(part.sidecar.exports, state.exports)) changed.add(id);
  }

  return {
    providerId: provider.id,
    parts,
    redactedSpec: nextRedactedSpec(spec, targetOptions, provider, parsed.data),
  };
}

// The persisted spec follows the change, without its secrets. A change names only what it
// changes; the rest keeps its saved value. A merged config the schema refuses is an error, not
// a reason to keep a stale one.
function nextRedactedSpec(
  spec: InstanceSpec,
  targetOptions: JsonObject,
  provider: AnySidecarProviderV2,
  change: unknown,
): JsonObject {
  const saved = spec.sidecars[provider.id];
  const sidecarsConfig: JsonObject = {};
  if (provider.rotation?.nextRedactedConfig) {
    for (const [id, config] of Object.entries(spec.sidecars)) {
      sidecarsConfig[id] = (
        id === provider.id
          ? provider.rotation.nextRedactedConfig((saved ?? {}) as JsonObject, change)
          : config
      ) as JsonObject;
    }
    return redactedSpecOf(spec, targetOptions, sidecarsConfig);
  }
  const merged =
    saved && typeof saved === 'object' && change && typeof change === 'object'
      ? { ...saved, ...change }
      : change;
  const next = provider.configSchema.safeParse(merged);
  if (!next.success) {
    const problems = formatIssues(next.error.issues, `sidecars.${provider.id}`);
    throw new KeywardError({
      code: 'PROVIDER_CONTRACT_VIOLATION',
      providerId: provider.id,
      message: `Sidecar "${provider.id}" accepted a change that its own config schema refuses once merged with the saved config (${problems.join('; ')}); its change schema and config schema disagree. This is a bug in sidecar "${provider.id}".`,
      details: { problems },
    });
  }
  for (const [id, config] of Object.entries(spec.sidecars)) {
    sidecarsConfig[id] = (id === provider.id ? provider.redactConfig(next.data) : config) as JsonObject;
  }
  return redactedSpecOf(spec, targetOptions, sidecarsConfig);
}
