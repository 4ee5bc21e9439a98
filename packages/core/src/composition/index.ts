export * from './compose-plan.js';
export * from './compose-rotation.js';
export * from './dependency-order.js';
export {
  environmentNamePattern,
  type ResolveContributionInput,
  type ResolvedSidecarV2,
  resolveSidecarContributionV2,
} from './resolve-contribution.js';
export * from './sidecar-provider-v1-adapter.js';
export * from './target-provider-v1-adapter.js';
