import type { LogLineV2 } from '@keyward/core';
import type Docker from 'dockerode';

/**
 * Splits a multiplexed log stream (8-byte frame headers: stream type + length)
 * into lines. Containers created without a TTY always produce this format.
 */
export async function* demultiplexLines(
  stream: AsyncIterable<Buffer>,
  container: string,
): AsyncGenerator<LogLineV2> {
  let pending = Buffer.alloc(0);
  const partial: Record<'stdout' | 'stderr', string> = { stdout: '', stderr: '' };
  for await (const chunk of stream) {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= 8) {
      const size = pending.readUInt32BE(4);
      if (pending.length < 8 + size) break;
      const kind = pending[0] === 2 ? 'stderr' : 'stdout';
      const text = partial[kind] + pending.subarray(8, 8 + size).toString('utf8');
      pending = pending.subarray(8 + size);
      const lines = text.split('\n');
      partial[kind] = lines.pop() ?? '';
      for (const line of lines) yield { container, stream: kind, line };
    }
  }
  for (const kind of ['stdout', 'stderr'] as const) {
    if (partial[kind]) yield { container, stream: kind, line: partial[kind] };
  }
}

/** Merges several async iterables, yielding items as they arrive. */
export async function* mergeIterables<T>(iterables: AsyncIterable<T>[]): AsyncGenerator<T> {
  const iterators = iterables.map((iterable) => iterable[Symbol.asyncIterator]());
  const pending = new Map<number, Promise<{ index: number; result: IteratorResult<T> }>>();
  const pull = (index: number) =>
    pending.set(
      index,
      (iterators[index] as AsyncIterator<T>).next().then((result) => ({ index, result })),
    );
  for (let index = 0; index < iterators.length; index += 1) pull(index);
  try {
    while (pending.size > 0) {
      const { index, result } = await Promise.race(pending.values());
      if (result.done) {
        pending.delete(index);
        continue;
      }
      pull(index);
      yield result.value;
    }
  } finally {
    await Promise.all(iterators.map((iterator) => iterator.return?.()));
  }
}

export async function containerLogStream(
  docker: Docker,
  runtimeName: string,
  options: { follow: boolean; tail?: number },
): Promise<AsyncIterable<Buffer>> {
  const container = docker.getContainer(runtimeName);
  if (options.follow) {
    return (await container.logs({
      follow: true,
      stdout: true,
      stderr: true,
      ...(options.tail === undefined ? {} : { tail: options.tail }),
    })) as unknown as AsyncIterable<Buffer>;
  }
  const buffer = await container.logs({
    follow: false,
    stdout: true,
    stderr: true,
    ...(options.tail === undefined ? {} : { tail: options.tail }),
  });
  return (async function* () {
    yield Buffer.isBuffer(buffer) ? buffer : Buffer.from(String(buffer));
  })();
}

/** A stopped container's last log lines, joined for an error message. */
export async function lastLogLines(docker: Docker, runtimeName: string, count: number): Promise<string> {
  const lines: string[] = [];
  for await (const line of demultiplexLines(
    await containerLogStream(docker, runtimeName, { follow: false, tail: count * 4 }),
    runtimeName,
  )) {
    lines.push(line.line);
  }
  return lines.slice(-count).join(' | ') || '(none)';
}
