// The `keyward demo` subcommand: prints runDemo's progress and result, and turns
// Ctrl-C into a rollback instead of a half-made instance.
import { isKeywardError, redact } from '@keyward/core';
import type { Command } from 'commander';
import { CliError, type ExitCode, exitCodes } from '../cli/exit-codes.js';
import type { DemoExtra } from './demo-images.js';
import { type DemoProgressEvent, type DemoResult, runDemo } from './run-demo.js';

export interface DemoCommandOptions {
  nonInteractive?: boolean;
  json?: boolean;
  verbose?: boolean;
  /** `--with litellm,otel`: sidecars next to the tokenizer. */
  with?: string;
}

const knownExtras: readonly DemoExtra[] = ['litellm', 'otel'];

/** `litellm,otel` → the extras; an unknown name is the user's mistake, said with what to write. */
export function parseDemoExtras(text: string | undefined): DemoExtra[] {
  if (text === undefined) return [];
  const names = text
    .split(',')
    .map((name) => name.trim().toLowerCase())
    .filter(Boolean);
  const unknown = names.filter((name) => !knownExtras.includes(name as DemoExtra));
  if (unknown.length > 0) {
    throw new CliError(
      exitCodes.badInput,
      'INVALID_ARGUMENT',
      `keyward demo --with knows ${knownExtras.join(' and ')}, not ${unknown.join(', ')}; write for example --with litellm,otel`,
    );
  }
  if (names.includes('otel') && !names.includes('litellm')) {
    throw new CliError(
      exitCodes.badInput,
      'INVALID_ARGUMENT',
      'keyward demo --with otel traces the LiteLLM chain; write --with litellm,otel',
    );
  }
  return [...new Set(names)] as DemoExtra[];
}

export interface DemoOutput {
  write(text: string): void;
  error(text: string): void;
  color: boolean;
}

const defaultOutput = (): DemoOutput => ({
  write: (text) => process.stdout.write(text),
  error: (text) => process.stderr.write(text),
  color: Boolean(process.stdout.isTTY) && !process.env['NO_COLOR'],
});

function paint(output: DemoOutput, code: string, text: string): string {
  return output.color ? `\u001b[${code}m${text}\u001b[0m` : text;
}

const stepTitles: Record<DemoProgressEvent['step'], string> = {
  runtime: 'runtime',
  images: 'images',
  cleanup: 'cleanup',
  deploy: 'deploy',
  'demo-api': 'demo API',
  checks: 'check',
  rollback: 'rollback',
};

export function formatProgress(
  event: DemoProgressEvent,
  output: DemoOutput,
  verbose: boolean,
): string | undefined {
  const detail = event.detail as { status?: string; type?: string } | undefined;
  // Target steps: one line when each starts, and failures always.
  if (event.step === 'deploy' && event.status === 'info' && detail?.status !== 'failed') {
    return detail?.status === 'started' ? `  ${paint(output, '2', '·')} ${event.message}\n` : undefined;
  }
  // Build output lines only with --verbose.
  if (event.step === 'images' && event.status === 'info' && detail?.type === 'output' && !verbose)
    return undefined;
  // Check results are printed with the summary.
  if (event.step === 'checks' && event.status !== 'started') return undefined;
  const marker =
    event.status === 'succeeded'
      ? paint(output, '32', '✔')
      : event.status === 'failed'
        ? paint(output, '31', '✖')
        : event.status === 'started'
          ? paint(output, '36', '▸')
          : ' ';
  return `${marker} ${paint(output, '2', `[${stepTitles[event.step]}]`)} ${event.message}\n`;
}

export function formatResult(result: DemoResult, output: DemoOutput): string {
  const lines: string[] = ['', paint(output, '1', 'What the agent can and cannot do'), ''];
  result.checks.forEach((check, index) => {
    const marker = check.passed ? paint(output, '32', '✔ PASS') : paint(output, '31', '✖ FAIL');
    lines.push(`${marker}  ${index + 1}. ${check.title}`, `         ${paint(output, '2', check.evidence)}`);
  });
  const seconds = (result.durationMs / 1000).toFixed(1);
  lines.push(
    '',
    result.passed
      ? paint(
          output,
          '32;1',
          `The promise holds: the agent used the credential, could not read it, and could not go around the proxy. (${seconds} s)`,
        )
      : paint(
          output,
          '31;1',
          `Some checks failed (${seconds} s). The instance is left running so you can look: podman ps --filter label=keyward.dev/instance=${result.instance}`,
        ),
    '',
    paint(output, '1', 'Summary'),
    `  instance        ${result.instance} (target local, network proxy-only) on ${result.runtime.name}${result.runtime.version ? ` ${result.runtime.version}` : ''}`,
    `  agent           container ${result.agentContainer}${result.agentUrl ? `, ${result.agentUrl}` : ''} (a stand-in agent image)`,
    `  demo API        https://${result.demoApi.hostname}:${result.demoApi.port} inside the instance; what it received: ${result.demoApi.adminUrl}/_received`,
    `  credential      "demo-api", random for this run, sha256:${result.credentialFingerprint}; held sealed by the agent, never in clear`,
    ...(result.extras.includes('litellm')
      ? [
          `  LiteLLM         the agent's model gateway (real LiteLLM); its model API key sha256:${result.modelKeyFingerprint} is sealed for LiteLLM and injected by the tokenizer`,
        ]
      : []),
    ...(result.extras.includes('otel')
      ? [
          `  telemetry       OpenTelemetry Collector; spans in /var/lib/otelcol/telemetry.jsonl of container keyward-${result.instance}-otel`,
        ]
      : []),
    `  keyward API     run \`${result.cliCommand} serve\` and it listens on ${result.apiAddress} (bearer token in ~/.keyward/api-token)${result.webUi ? `; the web UI is at ${result.apiAddress}/ (paste that token once)` : ''}`,
    `  look inside     ${result.cliCommand} ls · ${result.cliCommand} logs ${result.instance} · ${result.cliCommand} verify ${result.instance}`,
    `  clean up        ${result.dockerHostHint ? `${result.dockerHostHint} ` : ''}${result.cleanupCommand}   (removes the agent, the tokenizer, the demo API, networks and volumes)`,
    '',
  );
  return lines.join('\n');
}

export interface DemoCommandOutcome {
  exitCode: number;
  /** Error code when the demo did not pass (`RUNTIME_UNAVAILABLE`, `VERIFY_FAILED`, `INTERRUPTED` …). */
  code?: string;
  message?: string;
  result?: DemoResult;
}

/**
 * Runs the demo as the CLI does: prints progress and the result, turns Ctrl-C into
 * a rollback, and returns the outcome (it never exits the process on its own,
 * except on a second Ctrl-C).
 */
export async function runDemoCommand(
  options: DemoCommandOptions = {},
  output: DemoOutput = defaultOutput(),
  environment: NodeJS.ProcessEnv = process.env,
): Promise<DemoCommandOutcome> {
  const extras = parseDemoExtras(options.with);
  const controller = new AbortController();
  let firstInterrupt = 0;
  const onInterrupt = () => {
    const now = Date.now();
    if (firstInterrupt === 0) {
      firstInterrupt = now;
      output.error(
        '\nInterrupted: finishing the current step, then removing what the demo made (Ctrl-C again to quit at once)…\n',
      );
      controller.abort();
    } else if (now - firstInterrupt > 1000) {
      // A wrapper (pnpm, a shell) forwards the terminal's Ctrl-C too: only a second
      // press, not that copy arriving right after the first, quits without cleaning up.
      output.error('Quitting without cleaning up; run `keyward rm demo` to remove what is left.\n');
      process.exit(130);
    }
  };
  process.on('SIGINT', onInterrupt);
  process.on('SIGTERM', onInterrupt);
  const verbose = options.verbose ?? false;
  try {
    if (!options.json) {
      output.write(
        `${paint(output, '1', 'keyward demo')}: an agent that can use a credential it cannot read, and cannot go around the proxy\n\n`,
      );
    }
    const result = await runDemo({
      with: extras,
      signal: controller.signal,
      environment,
      onProgress: (event) => {
        if (options.json) return;
        const line = formatProgress(event, output, verbose);
        if (line) output.write(line);
      },
    });
    output.write(
      options.json ? `${JSON.stringify(redact(result), null, 2)}\n` : formatResult(result, output),
    );
    if (result.passed) return { exitCode: exitCodes.ok, result };
    const failed = result.checks.filter((check) => !check.passed).map((check) => check.name);
    return {
      exitCode: exitCodes.runtimeFailure,
      code: 'VERIFY_FAILED',
      message: `${failed.length} of ${result.checks.length} demo checks failed (${failed.join(', ')}); the instance is left for a look, \`keyward rm demo\` removes it.`,
      result,
    };
  } catch (error) {
    const message = redact(error instanceof Error ? error.message : String(error));
    if (controller.signal.aborted) {
      // 128 + SIGINT, what shells expect of an interrupted command.
      return { exitCode: 130, code: 'INTERRUPTED', message };
    }
    const code = isKeywardError(error) ? error.code : 'INTERNAL_ERROR';
    return {
      exitCode: code === 'INTERNAL_ERROR' ? exitCodes.unexpected : exitCodes.runtimeFailure,
      code,
      message,
    };
  } finally {
    process.off('SIGINT', onInterrupt);
    process.off('SIGTERM', onInterrupt);
  }
}

/** What `registerDemoCommand` needs of the CLI's context (its output streams and environment). */
export interface DemoCommandContext {
  io: {
    stdout: NodeJS.WritableStream & { isTTY?: boolean };
    stderr: NodeJS.WritableStream & { isTTY?: boolean };
    environment: NodeJS.ProcessEnv;
  };
}

/** Adds `keyward demo` to a commander program; failures surface as the CLI's `CliError`. */
export function registerDemoCommand(program: Command, context?: DemoCommandContext): Command {
  return program
    .command('demo')
    .description(
      'deploy a demo agent with the tokenizer in proxy-only mode and show that it can use a credential it can neither read nor go around',
    )
    .option('-y, --non-interactive', 'plain output without colors (CI, scripts)')
    .option('-v, --verbose', 'show image build output too')
    .option(
      '--with <sidecars>',
      'add sidecars next to the tokenizer: litellm (an LLM gateway whose model key the tokenizer seals and injects), otel (an OpenTelemetry Collector that gets one trace of the call)',
    )
    .action(async (options: DemoCommandOptions, command: Command) => {
      const stdout = context?.io.stdout ?? process.stdout;
      const stderr = context?.io.stderr ?? process.stderr;
      const environment = context?.io.environment ?? process.env;
      const json = command.optsWithGlobals<{ json?: boolean }>().json === true;
      const output: DemoOutput = {
        write: (text) => stdout.write(text),
        error: (text) => stderr.write(text),
        color: !options.nonInteractive && Boolean(stdout.isTTY) && !environment['NO_COLOR'],
      };
      const outcome = await runDemoCommand({ ...options, json }, output, environment);
      if (outcome.exitCode !== exitCodes.ok) {
        throw new CliError(
          outcome.exitCode as ExitCode,
          outcome.code ?? 'INTERNAL_ERROR',
          outcome.message ?? 'keyward demo failed',
        );
      }
    });
}
