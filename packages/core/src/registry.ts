import { adaptSidecarProviderV1 } from './composition/sidecar-provider-v1-adapter.js';
import { adaptTargetProviderV1 } from './composition/target-provider-v1-adapter.js';
import { dnsLabelPattern } from './dns-label.js';
import { KeywardError, registerErrorCodes } from './errors/keyward-error.js';
import { registerRedactionPattern } from './redaction.js';
import type { KeywardPluginV1 } from './spec/v1/plugin-v1.js';
import type { SidecarProviderV1 } from './spec/v1/sidecar-provider-v1.js';
import type { TargetProviderV1 } from './spec/v1/target-provider-v1.js';
import type { KeywardPluginV2 } from './spec/v2/plugin-v2.js';
import type { SidecarProviderV2 } from './spec/v2/sidecar-provider-v2.js';
import type { TargetProviderV2 } from './spec/v2/target-provider-v2.js';

/** v1 providers load through adapters (`adaptSidecarProviderV1`, `adaptTargetProviderV1`). */
export const supportedSpecificationVersions = ['v1', 'v2'] as const;

export interface PluginLoadError {
  /** Package name or file the plugin came from. */
  source: string;
  code: string;
  message: string;
}

// biome-ignore lint/suspicious/noExplicitAny: providers carry their own config types.
type AnySidecarProvider = SidecarProviderV2<any, any>;
// biome-ignore lint/suspicious/noExplicitAny: targets carry their own option types.
type AnyTargetProvider = TargetProviderV2<any>;

function describe(candidate: unknown): string {
  const id = (candidate as { id?: unknown } | null)?.id;
  return typeof id === 'string' ? `"${id}"` : '(without an id)';
}

function assertSpecificationVersion(
  kind: string,
  candidate: unknown,
  supported: readonly string[] = supportedSpecificationVersions,
): void {
  const version = (candidate as { specificationVersion?: unknown } | null)?.specificationVersion;
  if (!supported.includes(version as string)) {
    throw new KeywardError({
      code: 'UNSUPPORTED_SPEC_VERSION',
      message: `${kind} provider ${describe(candidate)} implements specification version ${JSON.stringify(version)}, but this keyward supports only ${supported.join(', ')} for ${kind.toLowerCase()} providers; upgrade the provider or keyward.`,
      details: { specificationVersion: version ?? null },
    });
  }
}

/** Checks the shape of a sidecar provider from outside, so a bad plugin fails at load, not at deploy. */
export function resolveSidecarProvider(candidate: unknown): AnySidecarProvider {
  assertSpecificationVersion('Sidecar', candidate);
  const provider = candidate as AnySidecarProvider | SidecarProviderV1<unknown, unknown>;
  if (typeof provider.id !== 'string' || !dnsLabelPattern.test(provider.id)) {
    throw new KeywardError({
      code: 'INVALID_INPUT',
      message: `Sidecar provider id ${describe(candidate)} must be a DNS label.`,
    });
  }
  for (const member of ['contribute', 'redactConfig'] as const) {
    if (typeof provider[member] !== 'function') {
      throw new KeywardError({
        code: 'INVALID_INPUT',
        providerId: provider.id,
        message: `Sidecar provider "${provider.id}" has no ${member}() function.`,
      });
    }
  }
  if (typeof provider.configSchema?.safeParse !== 'function') {
    throw new KeywardError({
      code: 'INVALID_INPUT',
      providerId: provider.id,
      message: `Sidecar provider "${provider.id}" has no zod configSchema.`,
    });
  }
  return provider.specificationVersion === 'v1' ? adaptSidecarProviderV1(provider) : provider;
}

export function resolveTargetProvider(candidate: unknown): AnyTargetProvider {
  assertSpecificationVersion('Target', candidate);
  const provider = candidate as AnyTargetProvider | TargetProviderV1;
  const version = provider.specificationVersion;
  if (typeof provider.id !== 'string' || !dnsLabelPattern.test(provider.id)) {
    throw new KeywardError({
      code: 'INVALID_INPUT',
      message: `Target provider id ${describe(candidate)} must be a DNS label.`,
    });
  }
  for (const member of [
    'detect',
    'apply',
    'list',
    'get',
    'start',
    'stop',
    'restart',
    'logs',
    'delete',
    ...(version === 'v2' ? (['addressOf'] as const) : []),
  ] as const) {
    if (typeof (provider as unknown as Record<string, unknown>)[member] !== 'function') {
      throw new KeywardError({
        code: 'INVALID_INPUT',
        providerId: provider.id,
        message: `Target provider "${provider.id}" has no ${member}() function.`,
      });
    }
  }
  if (provider.specificationVersion === 'v1') return adaptTargetProviderV1(provider);
  if (typeof provider.configSchema?.safeParse !== 'function') {
    throw new KeywardError({
      code: 'INVALID_INPUT',
      providerId: provider.id,
      message: `Target provider "${provider.id}" has no zod configSchema for its options.`,
    });
  }
  return provider;
}

/** Providers keyed by id. Composition goes through here, never through `if (kind === …)`. */
export class ProviderRegistry {
  readonly #sidecars = new Map<string, AnySidecarProvider>();
  readonly #targets = new Map<string, AnyTargetProvider>();
  readonly #loadErrors: PluginLoadError[] = [];

  registerSidecar(candidate: unknown): this {
    const provider = resolveSidecarProvider(candidate);
    if (this.#sidecars.has(provider.id)) {
      throw new KeywardError({
        code: 'INVALID_INPUT',
        providerId: provider.id,
        message: `A sidecar provider with id "${provider.id}" is already registered.`,
      });
    }
    // Codes and patterns are checked before anything is registered, so a bad provider changes nothing.
    if (provider.errorCodes) registerErrorCodes(provider.id, provider.errorCodes);
    for (const pattern of provider.redactionPatterns ?? []) registerRedactionPattern(pattern);
    this.#sidecars.set(provider.id, provider);
    return this;
  }

  registerTarget(candidate: unknown): this {
    const provider = resolveTargetProvider(candidate);
    if (this.#targets.has(provider.id)) {
      throw new KeywardError({
        code: 'INVALID_INPUT',
        providerId: provider.id,
        message: `A target provider with id "${provider.id}" is already registered.`,
      });
    }
    this.#targets.set(provider.id, provider);
    return this;
  }

  /** Registers what a plugin brings; a provider that fails is recorded, the rest still load. */
  registerPlugin(plugin: KeywardPluginV1 | KeywardPluginV2, source = plugin.name): void {
    for (const sidecar of plugin.sidecars ?? [])
      this.#tryRegister(source, () => this.registerSidecar(sidecar));
    for (const target of plugin.targets ?? []) this.#tryRegister(source, () => this.registerTarget(target));
  }

  #tryRegister(source: string, register: () => void): void {
    try {
      register();
    } catch (error) {
      this.recordLoadError(source, error);
    }
  }

  recordLoadError(source: string, error: unknown): void {
    this.#loadErrors.push({
      source,
      code: KeywardError.isInstance(error) ? error.code : 'PLUGIN_LOAD_FAILED',
      message: error instanceof Error ? error.message : String(error),
    });
  }

  getSidecar(id: string): AnySidecarProvider | undefined {
    return this.#sidecars.get(id);
  }

  getTarget(id: string): AnyTargetProvider | undefined {
    return this.#targets.get(id);
  }

  requireSidecar(id: string): AnySidecarProvider {
    const provider = this.#sidecars.get(id);
    if (!provider) {
      throw new KeywardError({
        code: 'UNKNOWN_PROVIDER',
        providerId: id,
        message: `No sidecar provider "${id}" is installed; installed: ${[...this.#sidecars.keys()].join(', ') || 'none'}.`,
      });
    }
    return provider;
  }

  requireTarget(id: string): AnyTargetProvider {
    const provider = this.#targets.get(id);
    if (!provider) {
      throw new KeywardError({
        code: 'UNKNOWN_PROVIDER',
        providerId: id,
        message: `No target provider "${id}" is installed; installed: ${[...this.#targets.keys()].join(', ') || 'none'}.`,
      });
    }
    return provider;
  }

  listSidecars(): AnySidecarProvider[] {
    return [...this.#sidecars.values()];
  }

  listTargets(): AnyTargetProvider[] {
    return [...this.#targets.values()];
  }

  get loadErrors(): readonly PluginLoadError[] {
    return this.#loadErrors;
  }
}
