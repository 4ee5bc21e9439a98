export { collectorConfiguration } from './collector-configuration.js';
export {
  OTEL_DEFAULT_BINARY,
  OTEL_DEFAULT_IMAGE,
  type OtelConfig,
  type OtelConfigInput,
  otelConfigSchema,
} from './otel-config.js';
export { telemetryChecks, telemetrySelfTestScript } from './otel-self-test.js';
export {
  createOtelProvider,
  OTEL_CONFIG_PATH,
  OTEL_CONTAINER_NAME,
  OTEL_PROVIDER_ID,
  type OtelExports,
  type OtelProvider,
  type OtelProviderSettings,
} from './otel-sidecar-provider.js';

export const VERSION = '0.1.0';
