export { sanitizeCredentialName } from './credential-names.js';
export {
  DEFAULT_HEADER_DST,
  DEFAULT_HEADER_FMT,
  DEFAULT_HMAC_FMT,
  type SealedCredentialRequest,
  type SealedCredentialRequestInput,
  sealedCredentialRequestSchema,
  TOKENIZER_DEFAULT_IMAGE,
  type TokenizerChange,
  type TokenizerChangeCredential,
  type TokenizerChangeInput,
  type TokenizerConfig,
  type TokenizerConfigInput,
  type TokenizerCredentialConfig,
  type TokenizerProcessorConfig,
  type TokenizerProcessorType,
} from './tokenizer-config.js';
export type {
  TokenizerAnsweredRequestMetadata,
  TokenizerCredentialMetadata,
  TokenizerMetadata,
} from './tokenizer-metadata.js';
export {
  createTokenizerProvider,
  SEALED_CREDENTIAL_REQUEST_KIND,
  TOKENIZER_PROVIDER_ID,
  type TokenizerExports,
  type TokenizerProvider,
  type TokenizerProviderSettings,
} from './tokenizer-sidecar-provider.js';
export {
  generateTokenizerSkill,
  type SkillCredential,
  type TokenizerSkillOptions,
} from './tokenizer-skill.js';
export {
  DEFAULT_UNBOUND_URL,
  PROBE_HEADER,
  type TokenizerVerifyOptions,
  tokenizerVerifyOptionsSchema,
} from './tokenizer-verification.js';
export {
  type TokenizerCredentialView,
  type TokenizerView,
  tokenizerViewSchema,
} from './tokenizer-view.js';

export const VERSION = '0.1.0';
