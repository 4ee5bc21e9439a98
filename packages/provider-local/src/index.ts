export { type ExecOptions, type ExecResult, execInContainer } from './container-exec.js';
export { DEFAULT_NETWORK_HELPER_IMAGE, type LocalProviderSettings } from './local-provider-settings.js';
export { createLocalProvider, LocalProvider, VERSION } from './local-target-provider.js';
export {
  type DetectedRuntime,
  type DetectionContext,
  type DetectRuntimeOptions,
  defaultDetectionStrategies,
  describeEndpoint,
  detectRuntime,
  dockerForEndpoint,
  dockerSocketStrategy,
  environmentHostStrategy,
  keywardPodmanSocketStrategy,
  type RuntimeDetectionStrategy,
  type RuntimeEndpoint,
  rootfulPodmanSocketStrategy,
  rootlessPodmanSocketStrategy,
} from './runtime-detection.js';
export type { RuntimeKind } from './runtime-differences.js';
