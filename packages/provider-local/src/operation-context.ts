import { randomBytes } from 'node:crypto';
import type { LocalProviderSettings } from './local-provider-settings.js';
import type { Runtime } from './runtime-connection.js';

/** What every operation of the provider needs: who it is, its settings and its runtime. */
export interface OperationContext {
  /** The target id (`keyward.dev/target` label, `providerId` of errors). */
  readonly providerId: string;
  readonly settings: LocalProviderSettings;
  readonly helperImage: string;
  readonly runtime: Runtime;
}

/** A generation id: names and labels of what one apply or rotation creates. */
export function newGeneration(settings: LocalProviderSettings): string {
  return settings.generation?.() ?? randomBytes(4).toString('hex');
}
