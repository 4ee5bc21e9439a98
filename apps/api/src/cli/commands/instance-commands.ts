import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import type { CliContext } from '../cli-context.js';
import { CliError, exitCodes } from '../exit-codes.js';

interface InstanceSummary {
  name: string;
  target: string;
  state: string;
  networkMode: string;
  containers: { name: string; running: boolean }[];
  agentUrl?: string;
}

async function readSpecFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = path === '-' ? await readStdin() : await readFile(path, 'utf8');
  } catch (error) {
    throw new CliError(
      exitCodes.badInput,
      'INVALID_INPUT',
      `Cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}.`,
    );
  }
  try {
    return parseYaml(text);
  } catch (error) {
    throw new CliError(
      exitCodes.badInput,
      'INVALID_INSTANCE_SPEC',
      `${path} is not valid YAML: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`,
    );
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks).toString('utf8');
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows
    .map((row) =>
      row
        .map((cell, column) => cell.padEnd(widths[column]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

const path = (name: string, suffix = '') => `/api/instances/${encodeURIComponent(name)}${suffix}`;

export function registerInstanceCommands(program: Command, context: CliContext): void {
  program
    .command('deploy')
    .description('Deploy an instance from a YAML (or JSON) instance spec, with live progress')
    .requiredOption('-f, --file <path>', 'instance spec file ("-" reads stdin)')
    .option('--replace', 'apply the spec over an existing instance')
    .action(async (options: { file: string; replace?: boolean }, command: Command) => {
      const spec = await readSpecFile(options.file);
      const client = await context.client(command);
      const accepted = await client.json<{
        jobId: string;
        instance: string;
        warnings: { message: string }[];
      }>('POST', `/api/instances${options.replace ? '?replace=true' : ''}`, spec);
      const json = context.options(command).json;
      if (!json)
        for (const warning of accepted.warnings) context.io.stderr.write(`warning: ${warning.message}\n`);
      const result = await context.followJob(command, accepted.jobId, `Deploy of "${accepted.instance}"`);
      const instance = result.result as InstanceSummary;
      if (json) context.printJson({ jobId: accepted.jobId, status: 'succeeded', instance });
      else
        context.print(
          `Deployed "${instance.name}" on ${instance.target}${instance.agentUrl ? `: ${instance.agentUrl}` : ''}`,
        );
    });

  program
    .command('ls')
    .description('List instances on every target')
    .action(async (_options: unknown, command: Command) => {
      const client = await context.client(command);
      const body = await client.json<{
        instances: InstanceSummary[];
        errors: { target: string; code?: string; message: string }[];
      }>('GET', '/api/instances');
      if (context.options(command).json) return context.printJson(body);
      if (body.instances.length === 0) context.print('No instances.');
      else
        context.print(
          table([
            ['NAME', 'TARGET', 'STATE', 'NETWORK', 'CONTAINERS', 'AGENT'],
            ...body.instances.map((instance) => [
              instance.name,
              instance.target,
              instance.state,
              instance.networkMode,
              `${instance.containers.filter((container) => container.running).length}/${instance.containers.length}`,
              instance.agentUrl ?? '',
            ]),
          ]),
        );
      // A target that is not set up here (k8s without a kubeconfig) is not news on every `ls`:
      // it shows with --verbose and in `keyward providers`; a target that fails is always shown.
      const verbose = context.options(command).verbose;
      for (const error of body.errors) {
        if (error.code === 'RUNTIME_UNAVAILABLE' && !verbose) continue;
        context.io.stderr.write(`warning: target ${error.target}: ${error.message}\n`);
      }
    });

  program
    .command('get <name>')
    .description('Show one instance (secrets redacted)')
    .action(async (name: string, _options: unknown, command: Command) => {
      const detail = await (await context.client(command)).json<Record<string, unknown>>('GET', path(name));
      context.printJson(detail);
    });

  program
    .command('logs <name>')
    .description('Print container logs')
    .option('-f, --follow', 'keep streaming new lines')
    .option('-c, --container <name>', "only this container (agent, or a sidecar's container)")
    .option('--tail <lines>', 'only the last lines', (value) => Number.parseInt(value, 10))
    .action(
      async (name: string, options: { follow?: boolean; container?: string; tail?: number }, command) => {
        const client = await context.client(command);
        const abort = new AbortController();
        const stop = () => abort.abort();
        process.once('SIGINT', stop);
        try {
          for await (const line of client.logs(name, { ...options, signal: abort.signal })) {
            if (context.options(command).json) context.io.stdout.write(`${JSON.stringify(line)}\n`);
            else context.io.stdout.write(`[${line.container}] ${line.line}\n`);
          }
        } catch (error) {
          if (!abort.signal.aborted) throw error;
        } finally {
          process.off('SIGINT', stop);
        }
      },
    );

  for (const action of ['start', 'stop', 'restart'] as const) {
    program
      .command(`${action} <name>`)
      .description(`${action[0]!.toUpperCase()}${action.slice(1)} an instance`)
      .action(async (name: string, _options: unknown, command: Command) => {
        const result = await (await context.client(command)).json<{ status: string }>(
          'POST',
          path(name, `/${action}`),
        );
        if (context.options(command).json) context.printJson(result);
        else context.print(`${name}: ${result.status}`);
      });
  }

  program
    .command('rm <name>')
    .description('Delete an instance and everything labelled with it')
    .option('--keep-volumes', 'keep its data volumes')
    .action(async (name: string, options: { keepVolumes?: boolean }, command: Command) => {
      const result = await (await context.client(command)).json<{ status: string }>(
        'DELETE',
        path(name, options.keepVolumes ? '?keepVolumes=true' : ''),
      );
      if (context.options(command).json) context.printJson(result);
      else context.print(`${name}: ${result.status}`);
    });

  program
    .command('verify <name>')
    .description(
      "Run the self-test from inside the agent: the target's checks and each sidecar's (exit 4 when a check fails)",
    )
    .option(
      '--option <sidecar.key=value>',
      "a sidecar's verify option, repeatable (its schema: keyward providers --json)",
      (value: string, previous: string[] = []) => [...previous, value],
    )
    .option('--allowed-url <url>', 'an allowed upstream, for the sidecars whose checks take allowedUrl')
    .option('--unbound-url <url>', 'a host no credential is bound to (unboundUrl)')
    .option('--credential <name>', 'the credential to use (credential)')
    .action(
      async (
        name: string,
        options: { option?: string[]; allowedUrl?: string; unboundUrl?: string; credential?: string },
        command: Command,
      ) => {
        const bySidecar: Record<string, Record<string, string>> = {};
        for (const entry of options.option ?? []) {
          const match = /^([a-z0-9-]+)\.([A-Za-z0-9_-]+)=(.*)$/s.exec(entry);
          if (!match) {
            throw new CliError(
              exitCodes.badInput,
              'INVALID_INPUT',
              `--option ${entry}: write <sidecar>.<key>=<value> (litellm.model=gpt-4o).`,
            );
          }
          bySidecar[match[1]!] = { ...bySidecar[match[1]!], [match[2]!]: match[3]! };
        }
        // The three flags are top-level fields: the API gives them to every sidecar whose schema takes them.
        const body = {
          ...(options.allowedUrl ? { allowedUrl: options.allowedUrl } : {}),
          ...(options.unboundUrl ? { unboundUrl: options.unboundUrl } : {}),
          ...(options.credential ? { credential: options.credential } : {}),
          ...(Object.keys(bySidecar).length > 0 ? { options: bySidecar } : {}),
        };
        const result = await (await context.client(command)).json<{
          passed: boolean;
          checks: { name: string; providerId: string; passed: boolean; evidence: string }[];
        }>('POST', path(name, '/verify'), body);
        if (context.options(command).json) context.printJson(result);
        else
          for (const check of result.checks)
            context.print(
              `${check.passed ? '✔' : '✖'} ${check.name} (${check.providerId}): ${check.evidence}`,
            );
        if (!result.passed) {
          throw new CliError(exitCodes.runtimeFailure, 'VERIFY_FAILED', `Self-test of "${name}" failed.`);
        }
      },
    );

  program
    .command('providers')
    .description('List installed sidecars and targets, and the plugins that failed to load (with the reason)')
    .action(async (_options: unknown, command: Command) => {
      const result = await (await context.client(command)).json<{
        sidecars: {
          id: string;
          displayName?: string;
          rotation: boolean;
          verification: boolean;
          roles: string[];
          routeAliases: string[];
        }[];
        targets: { id: string; displayName?: string }[];
        loadErrors: { source: string; code: string; message: string }[];
      }>('GET', '/api/providers');
      if (context.options(command).json) return context.printJson(result);
      context.print('SIDECARS');
      for (const sidecar of result.sidecars) {
        const traits = [
          sidecar.rotation ? 'changes' : undefined,
          sidecar.verification ? 'self-test' : undefined,
          ...sidecar.roles.map((role) => `role ${role}`),
          ...sidecar.routeAliases.map((alias) => `alias /${alias}`),
        ].filter(Boolean);
        context.print(
          `  ${sidecar.id}${sidecar.displayName ? ` (${sidecar.displayName})` : ''}${traits.length > 0 ? `: ${traits.join(', ')}` : ''}`,
        );
      }
      context.print('TARGETS');
      for (const target of result.targets)
        context.print(`  ${target.id}${target.displayName ? ` (${target.displayName})` : ''}`);
      if (result.loadErrors.length > 0) {
        context.print('FAILED TO LOAD');
        for (const error of result.loadErrors)
          context.print(`  ${error.source}: ${error.code} ${error.message}`);
      }
    });

  program
    .command('render [name]')
    .description("Print a target's manifests for a deployed instance or a spec file (secrets redacted)")
    .option('-f, --file <path>', 'render this instance spec instead of a deployed instance')
    .action(async (name: string | undefined, options: { file?: string }, command: Command) => {
      if (!name && !options.file) {
        throw new CliError(exitCodes.badInput, 'INVALID_INPUT', 'Give an instance name or -f <spec file>.');
      }
      const client = await context.client(command);
      const rendered = options.file
        ? await client.json<{ content: string }>('POST', '/api/render', await readSpecFile(options.file))
        : await client.json<{ content: string }>('GET', path(name!, '/render'));
      if (context.options(command).json) context.printJson(rendered);
      else context.io.stdout.write(rendered.content);
    });
}
