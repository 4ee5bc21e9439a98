import {
  AGENT_CONTAINER_NAME,
  type FileContributionV2,
  type JsonObject,
  KeywardError,
  type PlanWarningV2,
  type ReceivedRequestV2,
  registerSecret,
  type SecretContributionV2,
  type SidecarContextV2,
  type SidecarContributionV2,
  type SidecarProviderV2,
  type SidecarStateV2,
} from '@keyward/core';
import { openSecret, sealKeyFromOpenKey } from '@keyward/tokenizer';
import {
  credentialSecretNames,
  credentialVariableNames,
  requestSecretNames,
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
  sealedCredentialRequestSchema,
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
  type TokenizerAnsweredRequestMetadata,
  type TokenizerCredentialMetadata,
  type TokenizerMetadata,
  tokenizerMetadataSchema,
} from './tokenizer-metadata.js';
import { generateTokenizerSkill, TOKENIZER_SKILL_PATH } from './tokenizer-skill.js';
import { tokenizerVerification } from './tokenizer-verification.js';
import { nextRedactedTokenizerConfig, tokenizerView } from './tokenizer-view.js';

export const TOKENIZER_PROVIDER_ID = 'tokenizer';
/** The OpenTelemetry Collector sidecar: when present, the proxy exports its spans and metrics to it. */
const TELEMETRY_PROVIDER_ID = 'otel';
/** The request kind other sidecars send to have a credential sealed for their container. */
export const SEALED_CREDENTIAL_REQUEST_KIND = 'sealed-credential';

export interface TokenizerProviderSettings {
  /** Image used when a config has no `image`; defaults to `TOKENIZER_DEFAULT_IMAGE`. */
  defaultImage?: string;
}

/** What the tokenizer exports to the providers that require it (non-secret). */
export interface TokenizerExports {
  /** The proxy URL as the agent dials it. Other containers build theirs from `proxy` with `addressOf`. */
  proxyUrl: string;
  proxy: { container: string; port: number };
  /** Public X25519 key (hex) that seals for this instance's proxy. */
  sealKey: string;
}

type Provider = SidecarProviderV2<TokenizerConfig, TokenizerChange>;

export type TokenizerProvider = Provider & {
  readonly rotation: NonNullable<Provider['rotation']>;
  readonly verification: NonNullable<Provider['verification']>;
  readonly view: NonNullable<Provider['view']>;
  readonly answers: NonNullable<Provider['answers']>;
  readonly errorCodes: NonNullable<Provider['errorCodes']>;
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

/** A credential sealed for another sidecar's container, with where it goes. */
interface AnsweredRequest {
  from: string;
  id: string;
  container: string;
  variables: { token: string; auth: string };
  sealed: SealedCredential;
}

/** The collector's OTLP/HTTP endpoint from the otel sidecar's exports (`otlpHttp: { container, port }`). */
function collectorEndpoint(context: SidecarContextV2): { container: string; port: number } | undefined {
  const value = context.dependencies[TELEMETRY_PROVIDER_ID]?.exports.otlpHttp as
    | { container?: unknown; port?: unknown }
    | undefined;
  return typeof value?.container === 'string' && typeof value.port === 'number'
    ? { container: value.container, port: value.port }
    : undefined;
}

function buildContribution(
  context: SidecarContextV2,
  runtime: TokenizerRuntimeOptions,
  keys: TokenizerKeyPair,
  credentials: readonly SealedCredential[],
  answered: readonly AnsweredRequest[],
  extraWarnings: readonly PlanWarningV2[] = [],
): SidecarContributionV2 {
  const proxyUrl = `http://${context.addressOf(AGENT_CONTAINER_NAME, TOKENIZER_CONTAINER_NAME, runtime.port)}`;
  const secrets: SecretContributionV2[] = [openKeySecret(keys.openKey)];
  const agentEnv: Record<string, string> = {
    TOKENIZER_PROXY_URL: proxyUrl,
    TOKENIZER_SEAL_KEY: keys.sealKey,
  };
  const collector = collectorEndpoint(context);
  const connections = [{ from: AGENT_CONTAINER_NAME, to: TOKENIZER_CONTAINER_NAME, port: runtime.port }];
  let containerOptions = runtime;
  if (collector !== undefined) {
    containerOptions = {
      ...runtime,
      telemetry: {
        endpoint: `http://${context.addressOf(TOKENIZER_CONTAINER_NAME, collector.container, collector.port)}`,
        serviceName: `${context.instanceName}-tokenizer`,
      },
    };
    connections.push({ from: TOKENIZER_CONTAINER_NAME, to: collector.container, port: collector.port });
  }
  const usedSecretNames = new Set<string>([OPEN_KEY_SECRET_NAME]);
  const claim = (names: { token: string; auth?: string }) => {
    for (const name of [names.token, names.auth].filter((item): item is string => item !== undefined)) {
      // Suffixes carry a hash of the key; a clash would need two keys with equal hashes.
      if (usedSecretNames.has(name)) invalid(`Two credentials map to the secret name "${name}"; rename one.`);
      usedSecretNames.add(name);
    }
  };
  const credentialMetadata: TokenizerCredentialMetadata[] = [];
  for (const credential of credentials) {
    const { shape } = credential;
    const variables = credentialVariableNames(shape.name);
    const secretNames = credentialSecretNames(shape.name);
    claim(secretNames);
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

  const requestMetadata: TokenizerAnsweredRequestMetadata[] = [];
  // Requests from one container that name the same password variable share one password
  // (a gateway's HTTP_PROXY carries one): its secret is made once, for the first of them.
  const sharedAuthNames = new Map<string, string>();
  for (const answer of answered) {
    const { shape } = answer.sealed;
    const ownNames = requestSecretNames(answer.from, answer.id);
    const group = passwordGroup(answer);
    const sharedAuth = sharedAuthNames.get(group);
    const secretNames = { token: ownNames.token, auth: sharedAuth ?? ownNames.auth };
    claim(sharedAuth ? { token: secretNames.token } : secretNames);
    // Only the asking container sees them; the agent never does.
    secrets.push({
      name: secretNames.token,
      value: answer.sealed.sealedToken,
      visibleTo: [answer.container],
      delivery: { type: 'env', variable: answer.variables.token },
      forRequest: answer.id,
    });
    if (!sharedAuth) {
      sharedAuthNames.set(group, secretNames.auth);
      secrets.push({
        name: secretNames.auth,
        value: answer.sealed.authPassword,
        visibleTo: [answer.container],
        delivery: { type: 'env', variable: answer.variables.auth },
        forRequest: answer.id,
      });
    }
    requestMetadata.push({
      from: answer.from,
      id: answer.id,
      container: answer.container,
      name: shape.name,
      allowedHosts: [...shape.allowedHosts],
      ...(shape.headerDst === undefined ? {} : { headerDst: shape.headerDst }),
      ...(shape.headerFmt === undefined ? {} : { headerFmt: shape.headerFmt }),
      ...(shape.processor === undefined ? {} : { processor: shape.processor }),
      secretNames,
      variables: { ...answer.variables },
      tokenFingerprint: tokenFingerprint(answer.sealed.sealedToken),
    });
  }

  const files: FileContributionV2[] = [
    {
      container: AGENT_CONTAINER_NAME,
      root: 'skills',
      path: TOKENIZER_SKILL_PATH,
      content: generateTokenizerSkill({ proxyUrl, credentials: credentials.map((item) => item.shape) }),
      mode: 0o644,
    },
  ];
  files.push(
    allowedTokensFile([
      ...credentials.map((credential) => ({
        sealedToken: credential.sealedToken,
        name: credential.shape.name,
      })),
      ...answered.map((answer) => ({
        sealedToken: answer.sealed.sealedToken,
        name: answer.sealed.shape.name,
      })),
    ]),
  );
  if (runtime.upstreamCaCertificates !== undefined)
    files.push(upstreamCaFile(runtime.upstreamCaCertificates));

  const warnings: PlanWarningV2[] = [...extraWarnings];
  if (credentials.length === 0 && answered.length === 0) {
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
    schemaVersion: 2,
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
    requests: requestMetadata,
  };
  const exports: TokenizerExports = {
    proxyUrl,
    proxy: { container: TOKENIZER_CONTAINER_NAME, port: runtime.port },
    sealKey: keys.sealKey,
  };

  return {
    containers: [tokenizerContainer(containerOptions)],
    secrets,
    files,
    agentEnv,
    connections,
    exports: exports as unknown as JsonObject,
    metadata: metadataToJson(metadata),
    ...(warnings.length > 0 ? { warnings } : {}),
  };
}

function passwordGroup(answer: { from: string; container: string; variables: { auth: string } }): string {
  return `${answer.from}\u0000${answer.container}\u0000${answer.variables.auth}`;
}

/** Seals what other sidecars asked for, each for the container that asked. */
function answerRequests(
  requests: readonly ReceivedRequestV2[],
  sealKey: string,
  randomBytes: (length: number) => Uint8Array,
): AnsweredRequest[] {
  const passwords = new Map<string, string>();
  const variablesByContainer = new Map<string, { tokens: Set<string>; auths: Set<string> }>();
  return requests.map((request) => {
    if (request.kind !== SEALED_CREDENTIAL_REQUEST_KIND) {
      throw new KeywardError({
        code: 'UNSUPPORTED_CAPABILITY',
        providerId: request.from,
        message: `Sidecar "${request.from}" asked the tokenizer for "${request.kind}"; the tokenizer answers only "${SEALED_CREDENTIAL_REQUEST_KIND}".`,
      });
    }
    // The composer validated the payload already; parse again for the defaults and types.
    const parsed = sealedCredentialRequestSchema.safeParse(request.payload);
    if (!parsed.success) {
      const problems = parsed.error.issues.map(
        (issue) =>
          `sidecars.${request.from} (request ${request.id}).${issue.path.join('.')}: ${issue.message}`,
      );
      throw new KeywardError({
        code: 'INVALID_PROVIDER_CONFIG',
        providerId: request.from,
        message: `Sidecar "${request.from}" asked the tokenizer to seal an invalid credential: ${problems.join('; ')}`,
        details: { problems },
      });
    }
    const payload = parsed.data;
    const variables = {
      token: payload.tokenVariable,
      auth: payload.authVariable ?? `${payload.tokenVariable}_AUTH`,
    };
    const used = variablesByContainer.get(request.container) ?? {
      tokens: new Set<string>(),
      auths: new Set<string>(),
    };
    variablesByContainer.set(request.container, used);
    if (
      used.tokens.has(variables.token) ||
      used.auths.has(variables.token) ||
      used.tokens.has(variables.auth)
    ) {
      throw new KeywardError({
        code: 'PROVIDER_CONTRACT_VIOLATION',
        providerId: request.from,
        message: `Sidecar "${request.from}" asked for two sealed credentials in container "${request.container}" that use the variable ${used.tokens.has(variables.auth) ? variables.auth : variables.token} for different values; give each token its own variable (a shared password variable is fine).`,
      });
    }
    used.tokens.add(variables.token);
    used.auths.add(variables.auth);
    const group = passwordGroup({ from: request.from, container: request.container, variables });
    const sealed = sealCredential(
      shapeOf(payload),
      payload.secret,
      sealKey,
      randomBytes,
      passwords.get(group),
    );
    passwords.set(group, sealed.authPassword);
    return { from: request.from, id: request.id, container: request.container, variables, sealed };
  });
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

function readMetadata(current: SidecarStateV2): TokenizerMetadata {
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

/** A sealed token and password the target still holds, checked against the stored fingerprint. */
function storedSealed(
  current: SidecarStateV2,
  secretNames: { token: string; auth: string },
  fingerprint: string,
  what: string,
  remedy: string,
): { sealedToken: string; authPassword: string } {
  const sealedToken = current.secrets[secretNames.token];
  const authPassword = current.secrets[secretNames.auth];
  if (!sealedToken || !authPassword) {
    throw new KeywardError({
      code: 'ROTATION_FAILED',
      providerId: TOKENIZER_PROVIDER_ID,
      message: `The target no longer holds the sealed token or proxy password of ${what}, so it cannot be kept; ${remedy}`,
    });
  }
  if (tokenFingerprint(sealedToken) !== fingerprint) {
    throw new KeywardError({
      code: 'ROTATION_FAILED',
      providerId: TOKENIZER_PROVIDER_ID,
      message: `The sealed token the target holds for ${what} is not the one keyward sealed (fingerprint mismatch); ${remedy}`,
    });
  }
  registerSecret(authPassword);
  return { sealedToken, authPassword };
}

/** The kept credential as it was sealed; the change may only repeat what is sealed. */
function keptCredential(
  requested: TokenizerChangeCredential,
  existing: TokenizerCredentialMetadata,
  current: SidecarStateV2,
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
  const stored = storedSealed(
    current,
    existing.secretNames,
    existing.tokenFingerprint,
    `credential "${existing.name}"`,
    'give its secret again to seal it anew.',
  );
  return {
    // The name may be re-cased by the caller; everything sealed stays as it was.
    shape: shapeOf({ ...existing, name: requested.name }),
    ...stored,
  };
}

/** What was sealed for other sidecars, kept byte for byte: a rotation sees no requests. */
function keptAnswers(metadata: TokenizerMetadata, current: SidecarStateV2): AnsweredRequest[] {
  return metadata.requests.map((request) => ({
    from: request.from,
    id: request.id,
    container: request.container,
    variables: { ...request.variables },
    sealed: {
      shape: shapeOf(request),
      ...storedSealed(
        current,
        request.secretNames,
        request.tokenFingerprint,
        `the credential "${request.name}" sealed for sidecar "${request.from}"`,
        `redeploy the instance so sidecar "${request.from}" asks for it again.`,
      ),
    },
  }));
}

/**
 * Kept tokens sealed before the header was pinned (keyward 0.1.0) still let the client choose
 * the header: say so, since only a new secret can fix it. Reads dst/fmt only.
 */
function unpinnedHeaderWarning(kept: readonly SealedCredential[], openKey: string): PlanWarningV2[] {
  const unpinned = kept.filter((credential) => {
    const type = credential.shape.processor?.type ?? 'inject';
    if (type !== 'inject' && type !== 'inject_hmac') return false;
    try {
      const processor = openSecret(credential.sealedToken, openKey).processor as {
        dst?: string;
        fmt?: string;
      };
      return !processor.dst || !processor.fmt;
    } catch {
      return false;
    }
  });
  if (unpinned.length === 0) return [];
  return [
    {
      code: 'TOKENIZER_HEADER_NOT_PINNED',
      message: `Credential${unpinned.length > 1 ? 's' : ''} ${unpinned.map((item) => `"${item.shape.name}"`).join(', ')} ${unpinned.length > 1 ? 'were' : 'was'} sealed before keyward fixed the header at seal time: the agent can ask the proxy to write ${unpinned.length > 1 ? 'them' : 'it'} into another header. Give ${unpinned.length > 1 ? 'their secrets' : 'its secret'} again to seal ${unpinned.length > 1 ? 'them' : 'it'} with a fixed header.`,
    },
  ];
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

  const contribute = (context: SidecarContextV2, config: TokenizerConfig): SidecarContributionV2 => {
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
      answerRequests(context.requests, keys.sealKey, context.randomBytes),
    );
  };

  const rotate = (
    context: SidecarContextV2,
    current: SidecarStateV2,
    change: TokenizerChange,
  ): SidecarContributionV2 => {
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
    // What other sidecars asked for stays; they hold its sealed tokens and cannot ask again
    // until the instance is redeployed.
    const keptRequests = metadata.requests;
    const keeping = [
      ...kept.map((item) => `"${item.name}"`),
      ...keptRequests.map((item) => `"${item.name}" (sealed for sidecar "${item.from}")`),
    ];
    // With nothing kept, a fresh key also revokes any copy of a removed or replaced
    // token. With kept credentials, the key that sealed them is the only one that works.
    let keys =
      keeping.length > 0 ? currentKeyPair(current.secrets[metadata.openKeySecret], metadata) : undefined;
    if (keys === undefined) {
      if (keeping.length > 0) {
        const reason = current.secrets[metadata.openKeySecret]
          ? 'the open key the target holds does not match the seal key the credentials were sealed with'
          : 'the target no longer holds the open key';
        throw new KeywardError({
          code: 'OPEN_KEY_MISSING',
          providerId: TOKENIZER_PROVIDER_ID,
          message: `Cannot keep ${keeping.join(', ')}: ${reason}, and a new key would make their sealed tokens useless. ${
            keptRequests.length > 0
              ? 'Redeploy the instance to seal every credential with a new key.'
              : "Give every credential's secret again to seal them all with a new key."
          }`,
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
    const answers = keptAnswers(metadata, current);
    const keptSealed = [
      ...credentials.filter((_credential, index) =>
        isKept(change.credentials[index] as TokenizerChangeCredential),
      ),
      ...answers.map((answer) => answer.sealed),
    ];
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
      answers,
      unpinnedHeaderWarning(keptSealed, activeKeys.openKey),
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
    specificationVersion: 'v2',
    id: TOKENIZER_PROVIDER_ID,
    displayName: 'Tokenizer credential proxy',
    configSchema: tokenizerConfigSchema,
    capabilities: { networkModes: ['proxy-only', 'open'] },
    requires: [{ provider: TELEMETRY_PROVIDER_ID, optional: true }],
    answers: { [SEALED_CREDENTIAL_REQUEST_KIND]: sealedCredentialRequestSchema },
    contribute,
    redactConfig,
    rotation: {
      changeSchema: tokenizerChangeSchema,
      rotate,
      nextRedactedConfig: nextRedactedTokenizerConfig,
    },
    verification: tokenizerVerification,
    view: tokenizerView,
    errorCodes: {
      OPEN_KEY_MISSING: {
        // The change is well formed; the instance's state (its open key is gone or not the one
        // that sealed the kept tokens) conflicts with keeping them. Sending every secret resolves it.
        httpStatus: 409,
        description:
          'A rotation keeps credentials, but the target no longer holds the open key that sealed them (or holds another); give every secret again.',
      },
    },
    redactionPatterns: [/^TOKENIZER_(CRED|AUTH)_/i],
    routeAliases: ['tokenizer'],
    // Its view and change follow the credential-list contract `keyward creds` manages.
    roles: ['credentials'],
  };
}
