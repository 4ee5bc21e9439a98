import { spawn } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleProgram } from '@keyward/images';
import { describe, expect, it } from 'vitest';
import { acquireInstanceLock, instanceLockHolder } from '../src/instance-lock.js';

describe('instance lock', () => {
  it('tells who holds it: a live holder, nobody once released, nobody for a dead holder', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'keyward-lock-'));
    expect(await instanceLockHolder('a', directory)).toBeUndefined();
    const release = await acquireInstanceLock('a', 'rotateSecrets', { directory });
    expect(await instanceLockHolder('a', directory)).toEqual({
      pid: process.pid,
      operation: 'rotateSecrets',
    });
    expect(await instanceLockHolder('a', directory, () => false)).toBeUndefined();
    await release();
    expect(await instanceLockHolder('a', directory)).toBeUndefined();
  });

  it('refuses a second holder with ROTATION_IN_PROGRESS until the first releases', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'keyward-lock-'));
    const release = await acquireInstanceLock('a', 'first', { directory });
    await expect(acquireInstanceLock('a', 'second', { directory })).rejects.toMatchObject({
      code: 'ROTATION_IN_PROGRESS',
      message: expect.stringContaining(`process ${process.pid} (first)`),
    });
    // Other instances are independent.
    const other = await acquireInstanceLock('b', 'other', { directory });
    await other();
    await release();
    const again = await acquireInstanceLock('a', 'third', { directory });
    await again();
  });

  it('takes over a lock whose holder died or that is too old', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'keyward-lock-'));
    await writeFile(
      join(directory, 'dead.lock'),
      JSON.stringify({ pid: 999_999_999, acquiredAt: Date.now(), operation: 'x' }),
    );
    const release = await acquireInstanceLock('dead', 'next', { directory, isProcessAlive: () => false });
    await release();
    await writeFile(
      join(directory, 'old.lock'),
      JSON.stringify({ pid: process.pid, acquiredAt: 0, operation: 'x' }),
    );
    const releaseOld = await acquireInstanceLock('old', 'next', { directory, staleMs: 1000 });
    await releaseOld();
  });

  it('holds across processes: a second process waits for the first', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'keyward-lock-'));
    const script = join(directory, 'hold-instance-lock.mjs');
    await writeFile(
      script,
      await bundleProgram(fileURLToPath(new URL('./support/hold-instance-lock.ts', import.meta.url))),
    );
    const child = spawn(process.execPath, [script, directory, 'shared', '1500'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const output: string[] = [];
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        output.push(chunk.toString());
        if (output.join('').includes('locked')) resolve();
      });
      child.on('exit', () => reject(new Error(`holder exited early: ${output.join('')}`)));
    });
    await expect(acquireInstanceLock('shared', 'parent', { directory })).rejects.toMatchObject({
      code: 'ROTATION_IN_PROGRESS',
      message: expect.stringContaining(`process ${child.pid} (test-holder)`),
    });
    const started = Date.now();
    const release = await acquireInstanceLock('shared', 'parent', { directory, waitMs: 10_000 });
    expect(Date.now() - started).toBeGreaterThan(200);
    expect(output.join('')).toContain('released');
    await release();
  });
});
