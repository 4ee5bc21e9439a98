import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeywardError } from '@keyward/core';

export interface InstanceLockOptions {
  directory: string;
  /** How long to wait for another holder before giving up. */
  waitMs?: number;
  /** A lock older than this is stale even if its pid looks alive (pid reuse). */
  staleMs?: number;
  now?: () => number;
  isProcessAlive?: (pid: number) => boolean;
}

interface LockContent {
  pid: number;
  acquiredAt: number;
  operation: string;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Where the locks live when the settings name no directory. */
export function lockDirectoryOf(settings: { lockDirectory?: string | undefined }): string {
  return settings.lockDirectory ?? join(tmpdir(), 'keyward-locks');
}

/** Who holds the instance's lock now (a live process), if anyone. */
export async function instanceLockHolder(
  instance: string,
  directory: string,
  isProcessAlive: (pid: number) => boolean = processAlive,
): Promise<{ pid: number; operation: string } | undefined> {
  try {
    const holder = JSON.parse(await readFile(join(directory, `${instance}.lock`), 'utf8')) as LockContent;
    return isProcessAlive(holder.pid) ? { pid: holder.pid, operation: holder.operation } : undefined;
  } catch {
    return undefined; // no lock, or one being written
  }
}

/**
 * A per-instance lock that holds across processes: a file created with O_EXCL
 * holding the owner's pid. A lock whose owner died, or that is older than
 * `staleMs`, is taken over.
 */
export async function acquireInstanceLock(
  instance: string,
  operation: string,
  options: InstanceLockOptions,
): Promise<() => Promise<void>> {
  const now = options.now ?? Date.now;
  const alive = options.isProcessAlive ?? processAlive;
  const path = join(options.directory, `${instance}.lock`);
  await mkdir(options.directory, { recursive: true, mode: 0o700 });
  const deadline = now() + (options.waitMs ?? 0);
  for (;;) {
    try {
      const handle = await open(path, 'wx', 0o600);
      const content: LockContent = { pid: process.pid, acquiredAt: now(), operation };
      await handle.writeFile(JSON.stringify(content));
      await handle.close();
      let released = false;
      return async () => {
        if (released) return;
        released = true;
        await rm(path, { force: true });
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    let holder: LockContent | undefined;
    try {
      holder = JSON.parse(await readFile(path, 'utf8')) as LockContent;
    } catch {
      holder = undefined; // being written right now, or garbage: treat as held, retry
    }
    const stale =
      holder !== undefined &&
      (!alive(holder.pid) || now() - holder.acquiredAt > (options.staleMs ?? 10 * 60_000));
    if (stale) {
      await rm(path, { force: true });
      continue;
    }
    if (now() >= deadline) {
      throw new KeywardError({
        code: 'ROTATION_IN_PROGRESS',
        message: `Instance "${instance}" is locked by ${holder ? `process ${holder.pid} (${holder.operation})` : 'another operation'}; wait for it to finish and try again.`,
        isRetryable: true,
      });
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
