/**
 * The small subset of MessagePack that Fly.io macaroons use. Decoded values keep the byte
 * span they came from, because macaroon signatures are computed over the wire bytes.
 */
export type PackValue = {
  kind: 'nil' | 'bool' | 'int' | 'string' | 'bytes' | 'array' | 'map' | 'float';
  start: number;
  end: number;
} & (
  | { kind: 'nil' }
  | { kind: 'bool'; value: boolean }
  | { kind: 'int'; value: bigint }
  | { kind: 'string'; value: string }
  | { kind: 'bytes'; value: Uint8Array }
  | { kind: 'array'; items: PackValue[] }
  | { kind: 'map'; entries: [PackValue, PackValue][] }
  | { kind: 'float'; value: number }
);

export class MsgpackError extends Error {}

const MAX_DEPTH = 32;

export function decodeMsgpack(bytes: Uint8Array): PackValue {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let position = 0;
  const need = (count: number) => {
    if (position + count > bytes.length) throw new MsgpackError('truncated msgpack');
  };
  const take = (count: number) => {
    need(count);
    const slice = bytes.subarray(position, position + count);
    position += count;
    return slice;
  };
  const uint = (size: 1 | 2 | 4 | 8): bigint => {
    need(size);
    const value =
      size === 1
        ? BigInt(view.getUint8(position))
        : size === 2
          ? BigInt(view.getUint16(position))
          : size === 4
            ? BigInt(view.getUint32(position))
            : view.getBigUint64(position);
    position += size;
    return value;
  };
  const int = (size: 1 | 2 | 4 | 8): bigint => {
    need(size);
    const value =
      size === 1
        ? BigInt(view.getInt8(position))
        : size === 2
          ? BigInt(view.getInt16(position))
          : size === 4
            ? BigInt(view.getInt32(position))
            : view.getBigInt64(position);
    position += size;
    return value;
  };
  const read = (depth: number): PackValue => {
    if (depth > MAX_DEPTH) throw new MsgpackError('msgpack nested too deeply');
    const start = position;
    need(1);
    const tag = bytes[position++] as number;
    const done = <T extends object>(value: T) => ({ ...value, start, end: position }) as unknown as PackValue;
    const array = (length: number) => {
      const items: PackValue[] = [];
      for (let index = 0; index < length; index++) items.push(read(depth + 1));
      return done({ kind: 'array', items });
    };
    const map = (length: number) => {
      const entries: [PackValue, PackValue][] = [];
      for (let index = 0; index < length; index++) entries.push([read(depth + 1), read(depth + 1)]);
      return done({ kind: 'map', entries });
    };
    const string = (length: number) =>
      done({ kind: 'string', value: new TextDecoder().decode(take(length)) });
    if (tag <= 0x7f) return done({ kind: 'int', value: BigInt(tag) });
    if (tag >= 0xe0) return done({ kind: 'int', value: BigInt(tag - 0x100) });
    if (tag >= 0x80 && tag <= 0x8f) return map(tag & 0x0f);
    if (tag >= 0x90 && tag <= 0x9f) return array(tag & 0x0f);
    if (tag >= 0xa0 && tag <= 0xbf) return string(tag & 0x1f);
    switch (tag) {
      case 0xc0:
        return done({ kind: 'nil' });
      case 0xc2:
      case 0xc3:
        return done({ kind: 'bool', value: tag === 0xc3 });
      case 0xc4:
      case 0xc5:
      case 0xc6:
        return done({ kind: 'bytes', value: take(Number(uint(tag === 0xc4 ? 1 : tag === 0xc5 ? 2 : 4))) });
      case 0xca:
        need(4);
        position += 4;
        return done({ kind: 'float', value: view.getFloat32(position - 4) });
      case 0xcb:
        need(8);
        position += 8;
        return done({ kind: 'float', value: view.getFloat64(position - 8) });
      case 0xcc:
      case 0xcd:
      case 0xce:
      case 0xcf:
        return done({ kind: 'int', value: uint(([1, 2, 4, 8] as const)[tag - 0xcc] as 1 | 2 | 4 | 8) });
      case 0xd0:
      case 0xd1:
      case 0xd2:
      case 0xd3:
        return done({ kind: 'int', value: int(([1, 2, 4, 8] as const)[tag - 0xd0] as 1 | 2 | 4 | 8) });
      case 0xd9:
      case 0xda:
      case 0xdb:
        return string(Number(uint(tag === 0xd9 ? 1 : tag === 0xda ? 2 : 4)));
      case 0xdc:
      case 0xdd:
        return array(Number(uint(tag === 0xdc ? 2 : 4)));
      case 0xde:
      case 0xdf:
        return map(Number(uint(tag === 0xde ? 2 : 4)));
      default:
        throw new MsgpackError(`unsupported msgpack type 0x${tag.toString(16)}`);
    }
  };
  const value = read(0);
  if (position !== bytes.length) throw new MsgpackError('trailing bytes after msgpack value');
  return value;
}

/** Compact encoder (smallest integer forms, like vmihailenco/msgpack with UseCompactInts). */
export type Packable = null | boolean | number | bigint | string | Uint8Array | Packable[];

export function encodeMsgpack(value: Packable): Uint8Array {
  const parts: number[] = [];
  const bytes = (data: ArrayLike<number>) => {
    for (let index = 0; index < data.length; index++) parts.push(data[index] as number);
  };
  const big = (tag: number, size: number, number: bigint) => {
    parts.push(tag);
    const buffer = new DataView(new ArrayBuffer(size));
    if (size === 1) buffer.setUint8(0, Number(BigInt.asUintN(8, number)));
    else if (size === 2) buffer.setUint16(0, Number(BigInt.asUintN(16, number)));
    else if (size === 4) buffer.setUint32(0, Number(BigInt.asUintN(32, number)));
    else buffer.setBigUint64(0, BigInt.asUintN(64, number));
    bytes(new Uint8Array(buffer.buffer));
  };
  const length = (count: number, fix: number, fixMax: number, tags: [number, number, number]) => {
    if (count <= fixMax && fix >= 0) parts.push(fix | count);
    else if (count < 0x100 && tags[0] >= 0) big(tags[0], 1, BigInt(count));
    else if (count < 0x10000) big(tags[1], 2, BigInt(count));
    else big(tags[2], 4, BigInt(count));
  };
  const write = (item: Packable) => {
    if (item === null) parts.push(0xc0);
    else if (typeof item === 'boolean') parts.push(item ? 0xc3 : 0xc2);
    else if (typeof item === 'number' || typeof item === 'bigint') {
      const number = BigInt(item);
      if (number >= 0n) {
        if (number < 0x80n) parts.push(Number(number));
        else if (number < 0x100n) big(0xcc, 1, number);
        else if (number < 0x10000n) big(0xcd, 2, number);
        else if (number < 0x100000000n) big(0xce, 4, number);
        else big(0xcf, 8, number);
      } else if (number >= -32n) parts.push(Number(number + 0x100n));
      else if (number >= -0x80n) big(0xd0, 1, number);
      else if (number >= -0x8000n) big(0xd1, 2, number);
      else if (number >= -0x80000000n) big(0xd2, 4, number);
      else big(0xd3, 8, number);
    } else if (typeof item === 'string') {
      const encoded = new TextEncoder().encode(item);
      length(encoded.length, 0xa0, 31, [0xd9, 0xda, 0xdb]);
      bytes(encoded);
    } else if (item instanceof Uint8Array) {
      length(item.length, -1, -1, [0xc4, 0xc5, 0xc6]);
      bytes(item);
    } else {
      length(item.length, 0x90, 15, [-1, 0xdc, 0xdd]);
      for (const element of item) write(element);
    }
  };
  write(value);
  return new Uint8Array(parts);
}
