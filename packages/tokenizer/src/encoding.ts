import { EncodingError, SecretJsonError } from './errors.js';

const HEX_PATTERN = /^[0-9a-fA-F]*$/;

/** Go `hex.DecodeString` semantics: upper or lower case, no whitespace, no prefix. */
export function decodeHex(text: string): Uint8Array | undefined {
  if (text.length % 2 !== 0 || !HEX_PATTERN.test(text)) return undefined;
  return new Uint8Array(Buffer.from(text, 'hex'));
}

export function encodeHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

export function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

const STRICT_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

const DECODE_MAP = new Int16Array(256).fill(-1);
for (const [index, character] of [
  ...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/',
].entries()) {
  DECODE_MAP[character.charCodeAt(0)] = index;
}

/**
 * Go `base64.StdEncoding.DecodeString` semantics: standard alphabet, padding required,
 * `\r` and `\n` ignored anywhere, any other stray byte is an error reported at the same
 * offset Go reports (protocol §1.3 / §1.5 vectors). Throws EncodingError.
 */
export function decodeBase64Go(text: string, errorPrefix?: string): Uint8Array {
  // Fast path: canonical padded base64 decodes identically in Buffer.
  if (STRICT_BASE64.test(text)) return new Uint8Array(Buffer.from(text, 'base64'));
  const source = Buffer.from(text, 'utf8');
  const output: number[] = [];
  let position = 0;
  const isNewline = (byte: number | undefined) => byte === 0x0a || byte === 0x0d;
  while (position < source.length) {
    const quantum = [0, 0, 0, 0];
    let length = 4;
    let finished = false;
    for (let slot = 0; slot < 4; slot++) {
      if (position === source.length) {
        if (slot === 0) return new Uint8Array(output);
        // Padding is mandatory for StdEncoding.
        throw new EncodingError(position - slot, errorPrefix);
      }
      const byte = source[position] as number;
      position++;
      const value = DECODE_MAP[byte] as number;
      if (value >= 0) {
        quantum[slot] = value;
        continue;
      }
      if (isNewline(byte)) {
        slot--;
        continue;
      }
      if (byte !== 0x3d) throw new EncodingError(position - 1, errorPrefix);
      // Padding: only after two or three symbols.
      if (slot < 2) throw new EncodingError(position - 1, errorPrefix);
      if (slot === 2) {
        while (position < source.length && isNewline(source[position])) position++;
        if (position === source.length) throw new EncodingError(source.length, errorPrefix);
        if (source[position] !== 0x3d) throw new EncodingError(position - 1, errorPrefix);
        position++;
      }
      while (position < source.length && isNewline(source[position])) position++;
      if (position < source.length) throw new EncodingError(position, errorPrefix);
      length = slot;
      finished = true;
      break;
    }
    const value =
      ((quantum[0] as number) << 18) |
      ((quantum[1] as number) << 12) |
      ((quantum[2] as number) << 6) |
      (quantum[3] as number);
    output.push((value >> 16) & 0xff);
    if (length >= 3) output.push((value >> 8) & 0xff);
    if (length >= 4) output.push(value & 0xff);
    if (finished) break;
  }
  return new Uint8Array(output);
}

/** Decode a base64 `[]byte` JSON field the way Go's encoding/json does. */
export function decodeBase64Field(text: string, field: string): Uint8Array {
  try {
    return decodeBase64Go(text, 'illegal base64');
  } catch (error) {
    if (error instanceof EncodingError) {
      throw new SecretJsonError(`illegal base64 data at input byte ${error.offset} in field ${field}`);
    }
    throw error;
  }
}
