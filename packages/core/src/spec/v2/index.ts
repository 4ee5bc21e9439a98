export * from './contribution-v2.js';
export * from './deployment-plan-v2.js';
export * from './plugin-v2.js';
export * from './sidecar-provider-v2.js';
export * from './target-provider-v2.js';
export * from './verification-v2.js';
