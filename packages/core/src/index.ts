export * from './composer.js';
export * from './errors/index.js';
export * from './instance-spec.js';
export * from './labels.js';
export * from './plugin-discovery.js';
export * from './redaction.js';
export * from './registry.js';
export * from './spec/v1/index.js';
export const VERSION = '0.1.0';
