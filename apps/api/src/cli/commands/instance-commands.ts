import { open, readFile } from 'node:fs/promises';
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

interface RenderResponse {
  target: string;
  instance: string;
  secretValues: 'omit' | 'include' | 'separate';
  content: string;
  secrets: {
    kind: string;
    name: string;
    namespace?: string;
    keys: { key: string; providerId: string; readers: string[]; agentSafe: boolean }[];
  }[];
  secretsContent?: string;
}

/** Created or truncated, then only the owner may read it (an existing file keeps no wider mode). */
async function writePrivateFile(path: string, content: string): Promise<void> {
  const handle = await open(path, 'w', 0o600);
  try {
    await handle.chmod(0o600);
    await handle.writeFile(content, 'utf8');
  } finally {
    await handle.close();
  }
}

/** What went where, for stderr: the Secrets (names, keys, readers; never a value) and how to supply them. */
function renderNotes(rendered: RenderResponse, options: { file?: string; secretsFile?: string }): string {
  if (rendered.secrets.length === 0) return '';
  const spec = options.file ?? '<spec file>';
  const lines: string[] = [];
  const list = () => {
    for (const secret of rendered.secrets) {
      lines.push(`  ${secret.kind} ${secret.namespace ? `${secret.namespace}/` : ''}${secret.name}:`);
      for (const key of secret.keys) {
        const what = key.agentSafe ? 'agent-safe (sealed token or proxy password)' : 'never for the agent';
        lines.push(`    ${key.key}  from ${key.providerId}, read by ${key.readers.join(', ')}; ${what}`);
      }
    }
  };
  if (rendered.secretValues === 'include') {
    lines.push(
      "keyward render: WARNING: this output holds secret values (the proxy's open key, sealed tokens) in the Secrets below.",
      'Apply it straight away (| kubectl apply -f -); never commit it or keep it unencrypted.',
    );
    list();
  } else if (rendered.secretValues === 'separate') {
    lines.push(
      `keyward render: the Secrets below are printed without their values; their values are in ${options.secretsFile} (mode 0600).`,
    );
    list();
    lines.push(
      `Apply that file apart (kubectl apply -f ${options.secretsFile}) or seal it (kubeseal, a secret store for External Secrets),`,
      'then delete it. Its values belong to this render: render again and both files change together.',
    );
  } else {
    lines.push(
      `keyward render: ${rendered.secrets.length} Secret${rendered.secrets.length === 1 ? ' is' : 's are'} printed without values (keyward.dev/values: omitted); the pods that read them wait until they hold these keys:`,
    );
    list();
    lines.push(
      'The values (an open key, the sealed tokens and the token digests in the manifests) are made by each render, so they must come',
      'from the same render as the manifests you apply:',
      `  keyward render -f ${spec} --secrets-file secrets.yaml > manifests.yaml   (commit manifests.yaml; apply or seal secrets.yaml apart)`,
      `  keyward render -f ${spec} --include-secrets | kubectl apply -f -        (everything, values included, straight to the cluster)`,
    );
  }
  return `${lines.join('\n')}\n`;
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
    .description(
      "Print a target's manifests for a spec file or a deployed instance; Secrets come without their values unless asked",
    )
    .option('-f, --file <path>', 'render this instance spec instead of a deployed instance')
    .option(
      '--include-secrets',
      'print the Secrets with their values (the open key, sealed tokens), for "| kubectl apply -f -"; never commit it',
    )
    .option(
      '--secrets-file <path>',
      'write the Secrets with their values (same render) to this file, mode 0600; stdout keeps them without values',
    )
    .option('--force', 'with --include-secrets: print the values even when stdout is a terminal')
    .action(
      async (
        name: string | undefined,
        options: { file?: string; includeSecrets?: boolean; secretsFile?: string; force?: boolean },
        command: Command,
      ) => {
        if (!name && !options.file) {
          throw new CliError(exitCodes.badInput, 'INVALID_INPUT', 'Give an instance name or -f <spec file>.');
        }
        const withValues = options.includeSecrets || options.secretsFile !== undefined;
        if (options.includeSecrets && options.secretsFile !== undefined) {
          throw new CliError(
            exitCodes.badInput,
            'INVALID_INPUT',
            'Choose one: --include-secrets (values on stdout) or --secrets-file <path> (values in that file).',
          );
        }
        if (withValues && !options.file) {
          throw new CliError(
            exitCodes.badInput,
            'INVALID_INPUT',
            `A deployed instance's secret values are not rendered (a new render makes new keys, not the running ones); render its spec file: keyward render -f <spec file> ${options.includeSecrets ? '--include-secrets' : '--secrets-file <path>'}.`,
          );
        }
        // Values on a terminal end up in its scrollback and screen recordings.
        if (options.includeSecrets && context.io.stdout.isTTY && !options.force) {
          throw new CliError(
            exitCodes.badInput,
            'INVALID_INPUT',
            'Refusing to print secret values (the open key, sealed tokens) to a terminal; pipe it (keyward render -f <spec file> --include-secrets | kubectl apply -f -), use --secrets-file <path>, or add --force.',
          );
        }
        const secretValues = options.includeSecrets
          ? 'include'
          : options.secretsFile !== undefined
            ? 'separate'
            : 'omit';
        const client = await context.client(command);
        const rendered = options.file
          ? await client.json<RenderResponse>(
              'POST',
              `/api/render?secretValues=${secretValues}`,
              await readSpecFile(options.file),
            )
          : await client.json<RenderResponse>('GET', path(name!, '/render'));
        if (options.secretsFile !== undefined) {
          if (rendered.secretsContent === undefined) {
            throw new CliError(
              exitCodes.runtimeFailure,
              'UNSUPPORTED_CAPABILITY',
              `Target "${rendered.target}" gave no separate Secrets; nothing was written to ${options.secretsFile}.`,
            );
          }
          await writePrivateFile(options.secretsFile, rendered.secretsContent);
        }
        if (context.options(command).json) context.printJson(rendered);
        else context.io.stdout.write(rendered.content);
        context.io.stderr.write(renderNotes(rendered, options));
      },
    );
}
