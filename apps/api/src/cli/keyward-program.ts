import { isKeywardError } from '@keyward/core';
import { Command, CommanderError } from 'commander';
import { statusForCode } from '../api-error.js';
import { KeywardApiError } from '../client.js';
import { registerDemoCommand } from '../demo/index.js';
import { VERSION } from '../version.js';
import { CliContext, type CliIo } from './cli-context.js';
import { registerCredentialCommands } from './commands/credential-commands.js';
import { registerImageCommands } from './commands/image-commands.js';
import { registerInstanceCommands } from './commands/instance-commands.js';
import { registerPluginCommands } from './commands/plugin-commands.js';
import { registerServerCommands } from './commands/server-commands.js';
import { CliError, exitCodeForStatus, exitCodes } from './exit-codes.js';

/** One entry per command group; `keyward demo` (issue 7) registers itself here. */
export type CommandRegistration = (program: Command, context: CliContext) => void;

export const commandRegistrations: CommandRegistration[] = [
  registerServerCommands,
  registerInstanceCommands,
  registerCredentialCommands,
  registerDemoCommand,
  registerImageCommands,
  registerPluginCommands,
];

export function createProgram(context: CliContext, registrations = commandRegistrations): Command {
  const program = new Command('keyward')
    .description('Deploy AI agents next to sidecars that hold their credentials.')
    .version(VERSION)
    .option(
      '--api <url>',
      'talk to this server (default: KEYWARD_API, a server on 127.0.0.1:7878, else in-process)',
    )
    .option('--data-dir <path>', 'data directory with the API token (KEYWARD_DATA_DIR, default ~/.keyward)')
    .option('--json', 'machine-readable output')
    .option(
      '--verbose',
      'also print the server log lines on stderr when running in this process (always kept in <data dir>/keyward-cli.log)',
    )
    .showHelpAfterError()
    .addHelpText(
      'after',
      '\nExit codes: 0 ok, 2 bad input, 3 not found, 4 runtime failure (deploy/rotation failed, runtime unreachable).',
    )
    .exitOverride()
    .configureOutput({
      writeOut: (text) => context.io.stdout.write(text),
      writeErr: (text) => context.io.stderr.write(text),
    });
  for (const register of registrations) register(program, context);
  return program;
}

/** Runs the CLI and returns its exit code (never calls process.exit, so tests can call it). */
export async function runCli(argv: string[], io?: Partial<CliIo>): Promise<number> {
  const context = new CliContext({
    stdout: io?.stdout ?? process.stdout,
    stderr: io?.stderr ?? process.stderr,
    stdin: io?.stdin ?? process.stdin,
    environment: io?.environment ?? process.env,
  });
  const program = createProgram(context);
  const json = argv.includes('--json');
  const report = (code: string, message: string) => {
    if (json) context.io.stderr.write(`${JSON.stringify({ error: { code, message } })}\n`);
    else context.io.stderr.write(`error ${code}: ${message}\n`);
  };
  try {
    await program.parseAsync(argv);
    return exitCodes.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return exitCodes.ok;
      return exitCodes.badInput;
    }
    if (error instanceof CliError) {
      report(error.code, error.message);
      return error.exitCode;
    }
    if (error instanceof KeywardApiError) {
      report(error.code, error.message);
      return exitCodeForStatus(error.status);
    }
    // Raised in this process (the server's start-up, the token file): the code and message are the user's.
    if (isKeywardError(error)) {
      report(error.code, error.message);
      return exitCodeForStatus(statusForCode(error.code));
    }
    if (error instanceof TypeError && /fetch failed/.test(error.message)) {
      const cause = (error as { cause?: { code?: string } }).cause?.code ?? 'no answer';
      report(
        'RUNTIME_UNAVAILABLE',
        `No keyward server answers (${cause}); start one with "keyward serve", or leave out --api to run in this process.`,
      );
      return exitCodes.runtimeFailure;
    }
    report('INTERNAL_ERROR', error instanceof Error ? error.message : String(error));
    return exitCodes.unexpected;
  }
}
