// Integration-test support: looks for secret values where they must never be: a
// container's inspect output and env, its whole filesystem (export) and mounted volumes,
// and every process's argv on the host. For tests only.
import { readdir, readFile } from 'node:fs/promises';
import type Docker from 'dockerode';
import tar from 'tar-stream';

export interface Finding {
  where: string;
  secret: string;
}

function scanText(text: string, secrets: Record<string, string>, where: string, findings: Finding[]) {
  for (const [label, value] of Object.entries(secrets)) {
    if (text.includes(value)) findings.push({ where, secret: label });
  }
}

async function scanTar(stream: NodeJS.ReadableStream, secrets: Record<string, string>, prefix: string) {
  const findings: Finding[] = [];
  const needles = Object.entries(secrets).map(([label, value]) => [label, Buffer.from(value)] as const);
  const extract = tar.extract();
  let files = 0;
  extract.on('entry', (header, entry, next) => {
    files += 1;
    let tail = Buffer.alloc(0);
    entry.on('data', (chunk: unknown) => {
      const window = Buffer.concat([tail, chunk as Buffer]);
      for (const [label, needle] of needles) {
        if (window.includes(needle)) findings.push({ where: `${prefix}${header.name}`, secret: label });
      }
      tail = window.subarray(Math.max(0, window.length - 512));
    });
    entry.on('end', next);
  });
  await new Promise<void>((resolve, reject) => {
    extract.on('finish', resolve);
    extract.on('error', reject);
    stream.pipe(extract);
  });
  return { findings, files };
}

export async function scanContainer(
  docker: Docker,
  containerName: string,
  secrets: Record<string, string>,
): Promise<{ findings: Finding[]; filesScanned: number }> {
  const container = docker.getContainer(containerName);
  const findings: Finding[] = [];
  const info = await container.inspect();
  scanText(JSON.stringify(info), secrets, `inspect ${containerName}`, findings);
  scanText((info.Config.Env ?? []).join('\n'), secrets, `env ${containerName}`, findings);
  const exported = await scanTar(
    (await container.export()) as unknown as NodeJS.ReadableStream,
    secrets,
    `${containerName}:/`,
  );
  findings.push(...exported.findings);
  let filesScanned = exported.files;
  // `export` leaves out volumes: read every mount too.
  for (const mount of info.Mounts ?? []) {
    const archive = await container.getArchive({ path: mount.Destination });
    const result = await scanTar(archive, secrets, `${containerName}:${mount.Destination}/`);
    findings.push(...result.findings);
    filesScanned += result.files;
  }
  return { findings, filesScanned };
}

export async function scanHostCommandLines(secrets: Record<string, string>): Promise<Finding[]> {
  const findings: Finding[] = [];
  let scanned = 0;
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const commandLine = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    scanned += 1;
    scanText(commandLine, secrets, `/proc/${entry}/cmdline`, findings);
  }
  if (scanned < 5) throw new Error('/proc has almost no processes; the argv scan would prove nothing');
  return findings;
}
