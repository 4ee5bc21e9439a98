import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundle } from './bundle.js';
import { type CommandRun, runCommand } from './cli-command.js';

// The real `keyward` CLI (bundled from source) against a real server process
// over HTTP. The server's only target is the in-memory one, loaded as a plugin
// from the data directory: the stand-in for a container runtime.
const githubSecret = 'ghp_CliTestSecret_abcdefghijklmnop0123';
const stripeSecret = 'sk_test_CliStdinSecret_zyxwvutsrq98765';

let directory: string;
let dataDirectory: string;
let cli: string;
let server: ChildProcess;
let serverUrl: string;
let serverLog = '';
const transcripts: string[] = [];

async function run(
  args: string[],
  options: { stdin?: string; environment?: Record<string, string>; api?: boolean } = {},
): Promise<CommandRun> {
  const result = await runCommand(cli, [...(options.api === false ? [] : ['--api', serverUrl]), ...args], {
    environment: { ...process.env, ...isolated, KEYWARD_DATA_DIR: dataDirectory, ...options.environment },
    stdin: options.stdin,
  });
  transcripts.push(`$ keyward ${args.join(' ')}\n${result.stdout}${result.stderr}`);
  return result;
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

// Only the built-in tokenizer: without provider-local, neither the server nor an in-process
// run sees this machine's real instances (issue 16 item 9).
const isolated = { KEYWARD_BUILTINS: '@keyward/provider-tokenizer' };

const specYaml = (name: string) => `
name: ${name}
target: memory
agent:
  image: localhost/agent:test
  port: 18789
  skillsDirectory: /skills
sidecars:
  mock: {}
  tokenizer:
    credentials:
      - name: github
        secret: ${githubSecret}
        allowedHosts: [api.github.com]
`;

beforeAll(async () => {
  directory = mkdtempSync(join(tmpdir(), 'keyward-cli-'));
  dataDirectory = join(directory, 'data');
  await mkdir(dataDirectory);
  cli = join(directory, 'keyward.mjs');
  await bundle(new URL('../src/cli.ts', import.meta.url).pathname, cli);
  await bundle(
    new URL('./fixtures/memory-plugin.ts', import.meta.url).pathname,
    join(dataDirectory, 'memory-plugin.mjs'),
  );
  writeFileSync(join(dataDirectory, 'plugins.json'), JSON.stringify({ plugins: ['./memory-plugin.mjs'] }));
  writeFileSync(join(directory, 'demo.yaml'), specYaml('cli-demo'));
  writeFileSync(join(directory, 'fail.yaml'), specYaml('fail-demo'));
  writeFileSync(join(directory, 'bad.yaml'), 'name: Bad_Name\nagent: {}\n');

  server = spawn(process.execPath, [cli, 'serve', '--port', '0'], {
    env: { ...process.env, ...isolated, KEYWARD_DATA_DIR: dataDirectory },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  serverUrl = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${serverLog}`)), 30_000);
    server.stderr!.on('data', (chunk) => {
      serverLog += chunk;
      const match = /keyward API on (http:\/\/127\.0\.0\.1:\d+)/.exec(serverLog);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    server.on('exit', (code) => reject(new Error(`server exited with ${code}:\n${serverLog}`)));
  });
}, 60_000);

afterAll(async () => {
  if (server && server.exitCode === null) {
    const exited = new Promise((resolve) => server.once('exit', resolve));
    server.kill('SIGTERM');
    await exited;
  }
  rmSync(directory, { recursive: true, force: true });
});

describe('keyward CLI against a running server', { timeout: 60_000 }, () => {
  it('prints the generated token once, stores it with mode 0600, and loads the plugin', async () => {
    const token = readFileSync(join(dataDirectory, 'api-token'), 'utf8').trim();
    expect(serverLog).toContain(`generated an API token`);
    expect(serverLog.split(token).length - 1).toBe(1);
    expect(statSync(join(dataDirectory, 'api-token')).mode & 0o777).toBe(0o600);
    const providers = await run(['--json', 'providers']);
    expect(providers.code).toBe(0);
    const listed = JSON.parse(providers.stdout) as {
      sidecars: { id: string; roles: string[] }[];
      targets: { id: string }[];
    };
    expect(listed.sidecars.map((sidecar) => [sidecar.id, sidecar.roles])).toEqual([
      ['tokenizer', ['credentials']],
      ['mock', []],
    ]);
    expect(listed.targets.map((target) => target.id)).toEqual(['memory']);
    expect((await run(['providers'])).stdout).toMatch(
      /^SIDECARS\n {2}tokenizer .*role credentials, alias \/tokenizer/m,
    );
  });

  it('deploys from YAML with step-by-step progress, then lists and gets the instance', async () => {
    const deployed = await run(['deploy', '-f', join(directory, 'demo.yaml')]);
    expect(deployed.stderr).toMatch(/\[started\] policy\.create: /);
    expect(deployed.stderr).toMatch(/\[succeeded\] container\.start:tokenizer: /);
    expect(deployed.stdout).toContain('Deployed "cli-demo" on memory');
    expect(deployed.code).toBe(0);

    const listed = await run(['ls']);
    expect(listed.stdout).toMatch(/^NAME\s+TARGET\s+STATE/m);
    expect(listed.stdout).toMatch(/^cli-demo\s+memory\s+running\s+proxy-only\s+3\/3/m);
    const json = JSON.parse((await run(['ls', '--json'])).stdout);
    expect(json.instances.map((instance: { name: string }) => instance.name)).toEqual(['cli-demo']);

    const detail = JSON.parse((await run(['get', 'cli-demo'])).stdout);
    expect(detail.sidecars.map((sidecar: { providerId: string }) => sidecar.providerId)).toEqual([
      'mock',
      'tokenizer',
    ]);
  });

  it('manages credentials, reading the secret from stdin', async () => {
    expect((await run(['creds', 'ls', 'cli-demo'])).stdout).toContain('github  api.github.com');
    // The credentials sidecar is found by its role; another one named with --sidecar must hold a list.
    expect((await run(['creds', '--sidecar', 'tokenizer', 'ls', 'cli-demo'])).stdout).toContain('github');
    const notAList = await run(['creds', '--sidecar', 'mock', 'ls', 'cli-demo']);
    expect(notAList.code).toBe(2);
    expect(notAList.stderr).toContain('Sidecar "mock" of instance "cli-demo" holds no credential list');
    const set = await run(['creds', 'set', 'cli-demo', 'stripe', '--host', 'api.stripe.com'], {
      stdin: `${stripeSecret}\n`,
    });
    expect(set.stderr).toContain('[succeeded] rotate.restart:tokenizer');
    expect(set.code).toBe(0);
    const both = JSON.parse((await run(['creds', 'ls', 'cli-demo', '--json'])).stdout);
    expect(both.credentials.map((credential: { name: string }) => credential.name)).toEqual([
      'github',
      'stripe',
    ]);
    expect((await run(['creds', 'rm', 'cli-demo', 'github'])).code).toBe(0);
    const left = JSON.parse((await run(['creds', 'ls', 'cli-demo', '--json'])).stdout);
    expect(left.credentials).toEqual([{ name: 'stripe', allowedHosts: ['api.stripe.com'] }]);
    expect((await run(['creds', 'rm', 'cli-demo', 'github'])).code).toBe(3);
    expect(
      (await run(['creds', 'set', 'cli-demo', 'empty', '--host', 'a.example.com'], { stdin: '' })).code,
    ).toBe(2);
  });

  it('streams logs, runs lifecycle commands, verifies and renders', async () => {
    const logs = await run(['logs', 'cli-demo', '--container', 'agent']);
    expect(logs.stdout).toContain('[agent] cli-demo-agent started');
    expect((await run(['logs', '-f', 'cli-demo'])).code).toBe(0);
    expect((await run(['stop', 'cli-demo'])).stdout).toBe('cli-demo: stopped\n');
    expect((await run(['start', 'cli-demo'])).stdout).toBe('cli-demo: running\n');
    expect((await run(['restart', 'cli-demo', '--json'])).stdout).toContain('"status": "running"');
    const verified = await run(['verify', 'cli-demo']);
    // The stand-in runs no process: the mock's check passes, the tokenizer's probes fail (exit 4).
    expect(verified.stdout).toContain('✔ mock-reachable (mock): exit 0');
    expect(verified.stdout).toMatch(/✖ [a-z-]+ \(tokenizer\)/);
    expect(verified.code).toBe(4);
    const options = await run(['verify', 'cli-demo', '--option', 'tokenizer.credential=stripe', '--json']);
    expect(options.stderr).not.toContain('INVALID_INPUT');
    expect(JSON.parse(options.stdout).checks.length).toBeGreaterThan(1);
    expect((await run(['verify', 'cli-demo', '--option', 'nonsense'])).code).toBe(2);
    const rendered = await run(['render', '-f', join(directory, 'demo.yaml')]);
    expect(JSON.stringify(JSON.parse(rendered.stdout).pods)).toContain('tokenizer');
  });

  it('exits 2 on bad input, 3 on not found, 4 on a runtime failure naming the step', async () => {
    const bad = await run(['deploy', '-f', join(directory, 'bad.yaml')]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/error INVALID_INSTANCE_SPEC: .*name/);
    expect((await run(['deploy', '-f', join(directory, 'missing.yaml')])).code).toBe(2);
    expect((await run(['frobnicate'])).code).toBe(2);
    const missing = await run(['get', 'ghost', '--json']);
    expect(missing.code).toBe(3);
    expect(JSON.parse(missing.stderr).error.code).toBe('INSTANCE_NOT_FOUND');
    const failed = await run(['deploy', '-f', join(directory, 'fail.yaml')]);
    expect(failed.code).toBe(4);
    expect(failed.stderr).toContain('Deploy of "fail-demo" failed at step container.start:agent');
    expect(failed.stderr).toContain('image localhost/agent:missing not found');
    const unreachable = await run(['ls'], { api: false, environment: { KEYWARD_API: 'http://127.0.0.1:9' } });
    expect(unreachable.code).toBe(4);
  });

  it('deletes the instance', async () => {
    expect((await run(['rm', 'cli-demo'])).stdout).toBe('cli-demo: deleted\n');
    expect((await run(['get', 'cli-demo'])).code).toBe(3);
  });

  it('rotates the API token; the running server follows the file', async () => {
    const old = readFileSync(join(dataDirectory, 'api-token'), 'utf8').trim();
    const rotated = await run(['token', 'rotate', '--json']);
    const fresh = JSON.parse(rotated.stdout).token as string;
    expect(fresh).not.toBe(old);
    const refused = await fetch(`${serverUrl}/api/instances`, {
      headers: { authorization: `Bearer ${old}` },
    });
    expect(refused.status).toBe(401);
    expect((await run(['ls'])).code).toBe(0);
  });

  it('runs in-process when no server answers, through the same routes', async () => {
    const port = String(await freePort());
    const deployed = await run(['deploy', '-f', join(directory, 'demo.yaml'), '--json'], {
      api: false,
      environment: { KEYWARD_PORT: port },
    });
    expect(deployed.code).toBe(0);
    expect(JSON.parse(deployed.stdout)).toMatchObject({
      status: 'succeeded',
      instance: { name: 'cli-demo' },
    });
    const missing = await run(['get', 'cli-demo'], { api: false, environment: { KEYWARD_PORT: port } });
    // A new process has a new in-memory target: the stand-in keeps no state across runs.
    expect(missing.code).toBe(3);
  });

  it('keeps the in-process server log lines out of the terminal: in <data dir>/keyward-cli.log, on stderr with --verbose', async () => {
    const port = String(await freePort());
    const environment = { KEYWARD_PORT: port };
    const failed = await run(['deploy', '-f', join(directory, 'fail.yaml')], { api: false, environment });
    expect(failed.code).toBe(4);
    // Only the CLI's own lines: progress, then its error. No JSON log line before it.
    expect(failed.stderr).toMatch(
      /^error DEPLOY_FAILED: Deploy of "fail-demo" failed at step container\.start:agent/m,
    );
    expect(failed.stderr).not.toContain('"level"');
    expect(failed.stderr).not.toMatch(/^\{/m);
    const logPath = join(dataDirectory, 'keyward-cli.log');
    const logged = readFileSync(logPath, 'utf8');
    expect(logged).toMatch(/"level":"error","message":"deploy failed"/);
    expect(statSync(logPath).mode & 0o777).toBe(0o600);

    const verbose = await run(['--verbose', 'deploy', '-f', join(directory, 'fail.yaml')], {
      api: false,
      environment,
    });
    expect(verbose.code).toBe(4);
    expect(verbose.stderr).toMatch(/^\{"time":"[^"]+","level":"error","message":"deploy failed"/m);
    expect(verbose.stderr).toMatch(/^error DEPLOY_FAILED: /m);
    // Against a server, --verbose changes nothing: the server's lines are the server's.
    const remote = await run(['--verbose', 'ls']);
    expect(remote.code).toBe(0);
    expect(remote.stderr).not.toContain('"level"');
  });

  it('`ls` keeps a target that is not set up here (k8s without a kubeconfig) out of stderr unless --verbose', async () => {
    const home = mkdtempSync(join(tmpdir(), 'keyward-cli-no-kube-'));
    const environment = {
      KEYWARD_PORT: String(await freePort()),
      KEYWARD_BUILTINS: '@keyward/provider-tokenizer,@keyward/provider-k8s',
      HOME: home,
      KUBECONFIG: '',
    };
    try {
      const quiet = await run(['ls'], { api: false, environment });
      expect(quiet.code).toBe(0);
      expect(quiet.stderr).not.toContain('warning: target k8s');
      const listed = await run(['ls', '--json'], { api: false, environment });
      expect(JSON.parse(listed.stdout).errors).toEqual([
        expect.objectContaining({ target: 'k8s', code: 'RUNTIME_UNAVAILABLE' }),
      ]);
      const verbose = await run(['--verbose', 'ls'], { api: false, environment });
      expect(verbose.code).toBe(0);
      expect(verbose.stderr).toMatch(/^warning: target k8s: /m);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it('never prints a secret, in any command output or server log line', () => {
    if (process.env['KEYWARD_CLI_TEST_DEBUG']) console.log(serverLog);
    const cliLog = readFileSync(join(dataDirectory, 'keyward-cli.log'), 'utf8');
    const everything = [...transcripts, serverLog, cliLog].join('\n');
    expect(transcripts.length).toBeGreaterThan(20);
    expect(everything).not.toContain(githubSecret);
    expect(everything).not.toContain(stripeSecret);
  });
});
