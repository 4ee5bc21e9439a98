// Looks for a raw credential in a container, from the outside: its configured env
// (inspect), the live env and argv of its main process, its whole filesystem
// (export) and every volume or tmpfs mounted into it (export leaves those out).
// The search runs on the host: the credential never enters the container to look
// for itself, and never enters a process's argv.
import type { Readable } from 'node:stream';
import { execInContainer } from '@keyward/provider-local';
import type Docker from 'dockerode';
import tar from 'tar-stream';

export interface ExposureFinding {
  /** `env:NAME`, `process:environ`, `file:/path` … never the value itself. */
  place: string;
  /** Which form of the credential matched (`raw`, `base64` …). */
  form: string;
}

export interface ExposureReport {
  container: string;
  findings: ExposureFinding[];
  /** What was searched, for the evidence line. */
  searched: { envVariables: number; files: number; bytes: number; mounts: string[]; processFiles: string[] };
  /** Places that could not be read: a check that did not run must not pass silently. */
  unreadable: string[];
}

export interface Needle {
  form: string;
  bytes: Buffer;
}

/** The credential as the agent could hold it: as is, base64, base64url, hex. */
export function credentialNeedles(credential: string): Needle[] {
  const raw = Buffer.from(credential, 'utf8');
  const forms: Needle[] = [
    { form: 'raw', bytes: raw },
    { form: 'base64', bytes: Buffer.from(raw.toString('base64'), 'utf8') },
    { form: 'base64url', bytes: Buffer.from(raw.toString('base64url'), 'utf8') },
    { form: 'hex', bytes: Buffer.from(raw.toString('hex'), 'utf8') },
  ];
  const seen = new Set<string>();
  return forms.filter((needle) => {
    const key = needle.bytes.toString('latin1');
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** Streaming search that also finds a needle split across two chunks. */
export class NeedleScanner {
  readonly #needles: Needle[];
  readonly #overlap: number;
  #tail = Buffer.alloc(0);
  readonly found = new Set<string>();

  constructor(needles: Needle[]) {
    this.#needles = needles;
    this.#overlap = Math.max(0, ...needles.map((needle) => needle.bytes.length - 1));
  }

  push(chunk: Buffer): void {
    const window = this.#tail.length > 0 ? Buffer.concat([this.#tail, chunk]) : chunk;
    for (const needle of this.#needles) {
      if (!this.found.has(needle.form) && window.includes(needle.bytes)) this.found.add(needle.form);
    }
    this.#tail = Buffer.from(window.subarray(Math.max(0, window.length - this.#overlap)));
  }
}

interface ArchiveScan {
  files: number;
  bytes: number;
  findings: ExposureFinding[];
}

async function scanArchive(
  stream: Readable | NodeJS.ReadableStream,
  prefix: string,
  needles: Needle[],
): Promise<ArchiveScan> {
  const extract = tar.extract();
  const result: ArchiveScan = { files: 0, bytes: 0, findings: [] };
  extract.on('entry', (header, entry, next) => {
    const scanner = new NeedleScanner(needles);
    // A symlink's target could spell the credential too.
    if (header.linkname) scanner.push(Buffer.from(header.linkname, 'utf8'));
    scanner.push(Buffer.from(header.name, 'utf8'));
    entry.on('data', (data: unknown) => {
      const chunk = data as Buffer;
      result.bytes += chunk.length;
      scanner.push(chunk);
    });
    entry.on('end', () => {
      if (header.type === 'file') result.files += 1;
      const path = `${prefix}/${header.name}`.replace(/\/+/g, '/').replace(/\/\.\//g, '/');
      for (const form of scanner.found) result.findings.push({ place: `file:${path}`, form });
      next();
    });
    entry.resume();
  });
  await new Promise<void>((resolve, reject) => {
    extract.on('finish', resolve);
    extract.on('error', reject);
    stream.on('error', reject);
    stream.pipe(extract);
  });
  return result;
}

function matches(text: string, needles: Needle[]): string[] {
  const bytes = Buffer.from(text, 'utf8');
  return needles.filter((needle) => bytes.includes(needle.bytes)).map((needle) => needle.form);
}

// /proc files report size 0, so the archive API returns them empty: read them with
// the container's own node (or python, in a gateway's image), whose script names only
// the file, never the credential.
const processFileReaders = [
  ['node', '-e', 'process.stdout.write(require("node:fs").readFileSync(process.argv[1]))'],
  ['python3', '-c', 'import sys; sys.stdout.buffer.write(open(sys.argv[1], "rb").read())'],
];

async function readProcessFile(docker: Docker, container: string, path: string): Promise<string | undefined> {
  for (const reader of processFileReaders) {
    const content = await execInContainer(docker, container, [...reader, path], { timeoutMs: 15_000 }).then(
      (result) => (result.exitCode === 0 ? result.stdout : undefined),
      () => undefined,
    );
    if (content !== undefined) return content;
  }
  return undefined;
}

/**
 * Every place in `container` where `credential` (in any of its usual encodings)
 * appears. An empty `findings` is the proof the demo shows.
 */
export async function findCredentialInContainer(
  docker: Docker,
  container: string,
  credential: string | readonly string[],
): Promise<ExposureReport> {
  // Several secrets in one pass (a gateway's image is large): any of them is a finding.
  const needles = (typeof credential === 'string' ? [credential] : credential).flatMap(credentialNeedles);
  const handle = docker.getContainer(container);
  const info = await handle.inspect();
  const findings: ExposureFinding[] = [];
  const unreadable: string[] = [];
  const processFiles: string[] = [];

  const configuredEnv = info.Config.Env ?? [];
  for (const entry of configuredEnv) {
    const name = entry.split('=', 1)[0] ?? '';
    for (const form of matches(entry, needles)) findings.push({ place: `env:${name}`, form });
  }
  for (const form of matches(
    JSON.stringify([info.Config.Cmd, info.Config.Entrypoint, info.Args, info.Path]),
    needles,
  )) {
    findings.push({ place: 'inspect:command', form });
  }
  for (const form of matches(JSON.stringify(info.Config.Labels ?? {}), needles)) {
    findings.push({ place: 'inspect:labels', form });
  }

  // What the running process holds, which can differ from the configured env.
  for (const file of ['/proc/1/environ', '/proc/1/cmdline']) {
    const content = await readProcessFile(docker, container, file);
    if (content === undefined || content.length === 0) unreadable.push(file);
    else processFiles.push(file);
    if (content)
      for (const form of matches(content, needles)) findings.push({ place: `process:${file}`, form });
  }

  const filesystem = await scanArchive(await handle.export(), '', needles);
  findings.push(...filesystem.findings);
  let files = filesystem.files;
  let bytes = filesystem.bytes;

  // `export` leaves out volumes and tmpfs: read them through the archive API.
  const mounts = [
    ...(info.Mounts ?? []).map((mount) => mount.Destination),
    ...Object.keys(info.HostConfig.Tmpfs ?? {}),
  ].filter(
    (path, index, all) =>
      path && all.indexOf(path) === index && !path.startsWith('/proc') && !path.startsWith('/sys'),
  );
  for (const mount of mounts) {
    try {
      const scan = await scanArchive(
        await handle.getArchive({ path: mount }),
        mount.replace(/\/[^/]*$/, ''),
        needles,
      );
      findings.push(...scan.findings);
      files += scan.files;
      bytes += scan.bytes;
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode !== 404) throw error;
    }
  }
  return {
    container,
    findings,
    searched: { envVariables: configuredEnv.length, files, bytes, mounts, processFiles },
    unreadable,
  };
}
