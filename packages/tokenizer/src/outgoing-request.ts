import type { Readable } from 'node:stream';
import { TokenizerError } from './errors.js';

/** A streaming body rewrite (placeholder replacement). */
export interface ChunkTransform {
  push(chunk: Buffer): Buffer;
  flush(): Buffer;
}

export class BodyTooLargeError extends TokenizerError {
  constructor(limit: number) {
    super('REQUEST_TOO_LARGE', `request body exceeds ${limit} bytes`, 413);
    this.name = 'BodyTooLargeError';
  }
}

/**
 * The request body on its way upstream: the client stream by default (not buffered), a
 * replacement buffer (token exchanges), or the stream passed through placeholder rewrites.
 */
export class OutgoingBody {
  private source: Readable | undefined;
  private replacement: Buffer | undefined;
  private readonly transforms: ChunkTransform[] = [];
  private readonly maxBytes: number;

  constructor(source: Readable | undefined, maxBytes: number) {
    this.source = source;
    this.maxBytes = maxBytes;
  }

  /** True when the bytes sent upstream may differ in length from what the client sent. */
  get rewritten(): boolean {
    return this.replacement !== undefined || this.transforms.length > 0;
  }

  get replaced(): boolean {
    return this.replacement !== undefined;
  }

  addTransform(transform: ChunkTransform): void {
    if (this.replacement !== undefined) {
      this.replacement = applyTransform(transform, this.replacement);
      return;
    }
    this.transforms.push(transform);
  }

  replace(bytes: Buffer): void {
    this.discardSource();
    this.transforms.length = 0;
    this.replacement = bytes;
  }

  /** Buffers the whole (transformed) body, for processors that must see it all (HMAC). */
  async readAll(): Promise<Buffer> {
    if (this.replacement !== undefined) return this.replacement;
    const chunks: Buffer[] = [];
    for await (const chunk of this.stream()) chunks.push(chunk);
    this.replacement = Buffer.concat(chunks);
    this.source = undefined;
    this.transforms.length = 0;
    return this.replacement;
  }

  /** What to hand to the upstream dispatcher. */
  dispatchBody(): Buffer | AsyncIterable<Buffer> | Readable | null {
    if (this.replacement !== undefined) return this.replacement;
    if (!this.source) return null;
    return this.stream();
  }

  discardSource(): void {
    this.source?.resume();
    this.source = undefined;
  }

  private async *stream(): AsyncGenerator<Buffer> {
    const source = this.source;
    if (!source) return;
    this.source = undefined;
    let total = 0;
    for await (const raw of source) {
      let chunk = raw as Buffer;
      total += chunk.length;
      if (total > this.maxBytes) throw new BodyTooLargeError(this.maxBytes);
      for (const transform of this.transforms) chunk = transform.push(chunk);
      if (chunk.length > 0) yield chunk;
    }
    for (let index = 0; index < this.transforms.length; index++) {
      let tail = (this.transforms[index] as ChunkTransform).flush();
      for (const later of this.transforms.slice(index + 1)) tail = later.push(tail);
      if (tail.length > 0) yield tail;
    }
  }
}

function applyTransform(transform: ChunkTransform, bytes: Buffer): Buffer {
  return Buffer.concat([transform.push(bytes), transform.flush()]);
}

/** Replaces every occurrence of `placeholder` across chunk boundaries. */
export function placeholderTransform(placeholder: string, replacement: string): ChunkTransform {
  const needle = Buffer.from(placeholder);
  const value = Buffer.from(replacement);
  let carry = Buffer.alloc(0);
  return {
    push(chunk) {
      const data = carry.length > 0 ? Buffer.concat([carry, chunk]) : chunk;
      const parts: Buffer[] = [];
      let start = 0;
      for (;;) {
        const found = data.indexOf(needle, start);
        if (found < 0) break;
        parts.push(data.subarray(start, found), value);
        start = found + needle.length;
      }
      // Keep a possible partial match for the next chunk.
      const keep = Math.min(needle.length - 1, data.length - start);
      carry = Buffer.from(data.subarray(data.length - keep));
      parts.push(data.subarray(start, data.length - keep));
      return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
    },
    flush() {
      const rest = carry;
      carry = Buffer.alloc(0);
      return rest;
    },
  };
}

export type OutgoingHeaders = Record<string, string | string[]>;

/** The request as processors see and modify it. Header names are lowercase. */
export interface OutgoingRequest {
  method: string;
  /** Origin-form path and query. */
  path: string;
  /** The authority the client asked for and that validators checked. */
  host: string;
  headers: OutgoingHeaders;
  body: OutgoingBody;
}
