export * from './memory-target-provider.js';
export * from './mock-sidecar-provider.js';
export * from './sidecar-conformance.js';
export * from './target-conformance.js';
export * from './vitest-suites.js';
