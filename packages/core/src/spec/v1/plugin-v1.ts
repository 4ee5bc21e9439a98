import type { SidecarProviderV1 } from './sidecar-provider-v1.js';
import type { TargetProviderV1 } from './target-provider-v1.js';

/** What a plugin package exports (as `default` or `keywardPlugin`). */
export interface KeywardPluginV1 {
  readonly specificationVersion: 'v1';
  readonly name: string;
  // biome-ignore lint/suspicious/noExplicitAny: a plugin's config and change types are its own.
  readonly sidecars?: readonly SidecarProviderV1<any, any>[];
  readonly targets?: readonly TargetProviderV1[];
}
