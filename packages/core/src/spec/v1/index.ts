export * from './contribution-v1.js';
export * from './deployment-plan-v1.js';
export * from './json-value.js';
export * from './network-mode.js';
export * from './plugin-v1.js';
export * from './sidecar-provider-v1.js';
export * from './target-provider-v1.js';
