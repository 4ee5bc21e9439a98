import { RESERVED_DST_HEADERS } from '@keyward/tokenizer';
import * as z from 'zod';
import { sanitizeCredentialName } from './credential-names.js';

/** Image built by `@keyward/images`; override with the config's `image`. */
export const TOKENIZER_DEFAULT_IMAGE = 'localhost/keyward-tokenizer:0.1.0';
export const TOKENIZER_DEFAULT_PORT = 4001;
export const TOKENIZER_DEFAULT_ADMIN_PORT = 4002;
export const MAXIMUM_CREDENTIALS = 50;
export const MAXIMUM_NAME_LENGTH = 128;
export const MAXIMUM_HOST_LENGTH = 253;
export const MAXIMUM_LABEL_LENGTH = 63;
export const MAXIMUM_HOSTS_PER_CREDENTIAL = 100;
/** Generous for PEM keys; a bigger "secret" is a paste mistake. */
export const MAXIMUM_SECRET_LENGTH = 65_536;
export const MAXIMUM_CA_BUNDLE_LENGTH = 1_048_576;

// ---------------------------------------------------------------------------------------
// Hosts

const labelPattern = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/i;

/**
 * Checks one `allowedHosts` entry. Returns what is wrong and what to write instead, or
 * undefined. The proxy compares `host[:port]` exactly as the agent writes it in the URL.
 */
export function describeHostProblem(host: string): string | undefined {
  if (host.length === 0) return 'must not be empty; write a hostname such as "api.github.com"';
  if (/\s/.test(host)) return `"${host}" contains whitespace; write one hostname per entry`;
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(host);
  if (scheme) {
    const rest = host.slice(scheme[0].length).split(/[/?#]/)[0] ?? '';
    return `"${host}" has a scheme; write the hostname only, for example "${rest || 'api.github.com'}"`;
  }
  if (/[/?#]/.test(host)) {
    const bare = host.split(/[/?#]/)[0] ?? '';
    return `"${host}" has a path; write the hostname only, for example "${bare || 'api.github.com'}" (the credential works for every path on it)`;
  }
  if (host.includes('*')) {
    return `"${host}" has a wildcard; list each hostname the credential may reach, for example "api.github.com", "uploads.github.com"`;
  }
  if (host.includes('@')) return `"${host}" has user info; write the hostname only`;
  if (host.startsWith('[') || (host.match(/:/g) ?? []).length > 1) {
    return `"${host}" looks like an IPv6 address; use a hostname instead`;
  }
  const [hostname = '', port, ...rest] = host.split(':');
  if (rest.length > 0) return `"${host}" is not "hostname" or "hostname:port"`;
  if (port !== undefined) {
    if (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) {
      return `"${host}" has an invalid port; write "hostname:port" with a port from 1 to 65535, or leave the port out`;
    }
    if (Number(port) === 443) {
      return `"${host}": leave out ":443"; the proxy always connects with TLS to port 443 when no port is given (write "${hostname}")`;
    }
  }
  if (hostname.length === 0) return `"${host}" has no hostname; write for example "api.github.com"`;
  if (hostname.length > MAXIMUM_HOST_LENGTH) {
    return `hostname is ${hostname.length} characters; a hostname has at most ${MAXIMUM_HOST_LENGTH}`;
  }
  const hostnameWithoutDot = hostname.endsWith('.') ? hostname.slice(0, -1) : hostname;
  for (const label of hostnameWithoutDot.split('.')) {
    if (label.length > MAXIMUM_LABEL_LENGTH) {
      return `"${label.slice(0, 20)}…" is ${label.length} characters; each dot-separated part of a hostname has at most ${MAXIMUM_LABEL_LENGTH}`;
    }
    if (!labelPattern.test(label)) {
      return `"${host}" is not a hostname: use letters, digits, "-" and dots, for example "api.github.com"`;
    }
  }
  return undefined;
}

const hostListSchema = z
  .union(
    [
      z.string({ error: 'must be a list of hostnames, for example ["api.github.com"]' }),
      z.array(z.string({ error: 'each host must be a string such as "api.github.com"' })),
    ],
    { error: 'must be a list of hostnames, for example ["api.github.com"]' },
  )
  // The seed installer accepted "a.com, b.com"; keep accepting it.
  .transform((value) => (typeof value === 'string' ? value.split(',') : value))
  .transform((hosts) => hosts.map((host) => host.trim()).filter((host) => host.length > 0))
  .superRefine((hosts, context) => {
    if (hosts.length === 0) {
      context.addIssue({
        code: 'custom',
        message: 'list at least one host the credential may be sent to, for example ["api.github.com"]',
      });
    }
    if (hosts.length > MAXIMUM_HOSTS_PER_CREDENTIAL) {
      context.addIssue({
        code: 'custom',
        message: `has ${hosts.length} hosts; at most ${MAXIMUM_HOSTS_PER_CREDENTIAL} per credential: split it into several credentials`,
      });
    }
    hosts.forEach((host, index) => {
      const problem = describeHostProblem(host);
      if (problem) context.addIssue({ code: 'custom', path: [index], message: problem });
    });
  })
  // Hostnames are case-insensitive but the proxy compares exactly: store lower case,
  // which is what agents write in URLs. Duplicates add nothing.
  .transform((hosts) => [...new Set(hosts.map((host) => host.toLowerCase()))]);

// ---------------------------------------------------------------------------------------
// Header options

const headerTokenPattern = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
// The proxy's own rule: a credential sealed for one of these would be refused at request time.
const strippedHeaders = new Set(RESERVED_DST_HEADERS);

export function describeHeaderNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'must not be empty; write a header name such as "Authorization"';
  if (!headerTokenPattern.test(name)) {
    return `"${name}" is not a valid HTTP header name (letters, digits and !#$%&'*+-.^_\`|~, no spaces or ":"); for example "X-Api-Key"`;
  }
  if (strippedHeaders.has(name.toLowerCase())) {
    return `"${name}" cannot carry a credential (the proxy removes or controls it); use the header the API expects, for example "Authorization" or "X-Api-Key"`;
  }
  return undefined;
}

const headerNameSchema = z
  .string({ error: 'must be a header name such as "Authorization"' })
  .superRefine((name, context) => {
    const problem = describeHeaderNameProblem(name);
    if (problem) context.addIssue({ code: 'custom', message: problem });
  });

/** `%s` exactly once and no other `%`: what the proxy accepts for string secrets. */
const stringFormatSchema = z
  .string({ error: 'must be a format such as "Bearer %s"' })
  .max(1024, { error: 'must be at most 1024 characters' })
  .superRefine((format, context) => {
    if (/[\r\n\0]/.test(format)) {
      context.addIssue({ code: 'custom', message: 'must be one line; remove line breaks' });
    } else if (!/^[^%]*%s[^%]*$/.test(format)) {
      context.addIssue({
        code: 'custom',
        message: `"${format}" must contain "%s" exactly once (where the secret goes) and no other "%", for example "Bearer %s" or "token %s"`,
      });
    }
  });

/** HMAC signatures are binary: `%x` or `%X` exactly once, no other `%`. */
const binaryFormatSchema = z
  .string({ error: 'must be a format such as "sha256=%x"' })
  .max(1024, { error: 'must be at most 1024 characters' })
  .superRefine((format, context) => {
    if (/[\r\n\0]/.test(format)) {
      context.addIssue({ code: 'custom', message: 'must be one line; remove line breaks' });
    } else if (!/^[^%]*%[xX][^%]*$/.test(format)) {
      context.addIssue({
        code: 'custom',
        message: `"${format}" must contain "%x" (lower-case hex) or "%X" (upper-case hex) exactly once and no other "%", for example "sha256=%x"`,
      });
    }
  });

// ---------------------------------------------------------------------------------------
// Processors other than the default `inject`. The credential's `secret` is always the one
// secret value the processor needs; everything here is a non-secret parameter.

const httpsUrlSchema = z.string({ error: 'must be an https:// URL' }).refine((value) => {
  try {
    return new URL(value).protocol === 'https:';
  } catch {
    return false;
  }
}, 'must be an absolute https:// URL, for example "https://oauth2.googleapis.com/token"');

const placeholderSchema = z
  .string({ error: 'must be a string such as "{{ACCESS_TOKEN}}"' })
  .min(1, { error: 'must not be empty; leave it out to use "{{ACCESS_TOKEN}}"' })
  .max(256, { error: 'must be at most 256 characters' });

const nonEmptyParameter = (example: string) =>
  z
    .string({ error: `is required, for example "${example}"` })
    .trim()
    .min(1, { error: `must not be empty, for example "${example}"` })
    .max(1024, { error: 'must be at most 1024 characters' });

export const processorSchema = z.discriminatedUnion(
  'type',
  [
    z
      .object({
        type: z.literal('inject_hmac'),
        /** Only SHA-256 exists in the protocol. */
        hash: z
          .literal('sha256', { error: 'must be "sha256" (the only hash the proxy supports)' })
          .optional(),
        dst: headerNameSchema.optional(),
        fmt: binaryFormatSchema.optional(),
      })
      .strict(),
    z.object({ type: z.literal('inject_body'), placeholder: placeholderSchema.optional() }).strict(),
    z.object({ type: z.literal('oauth2') }).strict(),
    z.object({ type: z.literal('oauth2_body'), placeholder: placeholderSchema.optional() }).strict(),
    z
      .object({
        type: z.literal('sigv4'),
        accessKeyId: nonEmptyParameter('AKIAIOSFODNN7EXAMPLE'),
        noSwap: z.boolean({ error: 'must be true or false' }).optional(),
      })
      .strict(),
    z
      .object({
        type: z.literal('jwt'),
        email: nonEmptyParameter('robot@project.iam.gserviceaccount.com'),
        sub: z.string({ error: 'must be a string' }).optional(),
        scopes: z.string({ error: 'must be a space-separated string of scopes' }).optional(),
        tokenUrl: httpsUrlSchema.optional(),
      })
      .strict(),
    z
      .object({
        type: z.literal('client_credentials'),
        clientId: nonEmptyParameter('my-client-id'),
        tokenUrl: httpsUrlSchema,
        scopes: z.string({ error: 'must be a space-separated string of scopes' }).optional(),
      })
      .strict(),
    z
      .object({
        type: z.literal('github_app'),
        appId: nonEmptyParameter('123456'),
        installationId: nonEmptyParameter('7890123'),
        tokenUrl: httpsUrlSchema.optional(),
      })
      .strict(),
  ],
  {
    error:
      'processor.type must be one of "inject_hmac", "inject_body", "oauth2", "oauth2_body", "sigv4", "jwt", "client_credentials", "github_app"; leave processor out to inject the secret into a header',
  },
);

export type TokenizerProcessorConfig = z.output<typeof processorSchema>;
export type TokenizerProcessorType = TokenizerProcessorConfig['type'] | 'inject';

// Processors whose secret ends up in a header, where a line break breaks the request.
const singleLineSecretTypes = new Set<TokenizerProcessorType>(['inject', 'oauth2', 'sigv4']);
const pemSecretTypes = new Set<TokenizerProcessorType>(['jwt', 'github_app']);

// ---------------------------------------------------------------------------------------
// Credentials

const nameSchema = z
  .string({ error: 'is required: a name for the credential, for example "github"' })
  .min(1, { error: 'must not be empty; write a name such as "github"' })
  .max(MAXIMUM_NAME_LENGTH, { error: `must be at most ${MAXIMUM_NAME_LENGTH} characters; shorten it` })
  .refine((name) => !/\p{Cc}/u.test(name), 'must be one line without control characters; remove them')
  .refine((name) => name.trim().length > 0, 'must not be only spaces; write a name such as "github"');

const secretSchema = z
  .string({ error: 'must be a string: the credential value, for example the API token' })
  .max(MAXIMUM_SECRET_LENGTH, {
    error: `must be at most ${MAXIMUM_SECRET_LENGTH} characters; paste only the credential itself`,
  });

/** Sealed into every inject credential, so the agent cannot move the credential to another header. */
export const DEFAULT_HEADER_DST = 'Authorization';
export const DEFAULT_HEADER_FMT = 'Bearer %s';
/** The proxy's own default for binary (HMAC) values; sealed into every inject_hmac credential. */
export const DEFAULT_HMAC_FMT = 'Bearer %x';

const credentialShape = {
  name: nameSchema,
  /** The raw credential. Optional in the schema so redacted configs stay valid; deploy requires it. */
  secret: secretSchema.optional(),
  allowedHosts: hostListSchema,
  headerDst: headerNameSchema
    .describe(
      `The header the proxy writes the credential into (default "${DEFAULT_HEADER_DST}"). Fixed at seal time: the proxy refuses a request that asks for another header.`,
    )
    .optional(),
  headerFmt: stringFormatSchema
    .describe(
      `The header value, "%s" standing for the credential (default "${DEFAULT_HEADER_FMT}"). Fixed at seal time: the proxy refuses a request that asks for another format.`,
    )
    .optional(),
  processor: processorSchema.optional(),
};

function checkCredential(
  credential: {
    secret?: string | undefined;
    headerDst?: string | undefined;
    headerFmt?: string | undefined;
    processor?: TokenizerProcessorConfig | undefined;
  },
  context: z.core.$RefinementCtx,
): void {
  const type: TokenizerProcessorType = credential.processor?.type ?? 'inject';
  if (type !== 'inject') {
    for (const field of ['headerDst', 'headerFmt'] as const) {
      if (credential[field] !== undefined) {
        context.addIssue({
          code: 'custom',
          path: [field],
          message:
            type === 'inject_hmac'
              ? `applies to the default inject processor only; write processor.${field === 'headerDst' ? 'dst' : 'fmt'} for inject_hmac`
              : `applies to the default inject processor only; remove it (processor "${type}" does not take a header option)`,
        });
      }
    }
  }
  const secret = credential.secret;
  if (secret === undefined || secret === '') return;
  if (singleLineSecretTypes.has(type) && /[\r\n\0]/.test(secret)) {
    context.addIssue({
      code: 'custom',
      path: ['secret'],
      message:
        'contains a line break, which cannot go into an HTTP header; remove it (a trailing newline is a common paste mistake)',
    });
  }
  if (pemSecretTypes.has(type) && !/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(secret)) {
    context.addIssue({
      code: 'custom',
      path: ['secret'],
      message: `processor "${type}" needs a PEM private key (a "BEGIN PRIVATE KEY" block) as secret`,
    });
  }
}

export const credentialSchema = z.object(credentialShape).strict().superRefine(checkCredential);

function checkCredentialList(credentials: readonly { name: string }[], context: z.core.$RefinementCtx): void {
  const seen = new Map<string, { index: number; name: string }>();
  credentials.forEach((credential, index) => {
    const key = sanitizeCredentialName(credential.name);
    const previous = seen.get(key);
    if (previous) {
      context.addIssue({
        code: 'custom',
        path: [index, 'name'],
        message: `"${credential.name}" becomes TOKENIZER_CRED_${key}, like credentials[${previous.index}] "${previous.name}"; names must differ after upper-casing and replacing characters other than A-Z and 0-9 with "_": rename one of them`,
      });
    } else {
      seen.set(key, { index, name: credential.name });
    }
  });
}

const credentialListSchema = <T extends z.ZodType<{ name: string }>>(item: T) =>
  z
    .array(item, { error: 'must be a list of credentials: [{ name, secret, allowedHosts }]' })
    .max(MAXIMUM_CREDENTIALS, {
      error: `at most ${MAXIMUM_CREDENTIALS} credentials per instance; remove some or deploy another instance`,
    })
    .superRefine(checkCredentialList);

const portSchema = (what: string) =>
  z
    .number({ error: `must be a port number, for example ${what}` })
    .int({ error: 'must be a whole number' })
    .min(1, { error: 'must be between 1 and 65535' })
    .max(65535, { error: 'must be between 1 and 65535' });

export const tokenizerConfigSchema = z
  .object({
    credentials: credentialListSchema(credentialSchema).default([]),
    image: z
      .string({ error: `must be an image reference, for example "${TOKENIZER_DEFAULT_IMAGE}"` })
      .min(1, { error: `must not be empty; leave it out to use "${TOKENIZER_DEFAULT_IMAGE}"` })
      .regex(/^[^\s]+$/, { error: 'must not contain whitespace' })
      .optional(),
    port: portSchema(String(TOKENIZER_DEFAULT_PORT)).default(TOKENIZER_DEFAULT_PORT),
    adminPort: portSchema(String(TOKENIZER_DEFAULT_ADMIN_PORT)).default(TOKENIZER_DEFAULT_ADMIN_PORT),
    /** PEM certificates the proxy trusts for upstreams, on top of the system roots. */
    upstreamCaCertificates: z
      .string({ error: 'must be PEM text ("-----BEGIN CERTIFICATE-----…")' })
      .max(MAXIMUM_CA_BUNDLE_LENGTH, { error: 'must be at most 1 MiB of PEM' })
      .refine(
        (pem) => pem.includes('-----BEGIN CERTIFICATE-----'),
        'must be PEM certificates ("-----BEGIN CERTIFICATE-----…"); leave it out to trust the system roots only',
      )
      .refine(
        (pem) => !/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem),
        'holds a private key; give only the CA certificate(s)',
      )
      .optional(),
    /** Let the proxy dial private and loopback addresses. Off by default (SSRF guard). */
    allowPrivateUpstreams: z.boolean({ error: 'must be true or false' }).default(false),
  })
  .strict()
  .superRefine((config, context) => {
    if (config.port === config.adminPort) {
      context.addIssue({
        code: 'custom',
        path: ['adminPort'],
        message: `must differ from port (${config.port}); for example ${config.port + 1 > 65535 ? config.port - 1 : config.port + 1}`,
      });
    }
  });

export type TokenizerConfig = z.output<typeof tokenizerConfigSchema>;
export type TokenizerConfigInput = z.input<typeof tokenizerConfigSchema>;
export type TokenizerCredentialConfig = TokenizerConfig['credentials'][number];

// ---------------------------------------------------------------------------------------
// Rotation change: the full new list; `secret: ""` (or no secret) keeps a credential.

const changeCredentialSchema = z
  .object({
    ...credentialShape,
    // Kept credentials may leave their hosts out: they are sealed in the token anyway.
    allowedHosts: hostListSchema.optional(),
  })
  .strict()
  .superRefine((credential, context) => {
    if (
      credential.secret !== undefined &&
      credential.secret !== '' &&
      credential.allowedHosts === undefined
    ) {
      context.addIssue({
        code: 'custom',
        path: ['allowedHosts'],
        message: 'is required for a new or replaced credential, for example ["api.github.com"]',
      });
    }
    checkCredential(credential, context);
  });

export const tokenizerChangeSchema = z
  .object({
    credentials: credentialListSchema(changeCredentialSchema),
  })
  .strict();

export type TokenizerChange = z.output<typeof tokenizerChangeSchema>;
export type TokenizerChangeInput = z.input<typeof tokenizerChangeSchema>;
export type TokenizerChangeCredential = TokenizerChange['credentials'][number];

// ---------------------------------------------------------------------------------------
// Requests from other sidecars: "seal this credential for my container".

const environmentVariableSchema = z
  .string({ error: 'must be an environment variable name such as "OPENAI_SEALED_TOKEN"' })
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, {
    error: 'must be an environment variable name: letters, digits and "_", not starting with a digit',
  })
  .max(128, { error: 'must be at most 128 characters' });

/**
 * The payload of a `sealed-credential` request (`SidecarRequestV2.payload`): one credential,
 * sealed by the tokenizer for the asking container. The requester's container receives the
 * sealed token in `tokenVariable` and the proxy password in `authVariable` (default
 * `<tokenVariable>_AUTH`), and nothing else; `secret` goes only into the sealed token.
 */
export const sealedCredentialRequestSchema = z
  .object({
    ...credentialShape,
    secret: secretSchema.min(1, {
      error: 'must not be empty: the credential to seal, for example the provider API key',
    }),
    tokenVariable: environmentVariableSchema,
    authVariable: environmentVariableSchema.optional(),
  })
  .strict()
  .superRefine((request, context) => {
    checkCredential(request, context);
    if ((request.authVariable ?? `${request.tokenVariable}_AUTH`) === request.tokenVariable) {
      context.addIssue({
        code: 'custom',
        path: ['authVariable'],
        message: 'must differ from tokenVariable: the sealed token and the proxy password are two variables',
      });
    }
  });

export type SealedCredentialRequest = z.output<typeof sealedCredentialRequestSchema>;
export type SealedCredentialRequestInput = z.input<typeof sealedCredentialRequestSchema>;
