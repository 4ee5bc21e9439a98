import type { Command } from 'commander';
import { rotateApiToken } from '../../security/api-token.js';
import { startServer } from '../../server.js';
import { defaultWebDirectory } from '../../web-routes.js';
import type { CliContext } from '../cli-context.js';
import { CliError, exitCodes } from '../exit-codes.js';

export function registerServerCommands(program: Command, context: CliContext): void {
  program
    .command('serve')
    .description('Run the API server (127.0.0.1 by default; prints the token on first start)')
    .option('--host <host>', 'address to bind (KEYWARD_HOST, default 127.0.0.1)')
    .option('--port <port>', 'port (KEYWARD_PORT, default 7878; 0 picks one)', (value) =>
      Number.parseInt(value, 10),
    )
    .option(
      '--allowed-origin <origin...>',
      'browser origins allowed to call the API (default: same origin only)',
    )
    .action(async (options: { host?: string; port?: number; allowedOrigin?: string[] }, command: Command) => {
      if (options.port !== undefined && !(options.port >= 0 && options.port <= 65535)) {
        throw new CliError(exitCodes.badInput, 'INVALID_INPUT', '--port must be between 0 and 65535.');
      }
      const server = await startServer({
        dataDirectory: context.options(command).dataDirectory,
        ...(options.host ? { host: options.host } : {}),
        ...(options.port === undefined ? {} : { port: options.port }),
        ...(options.allowedOrigin ? { allowedOrigins: options.allowedOrigin } : {}),
        print: (line) => context.io.stderr.write(`${line}\n`),
      });
      const webUi = defaultWebDirectory() ? `web UI at ${server.url}/` : 'no web UI in this install';
      context.io.stderr.write(`keyward API on ${server.url} (${webUi}; data in ${server.dataDirectory})\n`);
      await new Promise<void>((resolve) => {
        const shutdown = () => {
          process.off('SIGINT', shutdown);
          process.off('SIGTERM', shutdown);
          void server.close().finally(resolve);
        };
        process.on('SIGINT', shutdown);
        process.on('SIGTERM', shutdown);
      });
    });

  const token = program.command('token').description('Manage the API token');
  token
    .command('rotate')
    .description('Replace the API token; a running server uses the new one from its next request')
    .action((_options: unknown, command: Command) => {
      const directory = context.options(command).dataDirectory;
      const value = rotateApiToken(directory);
      if (context.options(command).json) context.printJson({ token: value, dataDirectory: directory });
      else context.print(`New API token (stored mode 0600 in ${directory}/api-token):\n  ${value}`);
    });
}
