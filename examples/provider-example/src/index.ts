import type { KeywardPluginV2 } from '@keyward/core';
import { createGreetingProvider } from './greeting-sidecar-provider.js';

export { type GreetingConfig, greetingConfigSchema } from './greeting-config.js';
export {
  createGreetingProvider,
  GREETING_PROVIDER_ID,
  type GreetingProvider,
  type GreetingProviderSettings,
} from './greeting-sidecar-provider.js';

// Machines that cannot pull node:20-slim name a local image with node on its PATH.
const localImage = process.env['KEYWARD_EXAMPLE_IMAGE'];

/** What keyward's plugin discovery loads from this package (keyword `keyward-provider`). */
export const keywardPlugin: KeywardPluginV2 = {
  specificationVersion: 'v2',
  name: 'keyward-provider-example',
  sidecars: [createGreetingProvider(localImage ? { defaultImage: localImage } : {})],
};

export const VERSION = '0.1.0';
