// A host-side view of DNS: tcpdump on every interface of the host (bridges, veths, the uplink)
// captures port 53 while a test makes lookups, and tells whether a query for a name went by.
// It sees what leaves a container's namespace, not the container's own loopback.
import { type ChildProcessByStdio, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import type Docker from 'dockerode';
import { execInContainer } from '../../src/container-exec.js';

export interface DnsCapture {
  /**
   * Waits (bounded) until a query for `name` was captured. Packets arrive in order, so once a
   * later lookup shows up, an earlier query would have too.
   */
  waitFor(name: string, timeoutMs?: number): Promise<boolean>;
  /** Stops tcpdump (SIGINT, so it flushes) and returns the captured packets (pcap). */
  stop(): Promise<Buffer>;
}

const tcpdumpMissing =
  'tcpdump is needed for the host-side DNS capture: `apt-get install -y tcpdump` (scripts/setup.sh --tests installs it).';

/** Starts tcpdump on every interface, port 53 (UDP and TCP); resolves once it is listening. */
export async function startDnsCapture(): Promise<DnsCapture> {
  const child: ChildProcessByStdio<null, Readable, Readable> = spawn(
    'tcpdump',
    // Immediate mode and -U: each packet is read and written as it arrives; without them the
    // last ones wait in the capture ring and a stop right after a lookup loses them.
    ['-i', 'any', '-nn', '--immediate-mode', '-U', '-w', '-', 'port 53'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const chunks: Buffer[] = [];
  child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
  let stderr = '';
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`tcpdump did not start listening within 30 s: ${stderr.trim()}`));
    }, 30_000);
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (/listening on any/.test(stderr)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new Error(error.code === 'ENOENT' ? tcpdumpMissing : `tcpdump failed: ${error.message}`));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      reject(new Error(`tcpdump exited (${code}) before it listened: ${stderr.trim()}`));
    });
  });
  return {
    async waitFor(name, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      while (!capturedQueryFor(Buffer.concat(chunks), name)) {
        if (Date.now() > deadline) return false;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      return true;
    },
    async stop() {
      child.kill('SIGINT');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
      return Buffer.concat(chunks);
    },
  };
}

/** Whether a DNS query for `name` is in the capture: its first label, length-prefixed as on the wire. */
export function capturedQueryFor(pcap: Buffer, name: string): boolean {
  const label = name.split('.')[0] ?? '';
  return pcap.includes(Buffer.concat([Buffer.from([label.length]), Buffer.from(label)]));
}

/** A name no resolver has seen: `<prefix>-<random hex>.example.com`. */
export function uniqueExternalName(prefix: string): string {
  return `${prefix}-${randomBytes(6).toString('hex')}.example.com`;
}

/** The unique name a `dns-blocked` check looked up, from its evidence. */
export function lookedUpName(evidence: string): string {
  const match = /dns (\S+\.example\.com) via /.exec(evidence);
  if (!match?.[1]) throw new Error(`no looked-up name in the evidence: ${evidence}`);
  return match[1];
}

/** A lookup from inside a container (through its own resolv.conf), so the capture has one to see. */
export async function lookUpFromContainer(docker: Docker, container: string, name: string): Promise<string> {
  const result = await execInContainer(docker, container, ['node', '-'], {
    stdin: `require('node:dns').resolve4(${JSON.stringify(name)}, (error) => console.log(error ? error.code : 'answered'));`,
    timeoutMs: 30_000,
  });
  return result.stdout.trim();
}
