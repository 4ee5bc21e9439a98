export { sanitizeCredentialName } from './credential-names.js';
export {
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
export type { TokenizerCredentialMetadata, TokenizerMetadata } from './tokenizer-metadata.js';
export {
  createTokenizerProvider,
  type TokenizerProvider,
  type TokenizerProviderSettings,
} from './tokenizer-sidecar-provider.js';
export {
  generateTokenizerSkill,
  type SkillCredential,
  type TokenizerSkillOptions,
} from './tokenizer-skill.js';

export const VERSION = '0.1.0';
