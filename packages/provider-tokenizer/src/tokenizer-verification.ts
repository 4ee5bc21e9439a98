import {
  type ExecResultV2,
  KeywardError,
  type SidecarVerificationV2,
  type VerificationContextV2,
  type VerifyCheckResultV2,
  type VerifyCheckV2,
} from '@keyward/core';
import { sealSecret } from '@keyward/tokenizer';
import * as z from 'zod';
import { credentialVariableNames, sanitizeCredentialName } from './credential-names.js';

const urlSchema = (example: string) =>
  z.string({ error: `must be a URL such as "${example}"` }).refine((value) => {
    try {
      const url = new URL(value);
      return (
        (url.protocol === 'https:' || url.protocol === 'http:') && url.username === '' && url.password === ''
      );
    } catch {
      return false;
    }
  }, `must be an absolute http(s) URL without user info, such as "${example}"`);

/** What a caller of `verify` may choose; nothing here is secret. */
export const tokenizerVerifyOptionsSchema = z
  .object({
    /** A URL the credential is bound to (default: `https://<its first host>/`). */
    allowedUrl: urlSchema('https://api.github.com/zen').optional(),
    /** A host the credential is not bound to (default `https://unbound.keyward.invalid/`). */
    unboundUrl: urlSchema('https://unbound.keyward.invalid/').optional(),
    /** The credential to try, by name or `TOKENIZER_CRED_<K>` key (default: the first). */
    credential: z
      .string()
      .min(1, { error: 'must not be empty; leave it out to try the first credential' })
      .optional(),
  })
  .strict();

export type TokenizerVerifyOptions = z.output<typeof tokenizerVerifyOptionsSchema>;

export const DEFAULT_UNBOUND_URL = 'https://unbound.keyward.invalid/';
/** A header no API uses, asked for by the client: the proxy must refuse to move the credential there. */
export const PROBE_HEADER = 'X-Keyward-Probe';

type Probe = 'credential' | 'unbound' | 'self-sealed' | 'client-header';

interface ProbeConfig {
  probe: Probe;
  url: string;
  /** `<K>` of TOKENIZER_CRED_<K>; the script reads the values from its own environment. */
  key?: string;
  /** Not a secret: anyone holding the public seal key can make one. */
  selfSealedToken?: string;
  proxyUrl: string;
}

/**
 * Runs INSIDE the agent (`node -`, this text on stdin). Reads the sealed token and password from
 * its own environment, like a skill would: no credential travels in argv or in this script.
 * Prints one JSON line of what it observed; the check's `judge` decides.
 */
export function probeScript(config: ProbeConfig): string {
  return String.raw`'use strict';
const http = require('node:http');
const config = ${JSON.stringify(config)};
const env = process.env;
const proxy = new URL(env.TOKENIZER_PROXY_URL || config.proxyUrl);
const url = new URL(config.url);
// The tokenizer rewrites plaintext requests only; it upgrades to TLS upstream.
url.protocol = 'http:';
(function probe() {
const headers = { host: url.host };
if (config.probe === 'self-sealed') {
  headers['proxy-tokenizer'] = config.selfSealedToken;
} else {
  const sealed = env['TOKENIZER_CRED_' + config.key];
  const auth = env['TOKENIZER_AUTH_' + config.key];
  if (!sealed) {
    process.stdout.write(JSON.stringify({ status: -1, error: 'TOKENIZER_CRED_' + config.key + ' is not in the agent environment' }) + '\n');
    return;
  }
  headers['proxy-tokenizer'] = config.probe === 'client-header' ? sealed + '; ' + JSON.stringify({ dst: '${PROBE_HEADER}' }) : sealed;
  if (auth) headers['proxy-authorization'] = 'Bearer ' + auth;
}
const request = http.request(
  { host: proxy.hostname, port: proxy.port || 80, method: 'GET', path: url.href, headers, timeout: 10000 },
  (response) => {
    let body = '';
    response.setEncoding('utf8');
    response.on('data', (chunk) => { if (body.length < 300) body += chunk; });
    response.on('end', () => {
      process.stdout.write(JSON.stringify({ status: response.statusCode, body: body.slice(0, 160).replace(/\s+/g, ' ') }) + '\n');
    });
  },
);
request.on('timeout', () => request.destroy(new Error('timeout after 10 s')));
request.on('error', (error) => {
  process.stdout.write(JSON.stringify({ status: 0, error: error.code || error.message }) + '\n');
});
request.end();
})();
`;
}

interface Observation {
  status: number;
  body?: string;
  error?: string;
}

function observe(result: ExecResultV2): Observation | string {
  if (result.timedOut) return 'the probe timed out';
  const line = result.stdout.trim().split('\n').pop() ?? '';
  try {
    const parsed = JSON.parse(line) as Partial<Observation>;
    if (result.exitCode === 0 && typeof parsed.status === 'number') return parsed as Observation;
  } catch {
    // Reported below.
  }
  const stderr = result.stderr.trim().replace(/\s+/g, ' ').slice(0, 200);
  return `the probe did not run (exit ${result.exitCode}${stderr ? `: ${stderr}` : ''})`;
}

// How the proxy's own refusals begin (`@keyward/tokenizer`'s messages).
const proxyMessage =
  /^(bad |request validator failed|unauthorized|not authorized|secret not valid for|missing |failed |dst |invalid |no host|must specify|proxy |circular|dialing )/;

/** `-> 400 bad request`, or the network error. */
function outcome(observation: Observation, withBody: boolean): string {
  if (observation.status <= 0) return `-> ${observation.error ?? 'no answer'}`;
  const body =
    withBody && observation.body && proxyMessage.test(observation.body) ? ` ${observation.body}` : '';
  return `-> ${observation.status}${body}`;
}

function judgeWith(
  describe: string,
  passes: (observation: Observation) => boolean,
): (result: ExecResultV2) => VerifyCheckResultV2 {
  return (result) => {
    const observation = observe(result);
    if (typeof observation === 'string') return { passed: false, evidence: `${describe}: ${observation}` };
    const passed = observation.status > 0 && passes(observation);
    // An upstream's answer may echo what the proxy injected (a header it reflects): quote only
    // the proxy's own refusals, which a passing refusal check is, never a body that got through.
    const refused = passed && observation.status >= 400 && observation.status < 500;
    return { passed, evidence: `${describe} ${outcome(observation, refused)}` };
  };
}

interface CredentialChoice {
  name: string;
  key: string;
  allowedHosts: string[];
  processorType: string;
}

function credentialsOf(metadata: VerificationContextV2['metadata']): CredentialChoice[] {
  const list = Array.isArray(metadata['credentials']) ? metadata['credentials'] : [];
  return list.flatMap((entry) => {
    if (!entry || typeof entry !== 'object' || Array.isArray(entry)) return [];
    const record = entry as Record<string, unknown>;
    if (typeof record['name'] !== 'string') return [];
    const processor = record['processor'] as { type?: unknown } | undefined;
    return [
      {
        name: record['name'],
        key: typeof record['key'] === 'string' ? record['key'] : sanitizeCredentialName(record['name']),
        allowedHosts: Array.isArray(record['allowedHosts'])
          ? record['allowedHosts'].filter((host): host is string => typeof host === 'string')
          : [],
        processorType: typeof processor?.type === 'string' ? processor.type : 'inject',
      },
    ];
  });
}

function chooseCredential(
  credentials: CredentialChoice[],
  wanted: string | undefined,
): CredentialChoice | undefined {
  if (wanted === undefined) return credentials[0];
  const key = sanitizeCredentialName(wanted.replace(/^TOKENIZER_CRED_/, ''));
  const found = credentials.find((item) => item.name === wanted || item.key === key);
  if (!found) {
    throw new KeywardError({
      code: 'INVALID_INPUT',
      providerId: 'tokenizer',
      message: `The tokenizer has no credential "${wanted}" to verify (it has: ${credentials.map((item) => `"${item.name}"`).join(', ') || 'none'}).`,
    });
  }
  return found;
}

function exec(config: ProbeConfig): VerifyCheckV2['exec'] {
  return { container: 'agent', command: ['node', '-'], stdin: probeScript(config), timeoutSeconds: 20 };
}

/**
 * What a compromised agent could make with the public seal key it holds: a Secret with no auth
 * and no host rules. The proxy must refuse it (407) or it is an open egress. Not a secret.
 */
export function sealSelfMadeToken(sealKey: string): string {
  return sealSecret({ processor: { type: 'inject', token: 'made-up' }, auth: { type: 'none' } }, sealKey);
}

/** The tokenizer's own self-test: what to run inside the agent, and how to read the answer. */
export function tokenizerChecks(
  context: VerificationContextV2,
  options: TokenizerVerifyOptions,
): VerifyCheckV2[] {
  const proxyUrl =
    typeof context.exports['proxyUrl'] === 'string'
      ? context.exports['proxyUrl']
      : typeof context.metadata['proxyUrl'] === 'string'
        ? context.metadata['proxyUrl']
        : '';
  const sealKey =
    typeof context.exports['sealKey'] === 'string' ? context.exports['sealKey'] : context.metadata['sealKey'];
  const credential = chooseCredential(credentialsOf(context.metadata), options.credential);
  const unboundUrl = options.unboundUrl ?? DEFAULT_UNBOUND_URL;
  const allowedUrl =
    options.allowedUrl ??
    (credential?.allowedHosts[0] ? `https://${credential.allowedHosts[0]}/` : undefined);
  const variable = credential ? credentialVariableNames(credential.name).token : 'TOKENIZER_CRED_*';
  const missing: VerifyCheckResultV2 = {
    passed: false,
    evidence: 'the tokenizer has no credential to try (no TOKENIZER_CRED_* deployed)',
  };
  const checks: VerifyCheckV2[] = [];
  const noCredential = (name: string, description: string): VerifyCheckV2 => ({
    name,
    description,
    // Still runs something harmless, so the target reports the check like the others.
    exec: { container: 'agent', command: ['node', '-e', ''], timeoutSeconds: 5 },
    judge: () => missing,
  });

  const injectedDescription =
    'A request through the proxy with an issued sealed token reaches a host it is bound to, with the credential injected.';
  const unboundDescription = 'The same token is refused for a host it is not bound to.';
  if (credential && allowedUrl) {
    checks.push({
      name: 'proxied-request-injected',
      description: injectedDescription,
      exec: exec({ probe: 'credential', url: allowedUrl, key: credential.key, proxyUrl }),
      judge: judgeWith(
        `GET ${allowedUrl} via ${proxyUrl} with ${variable}`,
        (observation) => observation.status >= 200 && observation.status < 400,
      ),
    });
    checks.push({
      name: 'unbound-host-refused',
      description: unboundDescription,
      exec: exec({ probe: 'unbound', url: unboundUrl, key: credential.key, proxyUrl }),
      judge: judgeWith(
        `GET ${unboundUrl} with ${variable}`,
        (observation) => observation.status >= 400 && observation.status < 500,
      ),
    });
    if (credential.processorType === 'inject' || credential.processorType === 'inject_hmac') {
      checks.push({
        name: 'credential-header-pinned',
        description:
          'The proxy refuses to write the credential into a header the client names: the header is fixed when the credential is sealed.',
        exec: exec({ probe: 'client-header', url: allowedUrl, key: credential.key, proxyUrl }),
        // The proxy's own refusal ("bad request") before anything is sent upstream.
        judge: judgeWith(
          `GET ${allowedUrl} with ${variable} and the parameter {"dst":"${PROBE_HEADER}"}`,
          (observation) => observation.status === 400 && (observation.body ?? '').startsWith('bad request'),
        ),
      });
    }
  } else {
    checks.push(noCredential('proxied-request-injected', injectedDescription));
    checks.push(noCredential('unbound-host-refused', unboundDescription));
  }
  if (typeof sealKey === 'string' && /^[0-9a-f]{64}$/.test(sealKey)) {
    checks.push({
      name: 'self-sealed-token-refused',
      description:
        'A token the agent seals itself with the public seal key (no auth, any host) is refused: the proxy opens only the tokens keyward issued.',
      exec: exec({
        probe: 'self-sealed',
        url: unboundUrl,
        selfSealedToken: sealSelfMadeToken(sealKey),
        proxyUrl,
      }),
      // Only a 407 (refused before any dial) shows the proxy is no open egress for self-made tokens.
      judge: judgeWith(
        `GET ${unboundUrl} with only a self-sealed Proxy-Tokenizer`,
        (observation) => observation.status === 407,
      ),
    });
  }
  return checks;
}

export const tokenizerVerification: SidecarVerificationV2<TokenizerVerifyOptions> = {
  optionsSchema: tokenizerVerifyOptionsSchema,
  checks: tokenizerChecks,
};
