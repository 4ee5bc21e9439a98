import { TokenizerError, type TokenizerErrorCode } from './errors.js';

// Strict HTTP/1.x message heads and body framing (RFC 9112), for both sides of the proxy.
// Anything ambiguous is refused rather than guessed: a proxy that frames a message
// differently from the server behind it is how requests get smuggled.

/** A message that is malformed or uses a feature this proxy refuses. */
export class HttpMessageError extends TokenizerError {
  constructor(code: TokenizerErrorCode, message: string, status = 400) {
    super(code, message, status);
    this.name = 'HttpMessageError';
  }
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Field values: visible characters, obs-text, SP and HTAB. No CR, LF, NUL or other controls,
// and (for heads we serialise) nothing above U+00FF: written as latin1, U+010A would be a LF.
const INVALID_FIELD_VALUE = /[\x00-\x08\x0a-\x1f\x7f\u0100-\uffff]/;
/** The rule /^\d{1,15}$/, as a loop. */
function isDecimalLength(value: string): boolean {
  if (value.length === 0 || value.length > 15) return false;
  for (let index = 0; index < value.length; index++) {
    const code = value.charCodeAt(index);
    if (code < 0x30 || code > 0x39) return false;
  }
  return true;
}
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-5]\d\d)(?: [^\x00-\x08\x0a-\x1f\x7f]*)?$/;

// A head without these characters has only what a field value may hold, apart from CR and LF;
// a line of it with no CR or LF but its CRLF then needs no value check of its own (names,
// stricter, still get theirs). One scan of the head by the regular-expression engine and two
// indexOf per line cost less than a loop over every value (or over the head's bytes).
const NOT_IN_FIELD_VALUES = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u0100-\uffff]/;

// TOKEN and INVALID_FIELD_VALUE as loops over the characters of `text` from `start` to `end`:
// for the short names of a head a regular-expression call costs more than the check itself.
// The caller passes the whole head (a flat string) rather than a slice of it.
const TOKEN_CHARACTERS = new Uint8Array(128);
for (const character of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
  TOKEN_CHARACTERS[character.charCodeAt(0)] = 1;
// Upper-case letters are marked 2: a name without one is already lower case.
for (let code = 65; code <= 90; code++) TOKEN_CHARACTERS[code] = 2;

/** 0: not a token; 1: a token without upper-case letters; 2: a token with some. */
function tokenKindIn(text: string, start: number, end: number): number {
  if (end <= start) return 0;
  let kind = 1;
  for (let index = start; index < end; index++) {
    const code = text.charCodeAt(index);
    const character = code >= 128 ? 0 : (TOKEN_CHARACTERS[code] as number);
    if (character === 0) return 0;
    kind |= character;
  }
  return kind === 1 ? 1 : 2;
}

function isTokenIn(text: string, start: number, end: number): boolean {
  if (end <= start) return false;
  for (let index = start; index < end; index++) {
    const code = text.charCodeAt(index);
    if (code >= 128 || TOKEN_CHARACTERS[code] === 0) return false;
  }
  return true;
}

function isFieldValueIn(text: string, start: number, end: number): boolean {
  for (let index = start; index < end; index++) {
    const code = text.charCodeAt(index);
    if (code < 32 ? code !== 9 : code === 127 || code > 255) return false;
  }
  return true;
}

/** Request targets: visible ASCII only (no space, no control, nothing above 0x7E). */
function isRequestTargetIn(text: string, start: number, end: number): boolean {
  if (end <= start) return false;
  for (let index = start; index < end; index++) {
    const code = text.charCodeAt(index);
    if (code < 0x21 || code > 0x7e) return false;
  }
  return true;
}

/** What is left to check per line of a head. */
enum CharacterChecks {
  /** The whole head matched CLEAN_HEAD: nothing. */
  None,
  /** No character a value may not hold but CR and LF: only that each line has no other CR or LF. */
  LineEnds,
  /** Every value, character by character. */
  Values,
}

function characterChecks(head: string): CharacterChecks {
  return NOT_IN_FIELD_VALUES.test(head) ? CharacterChecks.Values : CharacterChecks.LineEnds;
}

// A head of field-value characters in lines joined by CRLF: no line of it needs a character
// check of its own (names, stricter, still get theirs), and the start line has no bare CR or
// LF. One greedy scan of the head by the regular-expression engine (fewer instructions per
// character than NOT_IN_FIELD_VALUES's search, and no indexOf per line); a head it refuses is
// parsed with every check, which finds and names what is wrong. (A loop over the head's
// characters or bytes costs several times more in V8 11.)
const CLEAN_HEAD =
  /^[^\x00-\x08\x0a-\x1f\x7f\u0100-\uffff]*(?:\r\n[^\x00-\x08\x0a-\x1f\x7f\u0100-\uffff]*)*$/;

/** True when the line from `start` holds no CR or LF but the CRLF at `crlf` (-1: none, last line). */
function hasOnlyItsLineEnd(head: string, start: number, crlf: number): boolean {
  return head.indexOf('\r', start) === crlf && head.indexOf('\n', start) === (crlf < 0 ? -1 : crlf + 1);
}

/** Body framing: a byte count, chunked, none, or (responses only) until the connection closes. */
export const NO_BODY = -1;
export const CHUNKED_BODY = -2;
export const BODY_UNTIL_CLOSE = -3;

export interface RequestHead {
  method: string;
  target: string;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  minorVersion: number;
  /** Lowercase names and values, in order: [name, value, name, value…]. */
  headers: string[];
  /** NO_BODY, CHUNKED_BODY, or the Content-Length. */
  bodyLength: number;
  keepAlive: boolean;
  expectContinue: boolean;
}

export interface ResponseHead {
  status: number;
  minorVersion: number;
  /** Names as the server sent them, and values: [name, value, …]. */
  headers: string[];
  /** NO_BODY, CHUNKED_BODY, BODY_UNTIL_CLOSE, or the Content-Length. */
  bodyLength: number;
  keepAlive: boolean;
}

export function isValidHeaderName(name: string): boolean {
  return isTokenIn(name, 0, name.length);
}

export function isValidHeaderValue(value: string): boolean {
  return isFieldValueIn(value, 0, value.length);
}

/** The regular-expression form of the header rules (the tests hold the loops to them). */
export const HEADER_RULE_EXPRESSIONS = {
  name: TOKEN,
  invalidValue: INVALID_FIELD_VALUE,
  statusLine: STATUS_LINE,
  notInFieldValues: NOT_IN_FIELD_VALUES,
  cleanHead: CLEAN_HEAD,
} as const;

/** The loops behind the expressions, for the tests that hold them to each other. */
export const HEADER_RULE_LOOPS = {
  /** The status, or 0 where STATUS_LINE does not match the whole of `line`. */
  statusOfLine: (line: string) => statusOfLine(line, line.length),
  isDecimalLength: (value: string) => isDecimalLength(value),
} as const;

/** `detail` quotes the offending bytes: the client's own, so only request errors show it. */
type Failure = (message: string, detail?: string) => HttpMessageError;

function malformed(message: string, detail?: string): HttpMessageError {
  return new HttpMessageError(
    'MALFORMED_REQUEST',
    detail === undefined ? `bad request: ${message}` : `bad request: ${message} ${detail}`,
  );
}

// Upstream bytes stay out of the message: it goes to the client, and an upstream may echo
// the credential the proxy injected.
function badResponse(message: string): HttpMessageError {
  return new HttpMessageError('BAD_UPSTREAM_RESPONSE', `bad upstream response: ${message}`, 502);
}

function isOptionalWhitespace(code: number): boolean {
  return code === 32 || code === 9;
}

// content-length, transfer-encoding, connection, expect, host: the names parseFields looks at.
const FRAMING_NAME_LENGTHS = new Set([14, 17, 10, 6, 4]);

interface Framing {
  contentLength: string | undefined;
  transferEncoding: string | undefined;
  connection: string | undefined;
  expect: string | undefined;
  hostLines: number;
}

/**
 * Parses the field lines of a head: everything after the start line, which ends at `from`
 * (the index of its CRLF, or the head's length when it has no fields). A line that does not
 * end in CRLF, starts with whitespace (obs-fold), or has whitespace before the colon is refused.
 * Lines are found with indexOf rather than split: no array of lines per message.
 */
function parseFields(
  head: string,
  from: number,
  checks: CharacterChecks,
  lowercaseNames: boolean,
  fail: Failure,
): { headers: string[]; framing: Framing } {
  const headers: string[] = [];
  const framing: Framing = {
    contentLength: undefined,
    transferEncoding: undefined,
    connection: undefined,
    expect: undefined,
    hostLines: 0,
  };
  if (from >= head.length) return { headers, framing };
  let start = from + 2;
  for (;;) {
    const crlf = head.indexOf('\r\n', start);
    const end = crlf < 0 ? head.length : crlf;
    const colon = head.indexOf(':', start);
    if (colon <= start || colon >= end) {
      const line = head.slice(start, end);
      throw fail('header line without a name', `(${JSON.stringify(line.slice(0, 40))})`);
    }
    const name = head.slice(start, colon);
    const kind = tokenKindIn(head, start, colon);
    if (kind === 0) throw fail('invalid header name', JSON.stringify(name.slice(0, 40)));
    // Optional whitespace (SP / HTAB) around the value is not part of it.
    let valueStart = colon + 1;
    let valueEnd = end;
    while (valueStart < valueEnd && isOptionalWhitespace(head.charCodeAt(valueStart))) valueStart++;
    while (valueEnd > valueStart && isOptionalWhitespace(head.charCodeAt(valueEnd - 1))) valueEnd--;
    const value = head.slice(valueStart, valueEnd);
    // Lower case is needed for request names, and for the framing names below (by their length).
    const lower =
      kind === 1 || (!lowercaseNames && !FRAMING_NAME_LENGTHS.has(name.length)) ? name : name.toLowerCase();
    if (
      checks !== CharacterChecks.None &&
      (checks === CharacterChecks.Values || !hasOnlyItsLineEnd(head, start, crlf)) &&
      !isFieldValueIn(head, valueStart, valueEnd)
    )
      throw fail('invalid characters in a header value', `(${lower.slice(0, 40)})`);
    headers.push(lowercaseNames ? lower : name, value);
    switch (lower) {
      case 'content-length':
        // Even identical repeats are refused, as llhttp does: one length, stated once.
        if (framing.contentLength !== undefined) throw fail('repeated content-length header');
        framing.contentLength = value;
        break;
      case 'transfer-encoding':
        framing.transferEncoding =
          framing.transferEncoding === undefined ? value : `${framing.transferEncoding},${value}`;
        break;
      case 'connection':
        framing.connection = framing.connection === undefined ? value : `${framing.connection},${value}`;
        break;
      case 'expect':
        framing.expect = value;
        break;
      case 'host':
        framing.hostLines++;
        break;
    }
    if (crlf < 0) break;
    start = crlf + 2;
  }
  return { headers, framing };
}

/**
 * The start line: up to the first CRLF. A bare CR or LF left inside a field line is caught by
 * the per-line checks; the start line is checked here because its rules allow some of those
 * characters elsewhere.
 */
function startLineEnd(head: string, fail: Failure): number {
  const crlf = head.indexOf('\r\n');
  const end = crlf < 0 ? head.length : crlf;
  const carriageReturn = head.indexOf('\r');
  const lineFeed = head.indexOf('\n');
  if ((carriageReturn >= 0 && carriageReturn < end) || (lineFeed >= 0 && lineFeed < end))
    throw fail('line not terminated by CRLF');
  return end;
}

/** startLineEnd for a head without bare CR or LF (CLEAN_HEAD). */
function cleanStartLineEnd(head: string): number {
  const crlf = head.indexOf('\r\n');
  return crlf < 0 ? head.length : crlf;
}

function isDigit(code: number): boolean {
  return code >= 0x30 && code <= 0x39;
}

/**
 * The status of the status line `head.slice(0, end)`, 0 when the line is malformed: the rule
 * STATUS_LINE (HTTP/1.0 or 1.1, a status from 100 to 599, an optional reason without controls
 * but HTAB), as a loop.
 */
function statusOfLine(head: string, end: number): number {
  if (end < 12 || !head.startsWith('HTTP/1.') || head.charCodeAt(8) !== 0x20) return 0;
  const minor = head.charCodeAt(7);
  if (minor !== 0x30 && minor !== 0x31) return 0;
  const hundreds = head.charCodeAt(9);
  const tens = head.charCodeAt(10);
  const units = head.charCodeAt(11);
  if (hundreds < 0x31 || hundreds > 0x35 || !isDigit(tens) || !isDigit(units)) return 0;
  if (end > 12) {
    if (head.charCodeAt(12) !== 0x20) return 0;
    for (let index = 13; index < end; index++) {
      const code = head.charCodeAt(index);
      if ((code <= 0x1f && code !== 0x09) || code === 0x7f) return 0;
    }
  }
  return (hundreds - 0x30) * 100 + (tens - 0x30) * 10 + (units - 0x30);
}

function hasToken(list: string | undefined, token: string): boolean {
  if (list === undefined) return false;
  // The usual single value (`keep-alive`, `close`) needs no split.
  if (list.indexOf(',') < 0) return list.trim().toLowerCase() === token;
  for (const part of list.split(',')) if (part.trim().toLowerCase() === token) return true;
  return false;
}

function parseLength(value: string, fail: Failure): number {
  if (!isDecimalLength(value)) throw fail('invalid content-length', JSON.stringify(value.slice(0, 20)));
  return Number(value);
}

/** Transfer codings must be exactly `chunked`: anything else cannot be framed safely. */
function isChunkedOnly(value: string): boolean {
  let codings = 0;
  let chunked = false;
  for (const part of value.split(',')) {
    const coding = part.trim().toLowerCase();
    if (coding === '') continue;
    codings++;
    chunked = coding === 'chunked';
  }
  return codings === 1 && chunked;
}

/**
 * Parses a request head: the bytes before the blank line, as latin1, without the final CRLF.
 * `checkEveryLine` (for the tests) skips the one-scan shortcut (CLEAN_HEAD): same result.
 */
export function parseRequestHead(head: string, checkEveryLine = false): RequestHead {
  const clean = !checkEveryLine && CLEAN_HEAD.test(head);
  const lineEnd = clean ? cleanStartLineEnd(head) : startLineEnd(head, malformed);
  const checks = clean ? CharacterChecks.None : characterChecks(head);
  const requestLine = head.slice(0, lineEnd);
  const firstSpace = requestLine.indexOf(' ');
  const lastSpace = requestLine.lastIndexOf(' ');
  if (firstSpace <= 0 || lastSpace === firstSpace) throw malformed('malformed request line');
  const method = requestLine.slice(0, firstSpace);
  const target = requestLine.slice(firstSpace + 1, lastSpace);
  const version = requestLine.slice(lastSpace + 1);
  if (!isTokenIn(head, 0, firstSpace)) throw malformed('invalid method');
  if (!isRequestTargetIn(head, firstSpace + 1, lastSpace)) throw malformed('invalid request target');
  let minorVersion: number;
  if (version === 'HTTP/1.1') minorVersion = 1;
  else if (version === 'HTTP/1.0') minorVersion = 0;
  else if (/^HTTP\/\d\.\d$/.test(version))
    throw new HttpMessageError('UNSUPPORTED_HTTP', `unsupported HTTP version ${version}`, 505);
  else throw malformed('malformed request line');
  const { headers, framing } = parseFields(head, lineEnd, checks, true, malformed);
  // Two Host lines leave it to each hop which one names the target (RFC 9112 §3.2: 400).
  if (framing.hostLines > 1) throw malformed('more than one host header');
  let bodyLength = NO_BODY;
  if (framing.transferEncoding !== undefined) {
    if (framing.contentLength !== undefined)
      throw malformed('both transfer-encoding and content-length (refused: ambiguous framing)');
    if (minorVersion === 0) throw malformed('transfer-encoding in an HTTP/1.0 request');
    if (!isChunkedOnly(framing.transferEncoding)) {
      throw new HttpMessageError(
        'UNSUPPORTED_HTTP',
        `unsupported transfer-encoding ${JSON.stringify(framing.transferEncoding.slice(0, 40))}: only chunked is accepted`,
        501,
      );
    }
    bodyLength = CHUNKED_BODY;
  } else if (framing.contentLength !== undefined) {
    const length = parseLength(framing.contentLength, malformed);
    bodyLength = length === 0 ? NO_BODY : length;
  }
  const keepAlive =
    minorVersion === 1 ? !hasToken(framing.connection, 'close') : hasToken(framing.connection, 'keep-alive');
  // An HTTP/1.0 client does not understand 1xx responses (RFC 9110 §10.1.1: ignore the expectation).
  const expectContinue =
    minorVersion === 1 && framing.expect !== undefined && framing.expect.toLowerCase() === '100-continue';
  return { method, target, minorVersion, headers, bodyLength, keepAlive, expectContinue };
}

/**
 * Parses a response head (`checkEveryLine` as for parseRequestHead). `requestMethod` decides
 * whether a body follows (HEAD never has one). 1xx heads parse with NO_BODY; the caller skips them.
 */
export function parseResponseHead(head: string, requestMethod: string, checkEveryLine = false): ResponseHead {
  const clean = !checkEveryLine && CLEAN_HEAD.test(head);
  const lineEnd = clean ? cleanStartLineEnd(head) : startLineEnd(head, badResponse);
  const checks = clean ? CharacterChecks.None : characterChecks(head);
  const status = statusOfLine(head, lineEnd);
  if (status === 0) throw badResponse('malformed status line');
  const minorVersion = head.charCodeAt(7) - 0x30;
  const { headers, framing } = parseFields(head, lineEnd, checks, false, badResponse);
  let bodyLength: number;
  let keepAlive =
    minorVersion === 1 ? !hasToken(framing.connection, 'close') : hasToken(framing.connection, 'keep-alive');
  // Refused whether or not a body follows: a head that frames itself two ways is not trusted.
  if (framing.transferEncoding !== undefined && framing.contentLength !== undefined)
    throw badResponse('both transfer-encoding and content-length');
  if (status < 200 || status === 204 || status === 304 || requestMethod === 'HEAD') {
    // No body follows, but the content-length is forwarded as it came: it must still be a number.
    if (framing.contentLength !== undefined) parseLength(framing.contentLength, badResponse);
    bodyLength = NO_BODY;
  } else if (framing.transferEncoding !== undefined) {
    if (!isChunkedOnly(framing.transferEncoding)) throw badResponse('unsupported transfer-encoding');
    bodyLength = CHUNKED_BODY;
  } else if (framing.contentLength !== undefined) {
    bodyLength = parseLength(framing.contentLength, badResponse);
  } else {
    bodyLength = BODY_UNTIL_CLOSE;
    keepAlive = false;
  }
  return { status, minorVersion, headers, bodyLength, keepAlive };
}

const CR = 13;
const LF = 10;
const MAX_CHUNK_LINE = 4096;
const MAX_TRAILER_BYTES = 16 * 1024;

enum ChunkState {
  Size,
  Data,
  DataEnd,
  Trailer,
  Done,
}

/**
 * Incremental chunked-body decoder. `decode` consumes as much of `input` as belongs to the
 * body and returns where it stopped; bytes after the last chunk belong to the next message.
 * Trailers are read and discarded (the proxy never forwards them).
 */
export class ChunkedDecoder {
  private state = ChunkState.Size;
  private remaining = 0;
  private line = '';
  private trailerBytes = 0;
  private readonly fail: Failure;

  constructor(side: 'request' | 'response') {
    this.fail = side === 'request' ? malformed : badResponse;
  }

  get done(): boolean {
    return this.state === ChunkState.Done;
  }

  decode(input: Buffer, start: number, emit: (data: Buffer) => void): number {
    let position = start;
    while (position < input.length && this.state !== ChunkState.Done) {
      switch (this.state) {
        case ChunkState.Data: {
          const end = Math.min(input.length, position + this.remaining);
          emit(input.subarray(position, end));
          this.remaining -= end - position;
          position = end;
          if (this.remaining === 0) this.state = ChunkState.DataEnd;
          break;
        }
        case ChunkState.DataEnd: {
          const line = this.readLine(input, position);
          if (line === undefined) return input.length;
          position = line.next;
          if (line.text !== '') throw this.fail('chunk data longer than its size');
          this.state = ChunkState.Size;
          break;
        }
        case ChunkState.Size: {
          const line = this.readLine(input, position);
          if (line === undefined) return input.length;
          position = line.next;
          this.startChunk(line.text);
          break;
        }
        case ChunkState.Trailer: {
          const line = this.readLine(input, position);
          if (line === undefined) return input.length;
          position = line.next;
          this.trailerBytes += line.text.length + 2;
          if (this.trailerBytes > MAX_TRAILER_BYTES) throw this.fail('trailers too large');
          if (line.text === '') this.state = ChunkState.Done;
          else if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+:/.test(line.text) || !isValidHeaderValue(line.text))
            throw this.fail('malformed trailer');
          break;
        }
      }
    }
    return position;
  }

  private startChunk(text: string): void {
    const semicolon = text.indexOf(';');
    const size = semicolon < 0 ? text : text.slice(0, semicolon);
    // Chunk extensions are ignored but must not hide control characters.
    if (semicolon >= 0 && !isValidHeaderValue(text.slice(semicolon)))
      throw this.fail('malformed chunk extension');
    if (!/^[0-9A-Fa-f]{1,12}$/.test(size.replace(/[ \t]+$/, ''))) throw this.fail('malformed chunk size');
    this.remaining = Number.parseInt(size, 16);
    this.state = this.remaining === 0 ? ChunkState.Trailer : ChunkState.Data;
  }

  /** Reads one CRLF-terminated line (possibly split across inputs). Bare CR or LF is refused. */
  private readLine(input: Buffer, start: number): { text: string; next: number } | undefined {
    const newline = input.indexOf(LF, start);
    const end = newline < 0 ? input.length : newline;
    this.line += input.toString('latin1', start, end);
    if (this.line.length > MAX_CHUNK_LINE) throw this.fail('chunk line too long');
    if (newline < 0) return undefined;
    const full = this.line;
    this.line = '';
    if (full.charCodeAt(full.length - 1) !== CR) throw this.fail('chunk line not terminated by CRLF');
    const text = full.slice(0, -1);
    if (text.includes('\r')) throw this.fail('bare CR in a chunk line');
    return { text, next: newline + 1 };
  }
}

/** Finds the blank line ending a head; returns the index of its CRLFCRLF or -1. */
export function findHeadEnd(buffer: Buffer, from: number): number {
  return buffer.indexOf('\r\n\r\n', from, 'latin1');
}
