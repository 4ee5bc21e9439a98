// The pod spec `render` prints, running for real: `podman kube play` (podman 4.3, a STAND-IN for
// a kubelet: it runs Pods and Deployments from Kubernetes YAML) plays the rendered Deployments
// after the podman adaptation (`support/podman-kube-play-adaptation.ts`: Secrets become
// `podman secret create` entries, the native sidecar a regular container, subPath file mounts
// directory mounts, ports unpublished, the egress Service's address the egress pod's).
// `open`: the agent calls the tokenizer on localhost, the tokenizer calls a real TLS upstream (the
// demo upstream container, which records what it received), and the agent holds no raw credential
// or open key; what podman applies of the pod spec is measured from the running containers.
// `proxy-only`: the two pods, the agent reaching the tokenizer by its hostAliases name, and what
// podman cannot enforce (NetworkPolicies).
import { createHash, randomBytes } from 'node:crypto';
import { composePlanV2, type DeploymentPlanV2, parseInstanceSpec } from '@keyward/core';
import { buildImage, imageDefinitions, imageReference } from '@keyward/images';
import { execInContainer } from '@keyward/provider-local';
import {
  connectToTestRuntime,
  type DemoUpstream,
  demoUpstreamHost,
  demoUpstreamPort,
  remainingObjects,
  scanContainer,
  scanHostCommandLines,
  startDemoUpstream,
  testFixtureLabel,
  uniqueName,
} from '@keyward/provider-local/testing';
import { createTokenizerProvider } from '@keyward/provider-tokenizer';
import { createThrowawayCertificates } from '@keyward/tokenizer/certificates';
import type { V1Container, V1Deployment, V1Secret } from '@kubernetes/client-node';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKubernetesProvider } from '../src/index.js';
import { type AnyObject, byKind, named, parseYaml, podContainers } from './support/object-queries.js';
import { type PlayedManifests, playOnPodman, podman, waitFor } from './support/podman-kube-play.js';
import {
  adaptForPodmanKubePlay,
  type PodmanKubePlayManifests,
  playedContainerName,
} from './support/podman-kube-play-adaptation.js';

const tokenizer = createTokenizerProvider();
const kubernetes = createKubernetesProvider();
const agentCommand = ['/usr/bin/node', '/app/main.mjs'];
const memoryLimit = 256 * 1024 * 1024;

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** Runs INSIDE a container: what its main process runs as, and what is at the given paths. */
const containerFactsScript = String.raw`
const fs = require('node:fs');
const crypto = require('node:crypto');
const status = Object.fromEntries(fs.readFileSync('/proc/1/status', 'utf8').split('\n')
  .map((line) => line.split(':\t')).filter((pair) => pair.length === 2).map(([key, value]) => [key, value.trim()]));
const mountinfo = fs.readFileSync('/proc/1/mountinfo', 'utf8').split('\n');
const paths = JSON.parse(process.argv[2] ?? '[]');
const files = {};
for (const path of paths) {
  try {
    const stat = fs.statSync(path);
    files[path] = {
      mode: (stat.mode & 0o7777).toString(8), uid: stat.uid, gid: stat.gid, directory: stat.isDirectory(),
      sha256: stat.isFile() ? crypto.createHash('sha256').update(fs.readFileSync(path)).digest('hex') : undefined,
      // mountinfo: "... <mount point> ... - <fstype> ..."
      fstype: mountinfo.map((line) => line.split(' ')).find((fields) => fields[4] === path)?.slice(-3)[0],
    };
  } catch (error) { files[path] = { error: error.code }; }
}
const writable = (path) => { try { fs.writeFileSync(path, 'x'); fs.rmSync(path); return true; } catch { return false; } };
console.log(JSON.stringify({
  uid: status.Uid.split(/\s+/)[0], gid: status.Gid.split(/\s+/)[0], capEff: status.CapEff, capBnd: status.CapBnd,
  noNewPrivs: status.NoNewPrivs, seccomp: status.Seccomp, files,
  rootWritable: writable('/keyward-write-probe'), tmpWritable: writable('/tmp/keyward-write-probe'),
}));
`;

interface ContainerFacts {
  uid: string;
  gid: string;
  capEff: string;
  capBnd: string;
  noNewPrivs: string;
  seccomp: string;
  files: Record<
    string,
    { mode?: string; uid?: number; gid?: number; directory?: boolean; sha256?: string; fstype?: string }
  >;
  rootWritable: boolean;
  tmpWritable: boolean;
}

/** Calls the upstream through the tokenizer at TOKENIZER_PROXY_URL, from INSIDE the agent, with its own env. */
const proxiedRequestScript = `
const http = require('node:http');
const proxy = new URL(process.env.TOKENIZER_PROXY_URL);
const target = new URL(process.argv[2]);
const request = http.request({
  host: proxy.hostname, port: proxy.port, path: target.href,
  headers: {
    host: target.host,
    'proxy-tokenizer': process.env.TOKENIZER_CRED_DEMO,
    'proxy-authorization': 'Bearer ' + process.env.TOKENIZER_AUTH_DEMO,
  },
}, (response) => {
  let body = '';
  response.on('data', (chunk) => { body += chunk; });
  response.on('end', () => console.log(JSON.stringify({ proxyHost: proxy.hostname, status: response.statusCode, body })));
});
request.on('error', (error) => console.log(JSON.stringify({ status: 0, body: error.code || error.message })));
request.end();
`;

const runId = uniqueName('kube-play');
const network = `${runId}-net`;
const certificates = createThrowawayCertificates({ dnsNames: [demoUpstreamHost], validDays: 2 });
let docker: Docker;
let upstream: DemoUpstream | undefined;

beforeAll(async () => {
  docker = await connectToTestRuntime();
  for (const definition of [
    imageDefinitions.tokenizer,
    imageDefinitions.agentStandIn,
    imageDefinitions.demoUpstream,
  ]) {
    await buildImage(docker, definition);
  }
  await docker.createNetwork({ Name: network, Labels: { [testFixtureLabel]: runId } });
  upstream = await startDemoUpstream(docker, {
    image: imageReference(imageDefinitions.demoUpstream),
    certificates,
    runId,
  });
  // The tokenizer finds the upstream by name on the pods' network (podman's DNS).
  await upstream.attachTo(network);
});

afterAll(async () => {
  await upstream?.remove();
  await docker
    ?.getNetwork(network)
    .remove()
    .catch(() => undefined);
});

/** The real tokenizer provider's plan for the k8s target, with one credential bound to the upstream. */
function tokenizerInstancePlan(
  name: string,
  mode: 'open' | 'proxy-only',
  rawCredential: string,
  targetOptions: Record<string, unknown>,
): Promise<DeploymentPlanV2> {
  return composePlanV2({
    spec: parseInstanceSpec({
      name,
      target: 'k8s',
      agent: {
        image: imageReference(imageDefinitions.agentStandIn),
        port: 18789,
        // The image's own command is `node /app/main.mjs`: this one shows the pod spec's wins.
        command: agentCommand,
        skillsDirectory: '/home/node/.openclaw/skills',
        stateDirectories: ['/home/node/.openclaw'],
      },
      targetOptions,
      network: { egress: mode },
      sidecars: {
        tokenizer: {
          credentials: [
            {
              name: 'demo',
              secret: rawCredential,
              allowedHosts: [`${demoUpstreamHost}:${demoUpstreamPort}`],
            },
          ],
          upstreamCaCertificates: certificates.caCertificatePem,
          // The upstream has a private address on the podman network.
          allowPrivateUpstreams: true,
        },
      },
    }),
    sidecars: { getSidecar: (id) => (id === 'tokenizer' ? tokenizer : undefined) },
    target: kubernetes,
  });
}

/** Runs a command in a played container; a non-zero exit fails with its stderr. */
async function runIn(container: string, command: string[], stdin?: string): Promise<string> {
  const result = await execInContainer(docker, container, command, {
    ...(stdin === undefined ? {} : { stdin }),
    timeoutMs: 60_000,
  });
  if (result.exitCode !== 0) throw new Error(`${command.join(' ')} in ${container}: ${result.stderr}`);
  return result.stdout;
}

/** Ready when `from` gets 200 from the tokenizer's /health at `address`. */
function tokenizerAnswers(from: string, address: string): Promise<true> {
  const script = `fetch("http://${address}/health").then((r) => console.log(r.status), () => console.log(0))`;
  return waitFor(`the tokenizer answers /health at ${address} from ${from}`, async () =>
    (await runIn(from, ['node', '-e', script])).trim() === '200' ? true : undefined,
  );
}

/** What the agent must never hold, raw and base64. */
function forbiddenForAgent(rawCredential: string, openKey: string): Record<string, string> {
  return {
    'raw credential': rawCredential,
    'raw credential (base64)': Buffer.from(rawCredential).toString('base64'),
    'open key': openKey,
    'open key (base64)': Buffer.from(openKey).toString('base64'),
  };
}

/** After `kube down` and the removals: no container, volume or podman secret of the instance. */
async function leftoversOf(name: string): Promise<string[]> {
  const volumes = ((await docker.listVolumes()).Volumes ?? []).map((volume) => volume.Name);
  const secrets = (await podman(['secret', 'ls', '--format', '{{.Name}}'])).stdout.split('\n');
  return [
    ...(await remainingObjects(docker, name)),
    ...volumes.filter((volume) => volume.includes(name)).map((volume) => `volume ${volume}`),
    ...secrets.filter((secret) => secret.includes(name)).map((secret) => `secret ${secret}`),
  ];
}

describe('the rendered open-mode pod on podman kube play (podman 4.3 stands in for a kubelet)', () => {
  const name = `${runId}-open`;
  const rawCredential = `kube-play-raw-${randomBytes(16).toString('hex')}`;
  let plan: DeploymentPlanV2;
  let rendered: AnyObject[];
  let manifests: PodmanKubePlayManifests;
  let played: PlayedManifests | undefined;
  let deployment: string;
  let openKey: string;

  const containerOf = (container: string) => playedContainerName(deployment, container);
  const renderedPod = () => named(rendered, 'Deployment', deployment).spec.template.spec;
  const renderedContainer = (container: string): V1Container =>
    podContainers(renderedPod()).find((item: V1Container) => item.name === container);
  const run = (container: string, command: string[], stdin?: string) =>
    runIn(containerOf(container), command, stdin);
  const factsOf = async (container: string, paths: string[]): Promise<ContainerFacts> =>
    JSON.parse(await run(container, ['node', '-', JSON.stringify(paths)], containerFactsScript));

  beforeAll(async () => {
    await upstream?.acceptTokens([rawCredential]);
    plan = await tokenizerInstancePlan(name, 'open', rawCredential, {
      resources: { limits: { cpu: '500m', memory: '256Mi' } },
    });
    openKey = plan.secrets.find((secret) => secret.name === 'tokenizer-open-key')?.value as string;
    rendered = parseYaml(kubernetes.render(plan, { secretValues: 'include' }));
    deployment = (byKind(rendered, 'Deployment')[0] as V1Deployment).metadata?.name as string;
    manifests = adaptForPodmanKubePlay(rendered);
    played = await playOnPodman(docker, manifests, { network });
    // Ready when the agent reaches the tokenizer's health endpoint on localhost.
    await tokenizerAnswers(containerOf('agent'), 'localhost:4002');
  });

  afterAll(async () => {
    const problems = (await played?.down()) ?? [];
    if (problems.length > 0) throw new Error(`teardown left: ${problems.join('; ')}`);
  });

  it('plays the rendered Deployment as one pod: the tokenizer (a native sidecar in the render) beside the agent', async () => {
    expect(renderedPod().initContainers.map((container: V1Container) => container.name)).toEqual([
      'tokenizer',
    ]);
    expect(manifests.pods).toEqual([
      { deployment, pod: `${deployment}-pod-0`, containers: ['tokenizer', 'agent'] },
    ]);
    for (const container of ['tokenizer', 'agent']) {
      const info = await docker.getContainer(containerOf(container)).inspect();
      expect(info.State.Running, container).toBe(true);
      expect(info.Config.Labels?.['keyward.dev/instance']).toBe(name);
    }
    // What the adaptation left out, by kind: podman has no such objects (or plays them differently).
    expect(manifests.skipped.map((object) => object.kind).sort()).toEqual([
      'ConfigMap',
      'ConfigMap',
      'ConfigMap',
      'Namespace',
      'NetworkPolicy',
      'Secret',
      'Secret',
      'Service',
      'ServiceAccount',
    ]);
  });

  it('the agent calls the tokenizer on localhost, and the upstream receives the real credential injected', async () => {
    await upstream?.clear();
    const url = `http://${demoUpstreamHost}:${demoUpstreamPort}/kube-play`;
    const answer = JSON.parse(await run('agent', ['node', '-', url], proxiedRequestScript));
    expect(answer).toMatchObject({ proxyHost: 'localhost', status: 200 });
    const received = (await upstream?.received()) ?? [];
    expect(
      received.map((request) => [request.url, request.headers['authorization'], request.status]),
    ).toEqual([['/kube-play', `Bearer ${rawCredential}`, 200]]);
    // The agent sent a sealed token, never the credential: the proxy opened it.
    const agentEnvironment = (await docker.getContainer(containerOf('agent')).inspect()).Config.Env ?? [];
    expect(agentEnvironment.some((entry) => entry.startsWith('TOKENIZER_CRED_DEMO='))).toBe(true);
  });

  it("the tokenizer's own self-test passes from inside the played agent", async () => {
    const sidecar = plan.sidecars.find((entry) => entry.providerId === 'tokenizer');
    const verification = tokenizer.verification;
    if (!sidecar || !verification) throw new Error('the plan has no tokenizer');
    const options = { allowedUrl: `https://${demoUpstreamHost}:${demoUpstreamPort}/self-test` };
    const checks = await verification.checks(
      { instanceName: name, networkMode: 'open', metadata: sidecar.metadata, exports: sidecar.exports },
      (verification.optionsSchema?.parse(options) ?? options) as never,
    );
    const reports = [];
    for (const check of checks) {
      const result = await execInContainer(docker, containerOf(check.exec.container), check.exec.command, {
        ...(check.exec.stdin === undefined ? {} : { stdin: check.exec.stdin }),
        timeoutMs: 60_000,
      });
      reports.push({
        name: check.name,
        ...check.judge({ ...result, exitCode: result.exitCode ?? -1, timedOut: false }),
      });
    }
    console.log(reports.map((report) => `${report.name}: ${report.passed} — ${report.evidence}`).join('\n'));
    expect(reports.length).toBeGreaterThan(3);
    expect(reports.filter((report) => !report.passed)).toEqual([]);
  });

  it('the agent holds no raw credential or open key (env, inspect, filesystem, mounts; argv on the host)', async () => {
    const forbidden = forbiddenForAgent(rawCredential, openKey);
    const agent = await scanContainer(docker, containerOf('agent'), forbidden);
    expect(agent.findings).toEqual([]);
    expect(agent.filesScanned).toBeGreaterThan(5);
    expect(await scanHostCommandLines(forbidden)).toEqual([]);
    // Positive control: the same scan finds the open key in the tokenizer's secret file.
    const proxy = await scanContainer(docker, containerOf('tokenizer'), { 'open key': openKey });
    expect(proxy.findings.map((finding) => [finding.secret, /open-key$/.test(finding.where)])).toEqual([
      ['open key', true],
    ]);
  });

  it('podman applies the security contexts, env, command, resource limits and mounted content of the pod spec', async () => {
    const secrets = new Map(
      byKind(rendered, 'Secret').map((secret: V1Secret) => [secret.metadata?.name as string, secret]),
    );
    for (const container of ['tokenizer', 'agent']) {
      const spec = renderedContainer(container);
      const info = await docker.getContainer(containerOf(container)).inspect();
      const mountPaths = (spec.volumeMounts ?? []).map((mount) => mount.mountPath);
      const facts = await factsOf(container, mountPaths);
      expect(spec.securityContext?.readOnlyRootFilesystem).toBe(true);
      expect(info.HostConfig.ReadonlyRootfs, container).toBe(true);
      expect(facts.rootWritable, container).toBe(false);
      expect(facts.tmpWritable, container).toBe(true);
      expect(spec.securityContext?.capabilities?.drop).toEqual(['ALL']);
      expect([facts.capEff, facts.capBnd], container).toEqual(['0000000000000000', '0000000000000000']);
      expect(spec.securityContext?.allowPrivilegeEscalation).toBe(false);
      expect(facts.noNewPrivs, container).toBe('1');
      // 2: a seccomp filter (podman's default profile; `RuntimeDefault` asks for the same).
      expect(facts.seccomp, container).toBe('2');
      expect(info.HostConfig.Memory, container).toBe(memoryLimit);
      expect([info.HostConfig.CpuQuota, info.HostConfig.CpuPeriod], container).toEqual([50_000, 100_000]);
      for (const variable of spec.env ?? []) {
        const reference = variable.valueFrom?.secretKeyRef;
        const value = reference
          ? Buffer.from(
              secrets.get(reference.name as string)?.data?.[reference.key] ?? '',
              'base64',
            ).toString()
          : variable.value;
        expect(info.Config.Env, `${container} ${variable.name}`).toContain(`${variable.name}=${value}`);
      }
      // Every file the pod spec mounts holds what its ConfigMap or Secret holds.
      const configMaps = byKind(rendered, 'ConfigMap');
      for (const mount of spec.volumeMounts ?? []) {
        const volume = renderedPod().volumes.find((item: AnyObject) => item.name === mount.name);
        if (!volume.configMap && !volume.secret) continue;
        const key = (volume.configMap ?? volume.secret).items.find(
          (item: AnyObject) => item.path === mount.subPath,
        ).key;
        const expected = volume.configMap
          ? configMaps.find((configMap: AnyObject) => configMap.metadata.name === volume.configMap.name).data[
              key
            ]
          : Buffer.from(secrets.get(volume.secret.secretName)?.data?.[key] ?? '', 'base64').toString();
        expect(facts.files[mount.mountPath]?.sha256, `${container} ${mount.mountPath}`).toBe(
          sha256(expected),
        );
      }
    }
    // The tokenizer's user comes from the pod spec; the agent's from its image (65532 too).
    expect(renderedContainer('tokenizer').securityContext).toMatchObject({
      runAsUser: 65532,
      runAsGroup: 65532,
    });
    expect((await docker.getContainer(containerOf('tokenizer')).inspect()).Config.User).toBe('65532:65532');
    const agent = await factsOf('agent', []);
    expect([agent.uid, agent.gid]).toEqual(['65532', '65532']);
    const agentInfo = await docker.getContainer(containerOf('agent')).inspect();
    expect(renderedContainer('agent').command).toEqual(agentCommand);
    expect([agentInfo.Path, ...agentInfo.Args]).toEqual(agentCommand);
    // The state claim is the agent's to write.
    await run('agent', [
      'node',
      '-e',
      'require("fs").writeFileSync("/home/node/.openclaw/kube-play-state", "kept")',
    ]);
  });

  it('what podman 4.3 leaves out of the pod spec (the README lists it): probes, fsGroup and file modes, memory-backed emptyDir', async () => {
    const tokenizerSpec = renderedContainer('tokenizer');
    expect(tokenizerSpec.readinessProbe).toBeDefined();
    expect(tokenizerSpec.startupProbe).toBeDefined();
    const info = await docker.getContainer(containerOf('tokenizer')).inspect();
    expect(info.Config.Healthcheck ?? null).toBeNull();
    expect(renderedPod().securityContext.fsGroup).toBe(65532);
    const openKeyItem = renderedPod()
      .volumes.flatMap((volume: AnyObject) => volume.secret?.items ?? [])
      .find((item: AnyObject) => item.key === 'tokenizer-open-key');
    expect(openKeyItem.mode).toBe(0o440);
    const facts = await factsOf('tokenizer', ['/run/keyward/tokenizer/open-key', '/tmp']);
    // A kubelet gives the key mode 0440 and group 65532 (fsGroup); podman writes 0644, root-owned.
    expect(facts.files['/run/keyward/tokenizer/open-key']).toMatchObject({ mode: '644', uid: 0, gid: 0 });
    // `emptyDir: {medium: Memory}` is a tmpfs on a kubelet; podman makes a disk volume.
    expect(renderedPod().volumes.find((volume: AnyObject) => volume.emptyDir)?.emptyDir.medium).toBe(
      'Memory',
    );
    expect(facts.files['/tmp']?.fstype).not.toBe('tmpfs');
  });

  it('kube down, then removing its podman secrets and volumes, leaves nothing of the instance', async () => {
    expect((await played?.down()) ?? []).toEqual([]);
    expect(await leftoversOf(name)).toEqual([]);
  });
});

describe('the rendered proxy-only pods on podman kube play: the agent reaches the tokenizer by its hostAliases name; no NetworkPolicy is enforced', () => {
  const name = `${runId}-proxy`;
  const rawCredential = `kube-play-raw-${randomBytes(16).toString('hex')}`;
  // Any address the render can name: podman has no Service, the egress pod's address replaces it.
  const egressServiceIP = '10.96.0.50';
  let plan: DeploymentPlanV2;
  let manifests: PodmanKubePlayManifests;
  let played: PlayedManifests | undefined;
  let egressAddress: string;
  let agentContainer: string;
  let tokenizerContainer: string;

  beforeAll(async () => {
    await upstream?.acceptTokens([rawCredential]);
    plan = await tokenizerInstancePlan(name, 'proxy-only', rawCredential, { egressServiceIP });
    const rendered = parseYaml(kubernetes.render(plan, { secretValues: 'include' }));
    // Fixed addresses in the test network's own /24, far above the few the upstream takes.
    const subnet = (await docker.getNetwork(network).inspect()).IPAM?.Config?.[0]?.Subnet ?? '';
    const prefix = /^(\d+\.\d+\.\d+)\.0\/24$/.exec(subnet)?.[1];
    if (!prefix) throw new Error(`the test network's subnet is ${subnet}, not the /24 podman gives`);
    egressAddress = `${prefix}.200`;
    manifests = adaptForPodmanKubePlay(rendered, { serviceAddresses: { [egressServiceIP]: egressAddress } });
    const [egress, agent] = manifests.pods;
    if (!egress || !agent) throw new Error('proxy-only renders two Deployments');
    tokenizerContainer = playedContainerName(egress.deployment, 'tokenizer');
    agentContainer = playedContainerName(agent.deployment, 'agent');
    // `--ip` goes to the pods in the YAML's order: the egress pod first.
    played = await playOnPodman(docker, manifests, { network, addresses: [egressAddress, `${prefix}.201`] });
    await tokenizerAnswers(tokenizerContainer, 'localhost:4002');
  });

  afterAll(async () => {
    const problems = (await played?.down()) ?? [];
    if (problems.length > 0) throw new Error(`teardown left: ${problems.join('; ')}`);
  });

  it('plays two pods, the sidecars apart from the agent, the agent without DNS', async () => {
    expect(manifests.pods.map((pod) => pod.containers)).toEqual([['tokenizer'], ['agent']]);
    const hosts = await runIn(agentContainer, [
      'node',
      '-e',
      'process.stdout.write(require("fs").readFileSync("/etc/hosts", "utf8"))',
    ]);
    expect(hosts).toMatch(
      new RegExp(`^${egressAddress.replaceAll('.', '\\.')}\\s+tokenizer\\.keyward\\.internal$`, 'm'),
    );
    // dnsPolicy None with nameserver 127.0.0.1: podman writes it, and nothing answers there.
    const resolver = await runIn(agentContainer, [
      'node',
      '-e',
      'process.stdout.write(require("fs").readFileSync("/etc/resolv.conf", "utf8"))',
    ]);
    expect(resolver.match(/^nameserver .*$/gm)).toEqual(['nameserver 127.0.0.1']);
    const lookup = await runIn(agentContainer, [
      'node',
      '-e',
      `require("dns").lookup("${demoUpstreamHost}", (error) => console.log(error ? error.code : "resolved"))`,
    ]);
    expect(lookup.trim()).not.toBe('resolved');
  });

  it('the agent calls the tokenizer at tokenizer.keyward.internal (the egress pod), and the upstream receives the real credential', async () => {
    await upstream?.clear();
    const url = `http://${demoUpstreamHost}:${demoUpstreamPort}/kube-play-proxy-only`;
    const answer = JSON.parse(await runIn(agentContainer, ['node', '-', url], proxiedRequestScript));
    expect(answer).toMatchObject({ proxyHost: 'tokenizer.keyward.internal', status: 200 });
    const received = (await upstream?.received()) ?? [];
    expect(received.map((request) => [request.url, request.headers['authorization']])).toEqual([
      ['/kube-play-proxy-only', `Bearer ${rawCredential}`],
    ]);
  });

  it('podman enforces no NetworkPolicy: the agent reaches the upstream directly and the tokenizer admin port (a cluster with an enforcing CNI refuses both)', async () => {
    const rendered = parseYaml(kubernetes.render(plan, { secretValues: 'include' }));
    const agentPolicy = byKind(rendered, 'NetworkPolicy').find(
      (policy) => policy.spec.podSelector.matchLabels['keyward.dev/pod'] === 'agent',
    );
    expect(agentPolicy.spec.egress).toEqual([
      {
        to: [{ podSelector: { matchLabels: expect.any(Object) } }],
        ports: [{ protocol: 'TCP', port: 4001 }],
      },
    ]);
    const upstreamAddress = (await docker.getContainer(upstream?.containerName ?? '').inspect())
      .NetworkSettings.Networks[network]?.IPAddress;
    const connect = (host: string, port: number) =>
      runIn(agentContainer, [
        'node',
        '-e',
        `const s = require("net").connect(${port}, "${host}", () => { console.log("connected"); s.destroy(); }); s.on("error", (e) => console.log(e.code)); s.setTimeout(5000, () => { console.log("timeout"); s.destroy(); });`,
      ]);
    expect((await connect(upstreamAddress ?? '', demoUpstreamPort)).trim()).toBe('connected');
    expect((await connect(egressAddress, 4002)).trim()).toBe('connected');
  });

  it('the agent holds no raw credential or open key', async () => {
    const openKey = plan.secrets.find((secret) => secret.name === 'tokenizer-open-key')?.value as string;
    const forbidden = forbiddenForAgent(rawCredential, openKey);
    const agent = await scanContainer(docker, agentContainer, forbidden);
    expect(agent.findings).toEqual([]);
    expect(agent.filesScanned).toBeGreaterThan(5);
    expect(await scanHostCommandLines(forbidden)).toEqual([]);
  });

  it('kube down, then removing its podman secrets and volumes, leaves nothing of the instance', async () => {
    expect((await played?.down()) ?? []).toEqual([]);
    expect(await leftoversOf(name)).toEqual([]);
  });
});
