import { createHash, createHmac } from 'node:crypto';
import { configError, runtimeError } from './header-rules.js';
import type { OutgoingRequest } from './outgoing-request.js';
import type { ProcessorContext, RequestProcessor } from './processors.js';
import type { Sigv4ProcessorDefinition } from './secret-json.js';

// Stripped before re-signing so that the signature covers what the upstream will see (#42).
const STRIPPED_BEFORE_SIGNING = [
  'authorization',
  'accept-encoding',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'via',
  'x-forwarded-for',
  'x-forwarded-port',
  'x-forwarded-proto',
  'x-forwarded-ssl',
  'x-request-start',
];
// Never part of SignedHeaders (the AWS SDK's ignore list).
const UNSIGNED_HEADERS = new Set([
  'authorization',
  'user-agent',
  'x-amzn-trace-id',
  'expect',
  'transfer-encoding',
]);

function uriEncode(text: string, keepSlash: boolean): string {
  let result = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    const character = String.fromCharCode(byte);
    if (/[A-Za-z0-9\-._~]/.test(character) || (keepSlash && character === '/')) result += character;
    else result += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return result;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text.replaceAll('+', ' '));
  } catch {
    return text;
  }
}

function canonicalQuery(query: string): string {
  if (!query) return '';
  return query
    .split('&')
    .filter((part) => part !== '')
    .map((part) => {
      const index = part.indexOf('=');
      const key = index < 0 ? part : part.slice(0, index);
      const value = index < 0 ? '' : part.slice(index + 1);
      return [uriEncode(safeDecode(key), false), uriEncode(safeDecode(value), false)] as const;
    })
    .sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0))
    .map(([key, value]) => `${key}=${value}`)
    .join('&');
}

const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data).digest();

/** Re-signs an AWS SigV4 request with the sealed credentials (protocol §2.3 sigv4_processor). */
export function createSigv4Processor(
  definition: Sigv4ProcessorDefinition,
  context: ProcessorContext,
): RequestProcessor {
  if (!definition.accessKey) throw configError('missing access key');
  if (!definition.secretKey) throw configError('missing secret key');
  return {
    apply(request: OutgoingRequest) {
      const authorization = request.headers.authorization;
      if (typeof authorization !== 'string' || authorization === '')
        throw runtimeError('missing authorization header');
      const credential = authorization
        .split(' ')
        .map((item) => item.replace(/,+$/, ''))
        .find((item) => item.startsWith('Credential='));
      if (!credential) throw runtimeError('missing credential');
      const parts = credential.slice('Credential='.length).split('/');
      if (parts.length !== 5) throw runtimeError('bad credential');
      const [, credentialDate, first, second] = parts as [string, string, string, string, string];
      // The reference swaps region and service unless no_swap (bug compatibility).
      const [region, service] = definition.noSwap ? [first, second] : [second, first];
      const amzDateHeader = request.headers['x-amz-date'];
      let amzDate: string;
      if (typeof amzDateHeader === 'string' && amzDateHeader !== '') {
        if (!/^\d{8}T\d{6}Z$/.test(amzDateHeader)) throw runtimeError('bad x-amz-date');
        amzDate = amzDateHeader;
      } else {
        if (!/^\d{8}$/.test(credentialDate)) throw runtimeError('bad credential date');
        amzDate = `${credentialDate}T000000Z`;
      }
      const day = amzDate.slice(0, 8);
      for (const name of [...STRIPPED_BEFORE_SIGNING, ...context.filteredHeaders])
        delete request.headers[name];
      request.headers['x-amz-date'] = amzDate;
      request.headers.host = request.host;
      const payloadHash = (request.headers['x-amz-content-sha256'] as string | undefined) ?? '';
      const names = Object.keys(request.headers)
        .filter((name) => !UNSIGNED_HEADERS.has(name))
        .sort();
      const canonicalHeaders = names
        .map((name) => {
          const value = request.headers[name] as string | string[];
          const values = Array.isArray(value) ? value : [value];
          return `${name}:${values.map((item) => item.trim().replace(/\s+/g, ' ')).join(',')}\n`;
        })
        .join('');
      const signedHeaders = names.join(';');
      const queryIndex = request.path.indexOf('?');
      const path = queryIndex < 0 ? request.path : request.path.slice(0, queryIndex);
      const query = queryIndex < 0 ? '' : request.path.slice(queryIndex + 1);
      const canonicalRequest = [
        request.method,
        uriEncode(path || '/', true),
        canonicalQuery(query),
        canonicalHeaders,
        signedHeaders,
        payloadHash,
      ].join('\n');
      const scope = `${day}/${region}/${service}/aws4_request`;
      const stringToSign = [
        'AWS4-HMAC-SHA256',
        amzDate,
        scope,
        createHash('sha256').update(canonicalRequest).digest('hex'),
      ].join('\n');
      const signingKey = hmac(
        hmac(hmac(hmac(`AWS4${definition.secretKey}`, day), region), service),
        'aws4_request',
      );
      const signature = createHmac('sha256', signingKey).update(stringToSign).digest('hex');
      request.headers.authorization = `AWS4-HMAC-SHA256 Credential=${definition.accessKey}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
    },
  };
}
