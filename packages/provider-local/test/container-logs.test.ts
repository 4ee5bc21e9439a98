import { describe, expect, it } from 'vitest';
import { demultiplexLines, mergeIterables } from '../src/container-logs.js';

function frame(stream: 1 | 2, text: string): Buffer {
  const payload = Buffer.from(text);
  const header = Buffer.alloc(8);
  header[0] = stream;
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
}

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of iterable) items.push(item);
  return items;
}

describe('log demultiplexing', () => {
  it('splits frames into lines per stream, across chunk boundaries', async () => {
    const bytes = Buffer.concat([
      frame(1, 'first li'),
      frame(2, 'oops\n'),
      frame(1, 'ne\nsecond\n'),
      frame(1, 'tail'),
    ]);
    const chunks = [bytes.subarray(0, 5), bytes.subarray(5, 19), bytes.subarray(19)];
    const lines = await collect(
      demultiplexLines(
        (async function* () {
          yield* chunks;
        })(),
        'agent',
      ),
    );
    expect(lines).toEqual([
      { container: 'agent', stream: 'stderr', line: 'oops' },
      { container: 'agent', stream: 'stdout', line: 'first line' },
      { container: 'agent', stream: 'stdout', line: 'second' },
      { container: 'agent', stream: 'stdout', line: 'tail' },
    ]);
  });

  it('merges several streams as items arrive', async () => {
    async function* slow() {
      await new Promise((resolve) => setTimeout(resolve, 30));
      yield 'slow';
    }
    async function* fast() {
      yield 'fast-1';
      yield 'fast-2';
    }
    expect(await collect(mergeIterables([slow(), fast()]))).toEqual(['fast-1', 'fast-2', 'slow']);
  });
});
