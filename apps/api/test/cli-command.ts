// One command of the bundled `keyward` CLI (./bundle.ts) as a child process of a test, run to its end.
import { spawn } from 'node:child_process';

export interface CommandRun {
  /** The exit code; -1 when a signal ended the command. */
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs one `keyward` command to its end, `stdin` (or nothing) on its standard input. */
export function runCommand(
  cli: string,
  args: string[],
  options: { environment: NodeJS.ProcessEnv; stdin?: string | undefined },
): Promise<CommandRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], {
      env: options.environment,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    child.stdin.end(options.stdin ?? '');
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}
