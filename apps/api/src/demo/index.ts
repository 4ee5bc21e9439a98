export {
  type ExposureFinding,
  type ExposureReport,
  findCredentialInContainer,
} from './credential-exposure.js';
export { demoApiContainerName, type ReceivedRequest, readReceivedRequests } from './demo-api-container.js';
export { createDemoCertificates, type DemoCertificates } from './demo-certificates.js';
export {
  type DemoCommandContext,
  type DemoCommandOptions,
  type DemoCommandOutcome,
  type DemoOutput,
  formatResult,
  registerDemoCommand,
  runDemoCommand,
} from './demo-command.js';
export { type DemoRuntime, detectDemoRuntime, runtimeInstructions } from './demo-runtime.js';
export {
  DEMO_API_HOSTNAME,
  DEMO_CHAIN_INSTANCE_NAME,
  DEMO_CREDENTIAL_NAME,
  DEMO_INSTANCE_NAME,
  DemoAbortedError,
  type DemoCheck,
  type DemoOptions,
  type DemoProgressEvent,
  type DemoResult,
  removeDemoObjects,
  runDemo,
} from './run-demo.js';
