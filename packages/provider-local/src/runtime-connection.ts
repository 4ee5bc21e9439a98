import { type DetectionResultV2, KeywardError } from '@keyward/core';
import type Docker from 'dockerode';
import type { LocalProviderSettings } from './local-provider-settings.js';
import { detectRuntime, runtimeStartHint } from './runtime-detection.js';
import { type RuntimeKind, runtimeKindFromVersion } from './runtime-differences.js';

/** The runtime every operation talks to. */
export interface Runtime {
  docker: Docker;
  kind: RuntimeKind;
}

/** The provider's connection to its runtime: injected, or detected once and then reused. */
export class RuntimeConnection {
  readonly #settings: LocalProviderSettings;
  readonly #providerId: string;
  #runtime: Promise<Runtime> | undefined;

  constructor(settings: LocalProviderSettings, providerId: string) {
    this.#settings = settings;
    this.#providerId = providerId;
  }

  async detect(): Promise<DetectionResultV2> {
    const injected = this.#settings.docker;
    if (injected) {
      try {
        const version = await injected.version();
        const kind = this.#settings.runtimeKind ?? runtimeKindFromVersion(version);
        return {
          available: true,
          strategy: 'injected client',
          runtime: { name: kind, version: version.Version },
        };
      } catch (error) {
        return {
          available: false,
          strategy: 'injected client',
          reason: `The injected dockerode client did not answer: ${(error as Error).message}`,
          hint: runtimeStartHint,
        };
      }
    }
    return (await this.#detectRuntime()).result;
  }

  /** The runtime, found on first use; a failed attempt is forgotten so the next call tries again. */
  runtime(): Promise<Runtime> {
    this.#runtime ??= this.#connect();
    this.#runtime.catch(() => {
      this.#runtime = undefined;
    });
    return this.#runtime;
  }

  async #connect(): Promise<Runtime> {
    const injected = this.#settings.docker;
    if (injected) {
      const kind = this.#settings.runtimeKind ?? runtimeKindFromVersion(await injected.version());
      return { docker: injected, kind };
    }
    const detected = await this.#detectRuntime();
    if (!detected.docker || !detected.kind) {
      throw new KeywardError({
        code: 'RUNTIME_UNAVAILABLE',
        providerId: this.#providerId,
        message: `${detected.result.reason} ${detected.result.hint}`,
      });
    }
    return { docker: detected.docker, kind: this.#settings.runtimeKind ?? detected.kind };
  }

  #detectRuntime() {
    return detectRuntime({
      ...(this.#settings.detectionStrategies ? { strategies: this.#settings.detectionStrategies } : {}),
      ...(this.#settings.detectionContext ? { context: this.#settings.detectionContext } : {}),
    });
  }
}
