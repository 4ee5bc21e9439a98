import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { createApp } from '../app.js';
import { KeywardClient } from '../client.js';
import { createDefaultRegistry } from '../default-registry.js';
import { createJsonLogger, fileLineWriter } from '../logger.js';
import { readApiToken } from '../security/api-token.js';
import { defaultPort } from '../server.js';
import { CliError, exitCodes } from './exit-codes.js';

export interface ConnectionOptions {
  /** `--api`: talk to this server only. */
  api?: string;
  dataDirectory: string;
  /** Never fall back to running in this process. */
  remoteOnly?: boolean;
  environment?: NodeJS.ProcessEnv;
  /** `--verbose`: the in-process server's log lines also go to this stream (else only to the log file). */
  verbose?: NodeJS.WritableStream;
}

export const cliLogFileName = 'keyward-cli.log';

/** Where the in-process server's log lines go: `<data dir>/keyward-cli.log`. */
export function cliLogPath(dataDirectory: string): string {
  return join(dataDirectory, cliLogFileName);
}

export interface Connection {
  client: KeywardClient;
  mode: 'remote' | 'in-process';
  url: string;
}

async function isUp(url: string): Promise<boolean> {
  try {
    const response = await fetch(`${url}/api/health`, { signal: AbortSignal.timeout(1500) });
    return response.ok;
  } catch {
    return false;
  }
}

/**
 * A running server when there is one (`--api`, `KEYWARD_API`, or the default
 * address), else the same app in this process: the CLI goes through the same
 * routes either way, so both modes behave alike.
 */
export async function connect(options: ConnectionOptions): Promise<Connection> {
  const environment = options.environment ?? process.env;
  const explicit = options.api ?? environment['KEYWARD_API'];
  const url = (explicit ?? `http://127.0.0.1:${environment['KEYWARD_PORT'] ?? defaultPort}`).replace(
    /\/$/,
    '',
  );
  if (explicit || (await isUp(url))) {
    const token = environment['KEYWARD_TOKEN'] ?? readApiToken(options.dataDirectory);
    if (!token) {
      throw new CliError(
        exitCodes.badInput,
        'UNAUTHORIZED',
        `No API token in ${options.dataDirectory}; start the server once ("keyward serve") or set KEYWARD_TOKEN.`,
      );
    }
    return { client: new KeywardClient({ baseUrl: url, token }), mode: 'remote', url };
  }
  if (options.remoteOnly) {
    throw new CliError(
      exitCodes.runtimeFailure,
      'RUNTIME_UNAVAILABLE',
      `No keyward server answers at ${url}.`,
    );
  }
  // In process: an ephemeral token that never leaves memory. The server's log lines are not the
  // user's output: they go to a file in the data directory, and to stderr only with --verbose.
  const token = `kw_${randomBytes(24).toString('base64url')}`;
  const registry = await createDefaultRegistry({ dataDirectory: options.dataDirectory });
  const toFile = fileLineWriter(cliLogPath(options.dataDirectory));
  const verbose = options.verbose;
  const logger = createJsonLogger({
    level: 'info',
    write: verbose
      ? (line) => {
          toFile(line);
          verbose.write(`${line}\n`);
        }
      : toFile,
  });
  const app = createApp({ registry, token, logger });
  const inProcessFetch = ((input: Parameters<typeof fetch>[0], init?: RequestInit) =>
    Promise.resolve(app.request(input instanceof Request ? input : String(input), init))) as typeof fetch;
  return {
    client: new KeywardClient({ baseUrl: 'http://keyward.in-process', token, fetch: inProcessFetch }),
    mode: 'in-process',
    url: 'in-process',
  };
}
