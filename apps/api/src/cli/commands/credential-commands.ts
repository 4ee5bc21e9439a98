import type { Command } from 'commander';
import type { CliContext } from '../cli-context.js';
import { CliError, exitCodes } from '../exit-codes.js';
import { readSecret } from '../secret-input.js';

interface CredentialView {
  name: string;
  allowedHosts: string[];
  headerDst?: string;
  headerFmt?: string;
}

const tokenizerPath = (name: string) => `/api/instances/${encodeURIComponent(name)}/tokenizer`;

/** Every current credential as "keep" (`secret: ""`), the shape the PUT expects. */
function keepAll(credentials: CredentialView[]) {
  return credentials.map((credential) => ({ ...credential, secret: '' }));
}

export function registerCredentialCommands(program: Command, context: CliContext): void {
  const creds = program
    .command('creds')
    .description('Manage tokenizer credentials (values never leave the server)');

  const current = async (command: Command, instance: string) => {
    const view = await (await context.client(command)).json<{
      enabled: boolean;
      credentials: CredentialView[];
    }>('GET', tokenizerPath(instance));
    if (!view.enabled) {
      throw new CliError(
        exitCodes.badInput,
        'INVALID_INPUT',
        `Instance "${instance}" has no tokenizer; redeploy it with sidecars.tokenizer in its spec.`,
      );
    }
    return view.credentials;
  };

  const apply = async (command: Command, instance: string, credentials: unknown[], what: string) => {
    const accepted = await (await context.client(command)).json<{ jobId: string }>(
      'PUT',
      tokenizerPath(instance),
      {
        credentials,
      },
    );
    await context.followJob(command, accepted.jobId, what);
    if (context.options(command).json) context.printJson({ jobId: accepted.jobId, status: 'succeeded' });
    else context.print(`${what}: done.`);
  };

  creds
    .command('ls <instance>')
    .description('List credential names, hosts and header options')
    .action(async (instance: string, _options: unknown, command: Command) => {
      const credentials = await current(command, instance);
      if (context.options(command).json) return context.printJson({ credentials });
      if (credentials.length === 0) return context.print('No credentials.');
      for (const credential of credentials) {
        const header =
          credential.headerDst || credential.headerFmt
            ? ` (${credential.headerDst ?? 'Authorization'}: ${credential.headerFmt ?? 'Bearer %s'})`
            : '';
        context.print(`${credential.name}  ${credential.allowedHosts.join(', ')}${header}`);
      }
    });

  creds
    .command('set <instance> <credential>')
    .description(
      'Add or replace a credential; the secret comes from a hidden prompt or stdin, never from argv',
    )
    .requiredOption('--host <host...>', 'hosts the credential may be sent to (api.github.com)')
    .option('--header-dst <header>', 'header that carries it (default Authorization)')
    .option('--header-fmt <format>', 'format with %s (default "Bearer %s")')
    .action(
      async (
        instance: string,
        name: string,
        options: { host: string[]; headerDst?: string; headerFmt?: string },
        command: Command,
      ) => {
        const existing = await current(command, instance);
        const secret = await readSecret(`Secret for ${name}: `, context.io.stdin);
        const replacement = {
          name,
          secret,
          allowedHosts: options.host,
          ...(options.headerDst ? { headerDst: options.headerDst } : {}),
          ...(options.headerFmt ? { headerFmt: options.headerFmt } : {}),
        };
        const others = keepAll(existing.filter((credential) => credential.name !== name));
        await apply(
          command,
          instance,
          [...others, replacement],
          `Setting credential "${name}" on "${instance}"`,
        );
      },
    );

  creds
    .command('rm <instance> <credential>')
    .description('Remove a credential; the others are kept as they are')
    .action(async (instance: string, name: string, _options: unknown, command: Command) => {
      const existing = await current(command, instance);
      if (!existing.some((credential) => credential.name === name)) {
        throw new CliError(
          exitCodes.notFound,
          'NOT_FOUND',
          `Instance "${instance}" has no credential "${name}"; it has: ${existing.map((credential) => credential.name).join(', ') || 'none'}.`,
        );
      }
      await apply(
        command,
        instance,
        keepAll(existing.filter((credential) => credential.name !== name)),
        `Removing credential "${name}" from "${instance}"`,
      );
    });
}
