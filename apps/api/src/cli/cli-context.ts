import type { Command } from 'commander';
import type { JobEvent, KeywardClient } from '../client.js';
import { resolveDataDirectory } from '../security/api-token.js';
import { type Connection, connect } from './api-connection.js';
import { CliError, exitCodes } from './exit-codes.js';
import { ProgressRenderer } from './progress-renderer.js';

export interface CliIo {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  stdin: NodeJS.ReadStream;
  environment: NodeJS.ProcessEnv;
}

export interface GlobalOptions {
  api?: string;
  json: boolean;
  dataDirectory: string;
  verbose: boolean;
}

/** What every command gets: output, global options and a client (remote or in-process). */
export class CliContext {
  readonly io: CliIo;
  #connection: Promise<Connection> | undefined;

  constructor(io: CliIo) {
    this.io = io;
  }

  options(command: Command): GlobalOptions {
    const options = command.optsWithGlobals<{
      api?: string;
      json?: boolean;
      dataDir?: string;
      verbose?: boolean;
    }>();
    return {
      ...(options.api ? { api: options.api } : {}),
      json: options.json === true,
      verbose: options.verbose === true,
      dataDirectory: options.dataDir ?? resolveDataDirectory(this.io.environment),
    };
  }

  async client(command: Command): Promise<KeywardClient> {
    const options = this.options(command);
    this.#connection ??= connect({
      ...(options.api ? { api: options.api } : {}),
      dataDirectory: options.dataDirectory,
      environment: this.io.environment,
      ...(options.verbose ? { verbose: this.io.stderr } : {}),
    });
    return (await this.#connection).client;
  }

  print(text: string): void {
    this.io.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  }

  printJson(value: unknown): void {
    this.io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  }

  /** Follows a job to its end, rendering progress; a failed job becomes a CliError naming the step. */
  async followJob(
    command: Command,
    jobId: string,
    what: string,
  ): Promise<Extract<JobEvent, { type: 'result' }>> {
    const client = await this.client(command);
    const json = this.options(command).json;
    const renderer = json ? undefined : new ProgressRenderer({ stream: this.io.stderr });
    try {
      for await (const event of client.jobEvents(jobId)) {
        renderer?.handle(event);
        if (event.type === 'result') return event;
        if (event.type === 'error') {
          const step = event.error.step ? ` at step ${event.error.step}` : '';
          throw new CliError(
            event.error.code === 'INVALID_PROVIDER_CONFIG' || event.error.code === 'INVALID_INPUT'
              ? exitCodes.badInput
              : exitCodes.runtimeFailure,
            event.error.code,
            `${what} failed${step}: ${event.error.message}`,
          );
        }
      }
    } finally {
      renderer?.stop();
    }
    throw new CliError(
      exitCodes.runtimeFailure,
      'RUNTIME_ERROR',
      `${what}: the event stream of job ${jobId} ended early.`,
    );
  }
}
