// The `keyward demo` subcommand: prints runDemo's progress and result, and turns
// Ctrl-C into a rollback instead of a half-made instance.
import { isKeywardError, redact } from '@keyward/core';
import type { Command } from 'commander';
import { type DemoProgressEvent, type DemoResult, runDemo } from './run-demo.js';

export interface DemoCommandOptions {
  nonInteractive?: boolean;
  json?: boolean;
  verbose?: boolean;
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
    `  keyward API     run \`keyward serve\` and it listens on ${result.apiAddress} (bearer token in ~/.keyward/api-token); no web UI yet`,
    `  look inside     keyward ls · keyward logs ${result.instance} · keyward verify ${result.instance}`,
    `  clean up        ${result.dockerHostHint ? `${result.dockerHostHint} ` : ''}${result.cleanupCommand}   (removes the agent, the tokenizer, the demo API, networks and volumes)`,
    '',
  );
  return lines.join('\n');
}

/** Runs the demo as the CLI does and returns the process exit code. */
export async function runDemoCommand(
  options: DemoCommandOptions = {},
  output: DemoOutput = defaultOutput(),
): Promise<number> {
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
      signal: controller.signal,
      nonInteractive: options.nonInteractive ?? !process.stdin.isTTY,
      onProgress: (event) => {
        if (options.json) return;
        const line = formatProgress(event, output, verbose);
        if (line) output.write(line);
      },
    });
    output.write(
      options.json ? `${JSON.stringify(redact(result), null, 2)}\n` : formatResult(result, output),
    );
    return result.passed ? 0 : 1;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const code = isKeywardError(error) ? error.code : 'INTERNAL_ERROR';
    if (options.json) output.write(`${JSON.stringify(redact({ error: { code, message } }))}\n`);
    else if (controller.signal.aborted) output.error(`\n${redact(message)}\n`);
    else output.error(`\n${paint(output, '31', 'keyward demo failed')} (${code}): ${redact(message)}\n`);
    return controller.signal.aborted ? 130 : code === 'RUNTIME_UNAVAILABLE' ? 69 : 1;
  } finally {
    process.off('SIGINT', onInterrupt);
    process.off('SIGTERM', onInterrupt);
  }
}

/** Adds `keyward demo` to a commander program. */
export function registerDemoCommand(program: Command): Command {
  return program
    .command('demo')
    .description(
      'Deploy a demo agent with the tokenizer in proxy-only mode and show it can use a credential it cannot read or go around',
    )
    .option('-y, --non-interactive', 'no prompts or colors (CI); the default when stdin is not a terminal')
    .option('--json', 'print the result as JSON')
    .option('-v, --verbose', 'show every deploy step')
    .action(async (options: DemoCommandOptions) => {
      const output = defaultOutput();
      if (options.nonInteractive) output.color = false;
      process.exitCode = await runDemoCommand(options, output);
    });
}
