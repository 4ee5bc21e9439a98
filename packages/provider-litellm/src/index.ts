export {
  API_KEY_PLACEHOLDER,
  gatewayConfiguration,
  MASTER_KEY_VARIABLE,
  PROXY_PASSWORD_VARIABLE,
  sealedTokenVariable,
  upstreamBase,
} from './gateway-configuration.js';
export {
  LITELLM_DEFAULT_IMAGE,
  type LitellmConfig,
  type LitellmConfigInput,
  type LitellmCredential,
  type LitellmModel,
  litellmConfigSchema,
} from './litellm-config.js';
export { gatewayChecks, gatewaySelfTestScript } from './litellm-self-test.js';
export {
  createLitellmProvider,
  LITELLM_CONFIG_PATH,
  LITELLM_CONTAINER_NAME,
  LITELLM_PROVIDER_ID,
  type LitellmProvider,
  type LitellmProviderSettings,
  SEALING_PROVIDER_ID,
} from './litellm-sidecar-provider.js';

export const VERSION = '0.1.0';
