import type { SidecarProviderV2 } from './sidecar-provider-v2.js';
import type { TargetProviderV2 } from './target-provider-v2.js';

/** What a plugin package exports (as `default` or `keywardPlugin`). */
export interface KeywardPluginV2 {
  readonly specificationVersion: 'v2';
  readonly name: string;
  // biome-ignore lint/suspicious/noExplicitAny: a plugin's config and change types are its own.
  readonly sidecars?: readonly SidecarProviderV2<any, any>[];
  // biome-ignore lint/suspicious/noExplicitAny: a target's options type is its own.
  readonly targets?: readonly TargetProviderV2<any>[];
}
