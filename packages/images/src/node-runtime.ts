import { execFile } from 'node:child_process';
import { realpath } from 'node:fs/promises';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Paths `ldd` lists for a binary: the libraries it links (`libc.so.6 => /lib/...`)
 * and the dynamic loader (`/lib64/ld-linux-x86-64.so.2`). The vDSO has no file.
 */
export function parseLddOutput(output: string): string[] {
  const paths = new Set<string>();
  for (const line of output.split('\n')) {
    const arrow = /=>\s+(\/\S+)/.exec(line);
    const bare = /^\s*(\/\S+)\s/.exec(line);
    const path = arrow?.[1] ?? bare?.[1];
    if (path) paths.add(path);
  }
  return [...paths].sort();
}

export interface NodeRuntimeFiles {
  nodeBinary: string;
  nodeVersion: string;
  libraries: string[];
}

/** The host's node and the shared libraries it needs: everything a `FROM scratch` image must hold. */
export async function collectNodeRuntime(nodeBinary = process.execPath): Promise<NodeRuntimeFiles> {
  const binary = await realpath(nodeBinary);
  const { stdout } = await run('ldd', [binary]);
  const { stdout: version } = await run(binary, ['--version']);
  return { nodeBinary: binary, nodeVersion: version.trim(), libraries: parseLddOutput(stdout) };
}
