// The bundled `keyward` CLI (./bundle.ts) as child processes of a test: `keyward serve` on a
// free port, and single commands run to their end.
import { type ChildProcess, spawn } from 'node:child_process';

export interface ServeProcess {
  /** The API's base URL, as the server printed it. */
  url: string;
  process: ChildProcess;
  /** Everything the server wrote to stderr so far (it keeps growing). */
  log(): string;
}

/** Starts `keyward serve --port 0` and waits (at most `timeoutMs`) for the URL it prints. */
export async function startServe(
  cli: string,
  environment: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<ServeProcess> {
  const child = spawn(process.execPath, [cli, 'serve', '--port', '0'], {
    env: environment,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      // Nobody gets a handle on a server that did not start: stop it here.
      child.kill('SIGTERM');
      reject(new Error(`server did not start:\n${log}`));
    }, timeoutMs);
    child.stderr!.on('data', (chunk) => {
      log += chunk;
      const match = /keyward API on (http:\/\/127\.0\.0\.1:\d+)/.exec(log);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    child.on('exit', (code) => reject(new Error(`server exited with ${code}:\n${log}`)));
  });
  return { url, process: child, log: () => log };
}

/** Sends `signal` to a server that still runs and waits until it has exited. */
export async function stopServe(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill(signal);
  await exited;
}

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
