export type { AuditEntry, AuditSink } from './audit-log.js';
export {
  type Environment,
  loadOpenKeyFromEnv,
  loadTokenizerConfigFromEnv,
  parseGoBool,
  type TokenizerEnvironmentConfig,
} from './config.js';
export { decodeBase64Go } from './encoding.js';
export {
  ConfigError,
  DecryptionError,
  EncodingError,
  InvalidKeyError,
  ProxyAuthError,
  SecretJsonError,
  TokenizerError,
  type TokenizerErrorCode,
} from './errors.js';
export {
  isReservedDestinationHeader,
  PROXY_CONTROLLED_HEADERS,
  RESERVED_DST_HEADERS,
} from './header-rules.js';
export {
  createTokenizerMacaroon,
  type MacaroonAccess,
  MacaroonCaveatType,
  type TokenizerMacaroonCaveats,
  verifyMacaroonToken,
} from './macaroon-auth.js';
export {
  createTokenizerServer,
  type RunningTokenizerServer,
  startTokenizerServer,
  type TokenizerServer,
  type TokenizerServerOptions,
} from './proxy-server.js';
export {
  generateOpenKey,
  OpenKey,
  open,
  SEALED_BOX_OVERHEAD,
  seal,
  sealKeyFromOpenKey,
} from './sealed-box.js';
export { bearerDigest, openSecret, sealSecret } from './secret.js';
export {
  type AuthDefinition,
  type BearerAuthDefinition,
  type BytesInput,
  type ClientCredentialsProcessorDefinition,
  type FlyioMacaroonAuthDefinition,
  type FlySrcAuthDefinition,
  type GithubAppProcessorDefinition,
  type InjectBodyProcessorDefinition,
  type InjectHmacProcessorDefinition,
  type InjectProcessorDefinition,
  type JwtProcessorDefinition,
  type MacaroonAuthDefinition,
  type MultiProcessorDefinition,
  marshalSecret,
  type NoAuthDefinition,
  type OAuth2BodyProcessorDefinition,
  type OAuth2ProcessorDefinition,
  type OAuth2Token,
  type ProcessorDefinition,
  parseSecret,
  type Secret,
  type SecretDefinition,
  type Sigv4ProcessorDefinition,
} from './secret-json.js';
export { tokenDigest } from './secret-resolver.js';
export {
  type OtlpProtocol,
  type TokenizerTelemetryOptions,
  telemetryOptionsFromEnv,
} from './telemetry.js';
export { VERSION } from './version.js';
