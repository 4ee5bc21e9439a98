export { type ExecOptions, type ExecResult, execInContainer } from './container-exec.js';
export { DEFAULT_NETWORK_HELPER_IMAGE, type LocalProviderSettings } from './local-provider-settings.js';
export { createLocalProvider, LocalProvider, VERSION } from './local-target-provider.js';
export {
  isBlocked,
  type NetworkProbe,
  networkProbeScript,
  type ProbeOutcome,
} from './network-probe-script.js';
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
export { containerRuntimeName, MAX_RUNTIME_NAME_LENGTH } from './runtime-names.js';
export {
  type LocalTargetOptions,
  localAddressOf,
  localTargetOptionsSchema,
  type PublishedPort,
  publishedPorts,
} from './target-options.js';
