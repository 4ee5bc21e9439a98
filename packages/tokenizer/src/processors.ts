import { createHmac } from 'node:crypto';
import {
  applyFmt,
  checkFmt,
  checkHeaderValue,
  configError,
  type Params,
  runtimeError,
  selectDst,
  selectFmt,
} from './header-rules.js';
import { type OutgoingRequest, placeholderTransform } from './outgoing-request.js';
import type { OAuth2Token, ProcessorDefinition, Secret } from './secret-json.js';
import { createSigv4Processor } from './sigv4-processor.js';
import {
  createClientCredentialsProcessor,
  createGithubAppProcessor,
  createJwtProcessor,
} from './token-exchange-processors.js';

/** Rewrites the response body of a token exchange (seals the token it contains). */
export interface ResponseProcessor {
  /** Only responses with this status are rewritten; others pass through untouched. */
  statusCode: number;
  process(body: Buffer): Buffer;
}

export interface RequestProcessor {
  /** Throws ProcessorRuntimeError (400) or TokenizerError (502). */
  apply(request: OutgoingRequest): void | Promise<void>;
  responseProcessor?: ResponseProcessor;
}

/** What processors may need beyond their own config. */
export interface ProcessorContext {
  /** The secret the processor comes from (token exchanges re-seal with its auth and hosts). */
  secret: Secret;
  /** The key exchanged tokens are sealed with (the proxy's seal key, or its unpublished mint key). */
  sealKey: string;
  /** Per-secret memo for expensive derived values (parsed private keys). */
  memo: Map<string, unknown>;
  /** Headers stripped before signing (sigv4), the configured filtered headers. */
  filteredHeaders: readonly string[];
}

export const DEFAULT_PLACEHOLDER = '{{ACCESS_TOKEN}}';

function setHeader(request: OutgoingRequest, name: string, value: string): void {
  request.headers[name.toLowerCase()] = checkHeaderValue(value);
}

/** Body mode: the body has unknown length afterwards, so it goes chunked. */
function injectIntoBody(request: OutgoingRequest, placeholder: string, token: string): void {
  request.body.addTransform(placeholderTransform(placeholder, token));
  if (!request.body.replaced) delete request.headers['content-length'];
  else request.headers['content-length'] = String((request.body.dispatchBody() as Buffer).length);
}

function bodyPlaceholder(params: Params, configured: string | undefined): string {
  const chosen = Object.hasOwn(params, 'placeholder') ? (params.placeholder as string) : (configured ?? '');
  return chosen === '' ? DEFAULT_PLACEHOLDER : chosen;
}

function selectOAuthToken(token: OAuth2Token | undefined, params: Params): string {
  // Go panics on a missing token object; answering 502 is the safe equivalent.
  if (!token) throw configError('missing token');
  const selected = params.st === 'refresh' ? token.refreshToken : token.accessToken;
  if (!selected) throw configError('missing token');
  return selected;
}

/** Builds the processor for one Proxy-Tokenizer header (protocol §2.3). Throws 502 errors. */
export function createProcessor(
  definition: ProcessorDefinition,
  params: Params,
  context: ProcessorContext,
): RequestProcessor {
  switch (definition.type) {
    case 'inject': {
      if (!definition.token) throw configError('missing token');
      const format = selectFmt(definition, params, false);
      if (!checkFmt(definition, format, false)) throw configError('bad fmt');
      const value = applyFmt(format, definition.token);
      // dst and the value's check depend only on (definition, params): once they pass, the
      // result is reused by every request (failures are recomputed and thrown each time).
      let checked: { name: string; value: string } | undefined;
      return {
        apply(request) {
          if (checked === undefined) {
            const name = selectDst(definition, params).toLowerCase();
            checked = { name, value: checkHeaderValue(value) };
          }
          request.headers[checked.name] = checked.value;
        },
      };
    }
    case 'inject_hmac': {
      if (definition.hash !== 'sha256')
        throw configError(`unsupported hash function: ${definition.hash ?? ''}`);
      const key = definition.key as Uint8Array;
      if (key.length === 0) throw configError('missing hmac key');
      return {
        async apply(request) {
          const format = selectFmt(definition, params, true);
          const verb = checkFmt(definition, format, true);
          if (!verb) throw runtimeError('bad fmt');
          const destination = selectDst(definition, params);
          const message = Object.hasOwn(params, 'msg')
            ? Buffer.from(params.msg as string)
            : await request.body.readAll();
          const digest = createHmac('sha256', key).update(message).digest('hex');
          setHeader(request, destination, applyFmt(format, verb === 'X' ? digest.toUpperCase() : digest));
        },
      };
    }
    case 'inject_body': {
      if (!definition.token) throw configError('missing token');
      const placeholder = bodyPlaceholder(params, definition.placeholder);
      const token = definition.token;
      return { apply: (request) => injectIntoBody(request, placeholder, token) };
    }
    case 'oauth2': {
      const token = selectOAuthToken(definition.token, params);
      const placeholder = params.placeholder;
      return {
        apply(request) {
          if (placeholder) injectIntoBody(request, placeholder, token);
          else setHeader(request, 'authorization', `Bearer ${token}`);
        },
      };
    }
    case 'oauth2_body': {
      const token = selectOAuthToken(definition.token, params);
      const placeholder = bodyPlaceholder(params, definition.placeholder);
      return { apply: (request) => injectIntoBody(request, placeholder, token) };
    }
    case 'sigv4':
      return createSigv4Processor(definition, context);
    case 'jwt':
      return createJwtProcessor(definition, params, context);
    case 'client_credentials':
      return createClientCredentialsProcessor(definition, context);
    case 'github_app':
      return createGithubAppProcessor(definition, context);
    case 'multi': {
      const members = definition.processors.map((member) => createProcessor(member, params, context));
      return {
        async apply(request) {
          for (const member of members) await member.apply(request);
        },
      };
    }
  }
}
