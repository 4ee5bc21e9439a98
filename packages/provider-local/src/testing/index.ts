// `@keyward/provider-local/testing`: podman and docker integration-test support shared by this
// package's tests and the API's. Never used in production code.
export {
  type DemoUpstream,
  type DemoUpstreamCertificates,
  type DemoUpstreamOptions,
  demoUpstreamHost,
  demoUpstreamPort,
  type ReceivedUpstreamRequest,
  startDemoUpstream,
  testFixtureLabel,
} from './demo-upstream.js';
export { type Finding, scanContainer, scanHostCommandLines } from './secret-scan.js';
export {
  connectToTestRuntime,
  containersOfInstance,
  remainingObjects,
  testRuntimeKind,
  uniqueName,
  unusedFileVolumes,
} from './test-runtime.js';
