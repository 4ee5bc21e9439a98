import { isKeywardError, KeywardError } from '@keyward/core';
import { describe, expect, it } from 'vitest';
import { dataDirectoryError, isDataDirectoryFull } from './data-directory-errors.js';

const failure = (code: string, message: string) => Object.assign(new Error(message), { code });

describe('dataDirectoryError', () => {
  it('says the disk is full, where, what did not happen and what to do', () => {
    for (const code of ['ENOSPC', 'EDQUOT', 'SQLITE_FULL']) {
      const error = dataDirectoryError(failure(code, 'database or disk is full'), {
        directory: '/data',
        doing: 'record the new deploy job',
        consequence: 'Nothing was started.',
      });
      expect(isKeywardError(error, 'DATA_DIRECTORY_FULL'), code).toBe(true);
      expect((error as KeywardError).message).toBe(
        `Could not record the new deploy job: the keyward data directory /data has no space left (${code}: database or disk is full). Nothing was started. Free space on its disk (or set KEYWARD_DATA_DIR to a directory with room) and try again.`,
      );
      expect(isDataDirectoryFull(error)).toBe(true);
    }
  });

  it('says the directory cannot be written when it is read-only or not ours', () => {
    for (const code of ['EROFS', 'EACCES', 'SQLITE_READONLY']) {
      const error = dataDirectoryError(failure(code, 'read-only'), {
        directory: '/data',
        doing: 'write the token',
      });
      expect(isKeywardError(error, 'DATA_DIRECTORY_UNWRITABLE'), code).toBe(true);
      expect((error as KeywardError).message).toMatch(/Make it writable by this user/);
    }
  });

  it('leaves other errors, and KeywardErrors, as they are', () => {
    const other = failure('SQLITE_CORRUPT', 'malformed');
    expect(dataDirectoryError(other, { directory: '/data', doing: 'x' })).toBe(other);
    const keyward = new KeywardError({ code: 'INTERNAL_ERROR', message: 'kept' });
    expect(dataDirectoryError(keyward, { directory: '/data', doing: 'x' })).toBe(keyward);
    expect(isDataDirectoryFull(other)).toBe(false);
  });
});
