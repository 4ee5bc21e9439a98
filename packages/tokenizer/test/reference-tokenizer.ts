import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// Fly.io's tokenizer itself (Go), built once per machine by scripts/reference-tokenizer/build.sh
// into a cache outside the checkout, with a macaroon-minting helper built from the same source.

const repositoryRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const referenceBuildScript = join(repositoryRoot, 'scripts', 'reference-tokenizer', 'build.sh');

export interface ReferenceTokenizer {
  directory: string;
  /** `tokenizer seal -json-file` (the JSON goes through a 0600 file, never argv). */
  seal(json: string, sealKey: string): string;
  /** `tokenizer unseal -token` (the token is sealed, so argv is fine): the plaintext JSON. */
  unseal(token: string, openKey: string): string;
  /** A `FlyV1 fm2_…` Proxy-Authorization value minted by superfly/macaroon. */
  mintMacaroon(keyHex: string, caveats?: ReferenceMacaroonCaveats): string;
  serve(environment: Record<string, string>): Promise<RunningReferenceTokenizer>;
}

export interface ReferenceMacaroonCaveats {
  method?: string[];
  path?: string[];
  prefix?: string[];
  pattern?: string[];
  host?: string[];
  notBefore?: number;
  notAfter?: number;
}

export interface RunningReferenceTokenizer {
  url: string;
  port: number;
  process: ChildProcess;
  /** Everything it logged (logrus text on stderr). */
  log(): string;
  close(): Promise<void>;
}

/** Builds (or finds in the cache) the reference; the cold build takes a minute or two. */
export function buildReferenceTokenizer(): ReferenceTokenizer {
  const output = execFileSync('bash', [referenceBuildScript], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: 600_000,
  });
  const directory = output.trim().split('\n').at(-1) as string;
  const binary = join(directory, 'tokenizer');
  const scratch = mkdtempSync(join(tmpdir(), 'keyward-reference-'));
  const run = (args: string[], env: Record<string, string>, input?: string) =>
    execFileSync(binary, args, {
      env: { PATH: process.env.PATH ?? '', ...env },
      encoding: 'utf8',
      input: input ?? '',
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  return {
    directory,
    seal(json, sealKey) {
      const file = join(scratch, 'secret.json');
      writeFileSync(file, json, { mode: 0o600 });
      try {
        return run(['seal', '-json-file', file], { SEAL_KEY: sealKey }).trim();
      } finally {
        rmSync(file, { force: true });
      }
    },
    unseal(token, openKey) {
      return run(['unseal', '-token', token], { OPEN_KEY: openKey }).replace(/\n$/, '');
    },
    mintMacaroon(keyHex, caveats = {}) {
      return execFileSync(join(directory, 'mint-macaroon'), {
        input: JSON.stringify({ key: keyHex, caveats }),
        encoding: 'utf8',
      }).trim();
    },
    async serve(environment) {
      const port = await freePort();
      const child = spawn(binary, ['serve'], {
        env: { PATH: process.env.PATH ?? '', ...environment, LISTEN_ADDRESS: `127.0.0.1:${port}` },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let log = '';
      child.stderr?.setEncoding('utf8');
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`reference tokenizer did not start:\n${log}`)),
          15_000,
        );
        child.stderr?.on('data', (chunk: string) => {
          log += chunk;
          if (log.includes('msg=listening')) {
            clearTimeout(timer);
            resolve();
          }
        });
        child.once('exit', (code) => {
          clearTimeout(timer);
          reject(new Error(`reference tokenizer exited with ${code}:\n${log}`));
        });
      });
      return {
        url: `http://127.0.0.1:${port}`,
        port,
        process: child,
        log: () => log,
        close: async () => {
          if (child.exitCode !== null) return;
          const exited = new Promise((resolve) => child.once('exit', resolve));
          child.kill('SIGKILL');
          await exited;
        },
      };
    },
  };
}

export async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}
