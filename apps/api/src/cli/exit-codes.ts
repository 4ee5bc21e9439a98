/**
 * Exit codes of the `keyward` command. Scripts switch on them:
 * - 0: success
 * - 1: unexpected failure of the CLI itself
 * - 2: bad input (invalid spec or flags, refused change, conflict, auth)
 * - 3: not found (instance, job, route)
 * - 4: runtime failure (deploy or rotation failed, runtime unreachable, self-test failed)
 */
export const exitCodes = { ok: 0, unexpected: 1, badInput: 2, notFound: 3, runtimeFailure: 4 } as const;

export type ExitCode = (typeof exitCodes)[keyof typeof exitCodes];

/** Exit code for an API error, from its HTTP status. */
export function exitCodeForStatus(status: number): ExitCode {
  if (status === 404) return exitCodes.notFound;
  if (status >= 400 && status < 500 && status !== 429) return exitCodes.badInput;
  return exitCodes.runtimeFailure;
}

/** An error the CLI reports with a given exit code and no stack trace. */
export class CliError extends Error {
  readonly exitCode: ExitCode;
  readonly code: string;
  constructor(exitCode: ExitCode, code: string, message: string) {
    super(message);
    this.name = 'CliError';
    this.exitCode = exitCode;
    this.code = code;
  }
}
