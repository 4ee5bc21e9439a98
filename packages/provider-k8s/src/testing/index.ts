export { type ContainerOutcome, type PodStatusWriterOptions, podStatusWriter } from './pod-status-writer.js';
