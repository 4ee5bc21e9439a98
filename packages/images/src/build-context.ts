import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';

export type ContextEntry =
  | { type: 'file'; name: string; content: string | Buffer; mode?: number }
  | { type: 'host-file'; name: string; source: string; mode?: number }
  | { type: 'directory'; name: string; mode?: number };

/** A build context as a tar stream; large host files (the node binary) are streamed, not buffered. */
export function packContext(entries: readonly ContextEntry[]): tar.Pack {
  const pack = tar.pack();
  void (async () => {
    try {
      for (const entry of entries) {
        if (entry.type === 'directory') {
          pack.entry({ name: entry.name, type: 'directory', mode: entry.mode ?? 0o755 });
        } else if (entry.type === 'file') {
          pack.entry({ name: entry.name, mode: entry.mode ?? 0o644 }, entry.content);
        } else {
          const { size, mode } = await stat(entry.source);
          const sink = pack.entry({ name: entry.name, size, mode: entry.mode ?? mode & 0o7777 });
          await pipeline(createReadStream(entry.source), sink);
        }
      }
      pack.finalize();
    } catch (error) {
      pack.destroy(error as Error);
    }
  })();
  return pack;
}
