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

/** The role a sidecar declares when its page speaks the credential-list contract (see `SidecarProviderV2.roles`). */
export const credentialsRole = 'credentials';

const sidecarPath = (name: string, providerId: string) =>
  `/api/instances/${encodeURIComponent(name)}/sidecars/${encodeURIComponent(providerId)}`;

/** Every current credential as "keep" (`secret: ""`), the shape the PUT expects. */
function keepAll(credentials: CredentialView[]) {
  return credentials.map((credential) => ({ ...credential, secret: '' }));
}

export function registerCredentialCommands(program: Command, context: CliContext): void {
  const creds = program
    .command('creds')
    .description(
      "Manage an instance's credentials (values never leave the server) through its credentials sidecar: the one whose provider declares the `credentials` role, or --sidecar",
    )
    .option(
      '--sidecar <id>',
      'the sidecar that holds the credentials (default: the one with the credentials role)',
    );

  // The sidecar: --sidecar, or the one sidecar of the instance whose provider has the credentials role.
  const sidecarOf = async (command: Command, instance: string): Promise<string> => {
    const chosen = (command.optsWithGlobals() as { sidecar?: string }).sidecar;
    if (chosen) return chosen;
    const client = await context.client(command);
    const [detail, providers] = await Promise.all([
      client.json<{ sidecars: { providerId: string }[] }>(
        'GET',
        `/api/instances/${encodeURIComponent(instance)}`,
      ),
      client.json<{ sidecars: { id: string; roles?: string[] }[] }>('GET', '/api/providers'),
    ]);
    const holders = new Set(
      providers.sidecars
        .filter((provider) => provider.roles?.includes(credentialsRole))
        .map((provider) => provider.id),
    );
    const candidates = detail.sidecars.map((sidecar) => sidecar.providerId).filter((id) => holders.has(id));
    if (candidates.length === 1) return candidates[0]!;
    throw new CliError(
      exitCodes.badInput,
      'INVALID_INPUT',
      candidates.length === 0
        ? `Instance "${instance}" has no sidecar that holds credentials (no installed sidecar with the "${credentialsRole}" role is in it); redeploy it with one, or name one with --sidecar.`
        : `Instance "${instance}" has several sidecars that hold credentials (${candidates.join(', ')}); choose one with --sidecar.`,
    );
  };

  const current = async (command: Command, instance: string, sidecar: string) => {
    const view = await (await context.client(command)).json<{
      enabled: boolean;
      credentials: CredentialView[];
    }>('GET', sidecarPath(instance, sidecar));
    if (!view.enabled || !Array.isArray(view.credentials)) {
      throw new CliError(
        exitCodes.badInput,
        'INVALID_INPUT',
        `Sidecar "${sidecar}" of instance "${instance}" holds no credential list; choose another with --sidecar.`,
      );
    }
    return view.credentials;
  };

  const apply = async (
    command: Command,
    instance: string,
    sidecar: string,
    credentials: unknown[],
    what: string,
  ) => {
    const accepted = await (await context.client(command)).json<{ jobId: string }>(
      'PUT',
      sidecarPath(instance, sidecar),
      { credentials },
    );
    await context.followJob(command, accepted.jobId, what);
    if (context.options(command).json) context.printJson({ jobId: accepted.jobId, status: 'succeeded' });
    else context.print(`${what}: done.`);
  };

  creds
    .command('ls <instance>')
    .description('List credential names, hosts and header options')
    .action(async (instance: string, _options: unknown, command: Command) => {
      const credentials = await current(command, instance, await sidecarOf(command, instance));
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
        const sidecar = await sidecarOf(command, instance);
        const existing = await current(command, instance, sidecar);
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
          sidecar,
          [...others, replacement],
          `Setting credential "${name}" on "${instance}"`,
        );
      },
    );

  creds
    .command('rm <instance> <credential>')
    .description('Remove a credential; the others are kept as they are')
    .action(async (instance: string, name: string, _options: unknown, command: Command) => {
      const sidecar = await sidecarOf(command, instance);
      const existing = await current(command, instance, sidecar);
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
        sidecar,
        keepAll(existing.filter((credential) => credential.name !== name)),
        `Removing credential "${name}" from "${instance}"`,
      );
    });
}
