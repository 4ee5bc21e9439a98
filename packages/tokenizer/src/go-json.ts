/**
 * A small JSON reader that keeps what JSON.parse throws away and Go's encoding/json relies on:
 * duplicate keys in order (Go merges repeated nested objects into one struct) and the source
 * type of every value. Values are a tagged tree; objects are ordered lists of entries.
 */
export type JsonValue =
  | { kind: 'null' }
  | { kind: 'bool'; value: boolean }
  | { kind: 'number'; text: string }
  | { kind: 'string'; value: string }
  | { kind: 'array'; items: JsonValue[] }
  | { kind: 'object'; entries: [string, JsonValue][] };

export class JsonSyntaxError extends Error {}

const MAX_DEPTH = 64;

export function parseJsonTree(text: string): JsonValue {
  let position = 0;
  const fail = (what: string): never => {
    if (position >= text.length) throw new JsonSyntaxError('unexpected end of JSON input');
    throw new JsonSyntaxError(`invalid character ${describe(text[position])} ${what} at offset ${position}`);
  };
  const skipWhitespace = () => {
    while (position < text.length) {
      const code = text.charCodeAt(position);
      if (code === 0x20 || code === 0x0a || code === 0x0d || code === 0x09) position++;
      else break;
    }
  };
  const readString = (): string => {
    // Find the closing quote, then let JSON.parse handle escapes exactly.
    const start = position;
    position++;
    while (position < text.length) {
      const code = text.charCodeAt(position);
      if (code === 0x22) {
        position++;
        return JSON.parse(text.slice(start, position)) as string;
      }
      if (code === 0x5c) position += 2;
      else if (code < 0x20) fail('in string literal');
      else position++;
    }
    throw new JsonSyntaxError('unexpected end of JSON input');
  };
  const readValue = (depth: number): JsonValue => {
    if (depth > MAX_DEPTH) throw new JsonSyntaxError('exceeded max depth');
    skipWhitespace();
    const character = text[position];
    if (character === '{') {
      position++;
      const entries: [string, JsonValue][] = [];
      skipWhitespace();
      if (text[position] === '}') {
        position++;
        return { kind: 'object', entries };
      }
      for (;;) {
        skipWhitespace();
        if (text[position] !== '"') fail('looking for beginning of object key string');
        const key = readString();
        skipWhitespace();
        if (text[position] !== ':') fail('after object key');
        position++;
        entries.push([key, readValue(depth + 1)]);
        skipWhitespace();
        if (text[position] === ',') {
          position++;
          continue;
        }
        if (text[position] === '}') {
          position++;
          return { kind: 'object', entries };
        }
        fail('after object key:value pair');
      }
    }
    if (character === '[') {
      position++;
      const items: JsonValue[] = [];
      skipWhitespace();
      if (text[position] === ']') {
        position++;
        return { kind: 'array', items };
      }
      for (;;) {
        items.push(readValue(depth + 1));
        skipWhitespace();
        if (text[position] === ',') {
          position++;
          continue;
        }
        if (text[position] === ']') {
          position++;
          return { kind: 'array', items };
        }
        fail('after array element');
      }
    }
    if (character === '"') return { kind: 'string', value: readString() };
    for (const [literal, value] of [
      ['true', { kind: 'bool', value: true }],
      ['false', { kind: 'bool', value: false }],
      ['null', { kind: 'null' }],
    ] as const) {
      if (text.startsWith(literal, position)) {
        position += literal.length;
        return value;
      }
    }
    const number = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(text.slice(position, position + 400));
    if (number) {
      position += number[0].length;
      return { kind: 'number', text: number[0] };
    }
    if (position >= text.length) throw new JsonSyntaxError('unexpected end of JSON input');
    return fail('looking for beginning of value');
  };
  const value = readValue(0);
  skipWhitespace();
  if (position < text.length) fail('after top-level value');
  return value;
}

function describe(character: string | undefined): string {
  return character === undefined ? 'end of input' : JSON.stringify(character);
}

/** Go names the JSON type in its unmarshal errors. */
export function jsonKindName(value: JsonValue): string {
  return value.kind === 'bool' ? 'bool' : value.kind;
}

/** Go json.Marshal string escaping: HTML-safe, U+2028/2029 escaped. */
export function goJsonString(value: string): string {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (character) => {
    return `\\u${character.charCodeAt(0).toString(16).padStart(4, '0')}`;
  });
}
