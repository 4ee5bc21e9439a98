import type { ContainerContributionV2, FileContributionV2, SecretContributionV2 } from '@keyward/core';
import { tokenDigest } from '@keyward/tokenizer';

export const TOKENIZER_CONTAINER_NAME = 'tokenizer';
export const OPEN_KEY_SECRET_NAME = 'tokenizer-open-key';
/** Only the tokenizer container mounts this file; it never reaches env, argv or the agent. */
export const OPEN_KEY_FILE_PATH = '/run/keyward/tokenizer/open-key';
export const UPSTREAM_CA_FILE_PATH = '/etc/keyward/tokenizer/upstream-ca.pem';
/** SHA-256 of every token keyward sealed for this instance: the only tokens the proxy opens. */
export const ALLOWED_TOKENS_FILE_PATH = '/etc/keyward/tokenizer/allowed-tokens';
/** The distroless "nonroot" uid/gid; the image runs as it too. */
export const TOKENIZER_USER_ID = 65532;
export const READINESS_PATH = '/health';

/** Environment variables the `@keyward/tokenizer` server reads. */
export const serverEnvironment = {
  listenAddress: 'LISTEN_ADDRESS',
  openKeyFile: 'OPEN_KEY_FILE',
  adminListenAddress: 'ADMIN_LISTEN_ADDRESS',
  upstreamCaFile: 'TOKENIZER_UPSTREAM_CA_FILE',
  allowPrivateUpstreams: 'TOKENIZER_ALLOW_PRIVATE_UPSTREAMS',
  allowedTokensFile: 'TOKENIZER_ALLOWED_TOKENS_FILE',
  otlpEndpoint: 'OTEL_EXPORTER_OTLP_ENDPOINT',
  otlpProtocol: 'OTEL_EXPORTER_OTLP_PROTOCOL',
  serviceName: 'OTEL_SERVICE_NAME',
  tracesSampler: 'OTEL_TRACES_SAMPLER',
} as const;

/** Where the proxy sends its spans and metrics (the otel sidecar's OTLP/HTTP receiver). */
export interface TokenizerTelemetryTarget {
  /** `http://host:port` as the tokenizer container reaches the collector. */
  endpoint: string;
  serviceName: string;
}

export interface TokenizerRuntimeOptions {
  image: string;
  port: number;
  adminPort: number;
  allowPrivateUpstreams: boolean;
  upstreamCaCertificates?: string | undefined;
  /** Present when the otel sidecar is in the plan. */
  telemetry?: TokenizerTelemetryTarget | undefined;
}

export function tokenizerContainer(options: TokenizerRuntimeOptions): ContainerContributionV2 {
  const env: Record<string, string> = {
    [serverEnvironment.listenAddress]: `0.0.0.0:${options.port}`,
    [serverEnvironment.openKeyFile]: OPEN_KEY_FILE_PATH,
    [serverEnvironment.adminListenAddress]: `0.0.0.0:${options.adminPort}`,
    [serverEnvironment.allowedTokensFile]: ALLOWED_TOKENS_FILE_PATH,
  };
  if (options.upstreamCaCertificates !== undefined) {
    env[serverEnvironment.upstreamCaFile] = UPSTREAM_CA_FILE_PATH;
  }
  if (options.allowPrivateUpstreams) env[serverEnvironment.allowPrivateUpstreams] = 'true';
  if (options.telemetry !== undefined) {
    env[serverEnvironment.otlpEndpoint] = options.telemetry.endpoint;
    env[serverEnvironment.otlpProtocol] = 'http/protobuf';
    env[serverEnvironment.serviceName] = options.telemetry.serviceName;
    // An agent's calls are few: every one gets a span (the proxy's own default traces one
    // request in ten that carries no sampled trace context, for high-throughput use).
    env[serverEnvironment.tracesSampler] = 'parentbased_always_on';
  }
  return {
    name: TOKENIZER_CONTAINER_NAME,
    image: options.image,
    env,
    ports: [
      { name: 'proxy', containerPort: options.port, protocol: 'tcp' },
      { name: 'admin', containerPort: options.adminPort, protocol: 'tcp' },
    ],
    readiness: {
      type: 'http',
      port: options.adminPort,
      path: READINESS_PATH,
      timeoutSeconds: 2,
      retries: 15,
    },
    security: {
      runAsUser: TOKENIZER_USER_ID,
      runAsGroup: TOKENIZER_USER_ID,
      readOnlyRootFilesystem: true,
      dropAllCapabilities: true,
      noNewPrivileges: true,
    },
    tmpfs: ['/tmp'],
    // The proxy dials the credentials' upstreams, which the user lists per credential.
    egress: { type: 'internet' },
  };
}

export function openKeySecret(openKey: string): SecretContributionV2 {
  return {
    name: OPEN_KEY_SECRET_NAME,
    value: openKey,
    visibleTo: [TOKENIZER_CONTAINER_NAME],
    // Group-readable so the target can hand it to the container's group when it cannot chown.
    delivery: { type: 'file', path: OPEN_KEY_FILE_PATH, mode: 0o440 },
  };
}

/** A token on the proxy's allow-list, with the credential name its spans show. */
export interface AllowedToken {
  sealedToken: string;
  /** The credential's name in the instance spec (one line, no control characters). */
  name: string;
}

/**
 * The agent holds the public seal key and could seal its own token (no auth, any host) to use
 * the proxy as an open egress; with this list the proxy opens only the tokens keyward issued.
 * A rotation rewrites it, so a removed or replaced credential's old token stops working. Each
 * line names its credential after the digest: the proxy's spans carry the name next to the
 * fingerprint (names are labels, not secrets).
 */
export function allowedTokensFile(tokens: readonly AllowedToken[]): FileContributionV2 {
  const lines = tokens.map((token) => `sha256:${tokenDigest(token.sealedToken)} ${token.name}`);
  return {
    container: TOKENIZER_CONTAINER_NAME,
    root: 'absolute',
    path: ALLOWED_TOKENS_FILE_PATH,
    content: `# sealed tokens keyward issued for this instance (SHA-256 of the token text)\n${lines.map((line) => `${line}\n`).join('')}`,
    mode: 0o444,
  };
}

export function upstreamCaFile(pem: string): FileContributionV2 {
  return {
    container: TOKENIZER_CONTAINER_NAME,
    root: 'absolute',
    path: UPSTREAM_CA_FILE_PATH,
    content: pem,
    mode: 0o444,
  };
}
