import {
  AGENT_CONTAINER_NAME,
  type JsonObject,
  KeywardError,
  type PlanWarningV1,
  registerSecret,
  type SecretContributionV1,
  type SidecarContextV1,
  type SidecarContributionV1,
  type SidecarProviderV1,
  type SidecarRotationStateV1,
} from '@keyward/core';
import { sealKeyFromOpenKey } from '@keyward/tokenizer';
import {
  credentialSecretNames,
  credentialVariableNames,
  sanitizeCredentialName,
} from './credential-names.js';
import {
  type CredentialShape,
  newKeyPair,
  type SealedCredential,
  sealCredential,
  type TokenizerKeyPair,
  tokenFingerprint,
} from './credential-sealing.js';
import {
  TOKENIZER_DEFAULT_IMAGE,
  type TokenizerChange,
  type TokenizerChangeCredential,
  type TokenizerConfig,
  tokenizerChangeSchema,
  tokenizerConfigSchema,
} from './tokenizer-config.js';
import {
  allowedTokensFile,
  OPEN_KEY_SECRET_NAME,
  openKeySecret,
  TOKENIZER_CONTAINER_NAME,
  type TokenizerRuntimeOptions,
  tokenizerContainer,
  upstreamCaFile,
} from './tokenizer-container.js';
import {
  metadataToJson,
  type TokenizerCredentialMetadata,
  type TokenizerMetadata,
  tokenizerMetadataSchema,
} from './tokenizer-metadata.js';
import { generateTokenizerSkill, TOKENIZER_SKILL_PATH } from './tokenizer-skill.js';

export const TOKENIZER_PROVIDER_ID = 'tokenizer';

export interface TokenizerProviderSettings {
  /** Image used when a config has no `image`; defaults to `TOKENIZER_DEFAULT_IMAGE`. */
  defaultImage?: string;
}

export type TokenizerProvider = SidecarProviderV1<TokenizerConfig, TokenizerChange> & {
  readonly rotation: NonNullable<SidecarProviderV1<TokenizerConfig, TokenizerChange>['rotation']>;
};

function invalid(message: string, details?: Record<string, unknown>): never {
  throw new KeywardError({
    code: 'INVALID_PROVIDER_CONFIG',
    providerId: TOKENIZER_PROVIDER_ID,
    message,
    ...(details ? { details } : {}),
  });
}

function shapeOf(credential: {
  name: string;
  allowedHosts: string[];
  headerDst?: string | undefined;
  headerFmt?: string | undefined;
  processor?: CredentialShape['processor'];
}): CredentialShape {
  return {
    name: credential.name,
    allowedHosts: [...credential.allowedHosts],
    ...(credential.headerDst === undefined ? {} : { headerDst: credential.headerDst }),
    ...(credential.headerFmt === undefined ? {} : { headerFmt: credential.headerFmt }),
    ...(credential.processor === undefined ? {} : { processor: credential.processor }),
  };
}

function buildContribution(
  context: SidecarContextV1,
  runtime: TokenizerRuntimeOptions,
  keys: TokenizerKeyPair,
  credentials: readonly SealedCredential[],
): SidecarContributionV1 {
  const proxyUrl = context.addressOf(TOKENIZER_CONTAINER_NAME, runtime.port);
  const secrets: SecretContributionV1[] = [openKeySecret(keys.openKey)];
  const agentEnv: Record<string, string> = {
    TOKENIZER_PROXY_URL: proxyUrl,
    TOKENIZER_SEAL_KEY: keys.sealKey,
  };
  const credentialMetadata: TokenizerCredentialMetadata[] = [];
  const usedSecretNames = new Set<string>([OPEN_KEY_SECRET_NAME]);
  for (const credential of credentials) {
    const { shape } = credential;
    const variables = credentialVariableNames(shape.name);
    const secretNames = credentialSecretNames(shape.name);
    for (const name of [secretNames.token, secretNames.auth]) {
      // Suffixes carry a hash of the key; a clash would need two keys with equal hashes.
      if (usedSecretNames.has(name)) invalid(`Two credentials map to the secret name "${name}"; rename one.`);
      usedSecretNames.add(name);
    }
    secrets.push(
      {
        name: secretNames.token,
        value: credential.sealedToken,
        visibleTo: [AGENT_CONTAINER_NAME],
        delivery: { type: 'env', variable: variables.token },
        agentSafe: true,
      },
      {
        name: secretNames.auth,
        value: credential.authPassword,
        visibleTo: [AGENT_CONTAINER_NAME],
        delivery: { type: 'env', variable: variables.auth },
        agentSafe: true,
      },
    );
    agentEnv[variables.hosts] = shape.allowedHosts.join(',');
    credentialMetadata.push({
      name: shape.name,
      key: sanitizeCredentialName(shape.name),
      allowedHosts: [...shape.allowedHosts],
      ...(shape.headerDst === undefined ? {} : { headerDst: shape.headerDst }),
      ...(shape.headerFmt === undefined ? {} : { headerFmt: shape.headerFmt }),
      ...(shape.processor === undefined ? {} : { processor: shape.processor }),
      secretNames,
      variables,
      tokenFingerprint: tokenFingerprint(credential.sealedToken),
    });
  }

  const files: SidecarContributionV1['files'] = [
    {
      container: AGENT_CONTAINER_NAME,
      root: 'skills',
      path: TOKENIZER_SKILL_PATH,
      content: generateTokenizerSkill({ proxyUrl, credentials: credentials.map((item) => item.shape) }),
      mode: 0o644,
    },
  ];
  files.push(allowedTokensFile(credentials.map((credential) => credential.sealedToken)));
  if (runtime.upstreamCaCertificates !== undefined)
    files.push(upstreamCaFile(runtime.upstreamCaCertificates));

  const warnings: PlanWarningV1[] = [];
  if (credentials.length === 0) {
    warnings.push({
      code: 'TOKENIZER_NO_CREDENTIALS',
      message: 'The tokenizer has no credentials: it refuses every request until you add one.',
    });
  }
  if (runtime.allowPrivateUpstreams) {
    warnings.push({
      code: 'TOKENIZER_PRIVATE_UPSTREAMS',
      message:
        'allowPrivateUpstreams is on: the tokenizer may connect to private and loopback addresses. Use it only for local upstreams you control.',
    });
  }

  const metadata: TokenizerMetadata = {
    schemaVersion: 1,
    image: runtime.image,
    port: runtime.port,
    adminPort: runtime.adminPort,
    allowPrivateUpstreams: runtime.allowPrivateUpstreams,
    ...(runtime.upstreamCaCertificates === undefined
      ? {}
      : { upstreamCaCertificates: runtime.upstreamCaCertificates }),
    sealKey: keys.sealKey,
    openKeySecret: OPEN_KEY_SECRET_NAME,
    proxyUrl,
    credentials: credentialMetadata,
  };

  return {
    containers: [tokenizerContainer(runtime)],
    secrets,
    files,
    agentEnv,
    metadata: metadataToJson(metadata),
    ...(warnings.length > 0 ? { warnings } : {}),
  };
}

function isKept(credential: TokenizerChangeCredential): boolean {
  return credential.secret === undefined || credential.secret === '';
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  const left = [...a].sort();
  const right = [...b].sort();
  return left.length === right.length && left.every((value, index) => value === right[index]);
}

// Key order is not meaningful: stored metadata may come back re-serialised.
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value)
      .filter(([, item]) => item !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

function sameJson(a: unknown, b: unknown): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

function readMetadata(current: SidecarRotationStateV1): TokenizerMetadata {
  const parsed = tokenizerMetadataSchema.safeParse(current.metadata);
  if (!parsed.success) {
    throw new KeywardError({
      code: 'ROTATION_FAILED',
      providerId: TOKENIZER_PROVIDER_ID,
      message:
        'The stored tokenizer metadata is missing or not in the expected format, so kept credentials cannot be found; redeploy the instance with every credential.',
      details: { problems: parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`) },
    });
  }
  return parsed.data as TokenizerMetadata;
}

/** The kept credential as it was sealed; the change may only repeat what is sealed. */
function keptCredential(
  requested: TokenizerChangeCredential,
  existing: TokenizerCredentialMetadata,
  current: SidecarRotationStateV1,
): SealedCredential {
  const differences: string[] = [];
  if (requested.allowedHosts !== undefined && !sameList(requested.allowedHosts, existing.allowedHosts)) {
    differences.push(`allowedHosts (sealed: ${existing.allowedHosts.join(', ')})`);
  }
  if (requested.headerDst !== undefined && requested.headerDst !== existing.headerDst) {
    differences.push(`headerDst (sealed: ${existing.headerDst ?? 'Authorization'})`);
  }
  if (requested.headerFmt !== undefined && requested.headerFmt !== existing.headerFmt) {
    differences.push(`headerFmt (sealed: ${existing.headerFmt ?? 'Bearer %s'})`);
  }
  if (requested.processor !== undefined && !sameJson(requested.processor, existing.processor)) {
    differences.push('processor');
  }
  if (differences.length > 0) {
    throw new KeywardError({
      code: 'INVALID_INPUT',
      providerId: TOKENIZER_PROVIDER_ID,
      message: `Credential "${requested.name}" is kept (empty secret) but its ${differences.join(' and ')} differ from what is sealed in its token. Hosts and header options live inside the sealed token: give the secret again to change them, or send the current values.`,
      details: { credential: requested.name },
    });
  }
  const sealedToken = current.secrets[existing.secretNames.token];
  const authPassword = current.secrets[existing.secretNames.auth];
  if (!sealedToken || !authPassword) {
    throw new KeywardError({
      code: 'ROTATION_FAILED',
      providerId: TOKENIZER_PROVIDER_ID,
      message: `The target no longer holds the sealed token or proxy password of credential "${existing.name}", so it cannot be kept; give its secret again to seal it anew.`,
      details: { credential: existing.name },
    });
  }
  if (tokenFingerprint(sealedToken) !== existing.tokenFingerprint) {
    throw new KeywardError({
      code: 'ROTATION_FAILED',
      providerId: TOKENIZER_PROVIDER_ID,
      message: `The sealed token the target holds for credential "${existing.name}" is not the one keyward sealed (fingerprint mismatch); give its secret again to seal it anew.`,
      details: { credential: existing.name },
    });
  }
  registerSecret(authPassword);
  return {
    // The name may be re-cased by the caller; everything sealed stays as it was.
    shape: shapeOf({ ...existing, name: requested.name }),
    sealedToken,
    authPassword,
  };
}

function currentKeyPair(
  openKey: string | undefined,
  metadata: TokenizerMetadata,
): TokenizerKeyPair | undefined {
  if (!openKey) return undefined;
  let sealKey: string;
  try {
    sealKey = sealKeyFromOpenKey(openKey);
  } catch {
    return undefined;
  }
  if (sealKey !== metadata.sealKey) return undefined;
  registerSecret(openKey);
  return { openKey, sealKey };
}

export function createTokenizerProvider(settings: TokenizerProviderSettings = {}): TokenizerProvider {
  const defaultImage = settings.defaultImage ?? TOKENIZER_DEFAULT_IMAGE;

  const contribute = (context: SidecarContextV1, config: TokenizerConfig): SidecarContributionV1 => {
    const missing = config.credentials
      .map((credential, index) => ({ credential, index }))
      .filter(({ credential }) => credential.secret === undefined || credential.secret === '');
    if (missing.length > 0) {
      const problems = missing.map(
        ({ credential, index }) =>
          `sidecars.tokenizer.credentials.${index}.secret: credential "${credential.name}" has no secret; write its value (for example the API token) in "secret"`,
      );
      invalid(`Invalid config for sidecar "tokenizer": ${problems.join('; ')}`, { problems });
    }
    const keys = newKeyPair(context.randomBytes);
    const sealed = config.credentials.map((credential) =>
      sealCredential(shapeOf(credential), credential.secret as string, keys.sealKey, context.randomBytes),
    );
    return buildContribution(
      context,
      {
        image: config.image ?? defaultImage,
        port: config.port,
        adminPort: config.adminPort,
        allowPrivateUpstreams: config.allowPrivateUpstreams,
        upstreamCaCertificates: config.upstreamCaCertificates,
      },
      keys,
      sealed,
    );
  };

  const rotate = (
    context: SidecarContextV1,
    current: SidecarRotationStateV1,
    change: TokenizerChange,
  ): SidecarContributionV1 => {
    const metadata = readMetadata(current);
    const existingByKey = new Map(metadata.credentials.map((credential) => [credential.key, credential]));
    const kept = change.credentials.filter(isKept);
    for (const credential of kept) {
      if (!existingByKey.has(sanitizeCredentialName(credential.name))) {
        const names = metadata.credentials.map((item) => `"${item.name}"`).join(', ') || 'none';
        throw new KeywardError({
          code: 'INVALID_INPUT',
          providerId: TOKENIZER_PROVIDER_ID,
          message: `Credential "${credential.name}" has an empty secret, which means "keep", but the instance has no credential by that name (it has: ${names}). Give its secret to add it, or fix the name.`,
          details: { credential: credential.name },
        });
      }
    }
    // With nothing kept, a fresh key also revokes any copy of a removed or replaced
    // token. With kept credentials, the key that sealed them is the only one that works.
    let keys =
      kept.length > 0 ? currentKeyPair(current.secrets[metadata.openKeySecret], metadata) : undefined;
    if (keys === undefined) {
      if (kept.length > 0) {
        const reason = current.secrets[metadata.openKeySecret]
          ? 'the open key the target holds does not match the seal key the credentials were sealed with'
          : 'the target no longer holds the open key';
        throw new KeywardError({
          code: 'OPEN_KEY_MISSING',
          providerId: TOKENIZER_PROVIDER_ID,
          message: `Cannot keep ${kept.map((item) => `"${item.name}"`).join(', ')}: ${reason}, and a new key would make their sealed tokens useless. Give every credential's secret again to seal them all with a new key.`,
        });
      }
      keys = newKeyPair(context.randomBytes);
    }
    const activeKeys = keys;
    const credentials = change.credentials.map((credential) => {
      if (isKept(credential)) {
        const existing = existingByKey.get(sanitizeCredentialName(credential.name));
        // Checked above.
        if (!existing) throw new Error('unreachable');
        return keptCredential(credential, existing, current);
      }
      return sealCredential(
        shapeOf({ ...credential, allowedHosts: credential.allowedHosts ?? [] }),
        credential.secret as string,
        activeKeys.sealKey,
        context.randomBytes,
      );
    });
    return buildContribution(
      context,
      {
        image: metadata.image,
        port: metadata.port,
        adminPort: metadata.adminPort,
        allowPrivateUpstreams: metadata.allowPrivateUpstreams,
        upstreamCaCertificates: metadata.upstreamCaCertificates,
      },
      activeKeys,
      credentials,
    );
  };

  const redactConfig = (config: TokenizerConfig): JsonObject => {
    const redacted = {
      credentials: config.credentials.map((credential) => shapeOf(credential)),
      ...(config.image === undefined ? {} : { image: config.image }),
      port: config.port,
      adminPort: config.adminPort,
      allowPrivateUpstreams: config.allowPrivateUpstreams,
      ...(config.upstreamCaCertificates === undefined
        ? {}
        : { upstreamCaCertificates: config.upstreamCaCertificates }),
    };
    return JSON.parse(JSON.stringify(redacted)) as JsonObject;
  };

  return {
    specificationVersion: 'v1',
    id: TOKENIZER_PROVIDER_ID,
    displayName: 'Tokenizer credential proxy',
    configSchema: tokenizerConfigSchema,
    capabilities: { networkModes: ['proxy-only', 'open'] },
    contribute,
    redactConfig,
    rotation: { changeSchema: tokenizerChangeSchema, rotate },
  };
}
