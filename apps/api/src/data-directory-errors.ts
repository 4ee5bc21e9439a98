import { isKeywardError, KeywardError } from '@keyward/core';

// errno codes (node:fs) and SQLite result codes (better-sqlite3's `code`) that mean the disk
// under the data directory is full, or that it cannot be written at all.
const fullCodes = new Set(['ENOSPC', 'EDQUOT', 'SQLITE_FULL']);
const unwritableCodes = new Set(['EROFS', 'EACCES', 'EPERM', 'SQLITE_READONLY', 'SQLITE_CANTOPEN']);

function codeOf(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : '';
}

/** Whether the error says the disk under the data directory is full. */
export function isDataDirectoryFull(error: unknown): boolean {
  return fullCodes.has(codeOf(error)) || isKeywardError(error, 'DATA_DIRECTORY_FULL');
}

/**
 * A failed write under the data directory as a `KeywardError` that says what failed and what
 * to do: `DATA_DIRECTORY_FULL` (no space left), `DATA_DIRECTORY_UNWRITABLE` (read-only, no
 * permission); anything else is returned unchanged.
 */
export function dataDirectoryError(
  error: unknown,
  input: { directory: string; doing: string; consequence?: string },
): unknown {
  if (isKeywardError(error)) return error;
  const code = codeOf(error);
  const reason = `${code}: ${error instanceof Error ? error.message : String(error)}`;
  const consequence = input.consequence ? ` ${input.consequence}` : '';
  if (fullCodes.has(code)) {
    return new KeywardError({
      code: 'DATA_DIRECTORY_FULL',
      message: `Could not ${input.doing}: the keyward data directory ${input.directory} has no space left (${reason}).${consequence} Free space on its disk (or set KEYWARD_DATA_DIR to a directory with room) and try again.`,
      isRetryable: true,
      cause: error,
    });
  }
  if (unwritableCodes.has(code)) {
    return new KeywardError({
      code: 'DATA_DIRECTORY_UNWRITABLE',
      message: `Could not ${input.doing}: the keyward data directory ${input.directory} cannot be written (${reason}).${consequence} Make it writable by this user (or set KEYWARD_DATA_DIR to one that is) and try again.`,
      cause: error,
    });
  }
  return error;
}
