export {
  createLocalProvider,
  DEFAULT_NETWORK_HELPER_IMAGE,
  LocalProvider,
  type LocalProviderSettings,
  VERSION,
} from './local-target-provider.js';
export {
  type DetectionContext,
  defaultDetectionStrategies,
  dockerSocketStrategy,
  environmentHostStrategy,
  keywardPodmanSocketStrategy,
  type RuntimeDetectionStrategy,
  type RuntimeEndpoint,
  rootfulPodmanSocketStrategy,
  rootlessPodmanSocketStrategy,
} from './runtime-detection.js';
export type { RuntimeKind } from './runtime-differences.js';
