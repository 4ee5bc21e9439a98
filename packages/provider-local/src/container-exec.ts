import { PassThrough } from 'node:stream';
import type Docker from 'dockerode';

export interface ExecResult {
  exitCode: number | null;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  /** Written to the process's stdin, then closed. Scripts travel here, never in argv. */
  stdin?: string;
  env?: string[];
  timeoutMs?: number;
}

/** Runs a command in a running container and collects its output and exit code. */
export async function execInContainer(
  docker: Docker,
  containerName: string,
  command: string[],
  options: ExecOptions = {},
): Promise<ExecResult> {
  const exec = await docker.getContainer(containerName).exec({
    Cmd: command,
    AttachStdout: true,
    AttachStderr: true,
    AttachStdin: options.stdin !== undefined,
    ...(options.env ? { Env: options.env } : {}),
  });
  const stream = (await exec.start({
    hijack: true,
    stdin: options.stdin !== undefined,
  })) as NodeJS.ReadWriteStream;
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  const error: Buffer[] = [];
  stdout.on('data', (chunk: Buffer) => out.push(chunk));
  stderr.on('data', (chunk: Buffer) => error.push(chunk));
  docker.modem.demuxStream(stream, stdout, stderr);
  if (options.stdin !== undefined) {
    stream.write(options.stdin);
    // Half-close so the process sees end of input but we still read its output.
    (stream as unknown as { end?: () => void }).end?.();
  }
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      (stream as unknown as { destroy?: () => void }).destroy?.();
      reject(new Error(`exec of ${command[0]} in ${containerName} timed out`));
    }, options.timeoutMs ?? 30_000);
    const finish = () => {
      clearTimeout(timer);
      resolve();
    };
    stream.on('end', finish);
    stream.on('close', finish);
    stream.on('error', (problem) => {
      clearTimeout(timer);
      reject(problem);
    });
  });
  let exitCode: number | null = null;
  for (let attempt = 0; attempt < 20; attempt += 1) {
    const info = await exec.inspect();
    if (!info.Running) {
      exitCode = info.ExitCode ?? null;
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    exitCode,
    stdout: Buffer.concat(out).toString('utf8'),
    stderr: Buffer.concat(error).toString('utf8'),
  };
}
