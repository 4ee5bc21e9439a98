import { isKeywardError, labelKeys } from '@keyward/core';
import { describe, expect, it } from 'vitest';
import { buildManifests, createKubernetesProvider, kubernetesTargetOptionsSchema } from '../src/index.js';
import { byKind, named, parseYaml, podContainers } from './support/object-queries.js';
import { fixturePlan } from './support/plan-fixtures.js';

const provider = createKubernetesProvider();

describe('render', () => {
  it('gives the same YAML for the same plan (proxy-only, file snapshot)', async () => {
    const first = provider.render(await fixturePlan(provider));
    const second = provider.render(await fixturePlan(provider));
    expect(second).toBe(first);
    await expect(first).toMatchFileSnapshot('__snapshots__/proxy-only.yaml');
  });

  it('gives the same YAML for the same plan (open, file snapshot)', async () => {
    const rendered = provider.render(await fixturePlan(provider, { mode: 'open' }));
    await expect(rendered).toMatchFileSnapshot('__snapshots__/open.yaml');
  });

  it('prints Secrets without values by default: no data, annotated with their keys (inline snapshot)', async () => {
    const objects = parseYaml(provider.render(await fixturePlan(provider)));
    expect(byKind(objects, 'Secret')).toMatchInlineSnapshot(`
      [
        {
          "apiVersion": "v1",
          "kind": "Secret",
          "metadata": {
            "annotations": {
              "keyward.dev/audience": "agent",
              "keyward.dev/keys": "proxy-token-github,proxy-token-stripe",
              "keyward.dev/values": "omitted",
            },
            "labels": {
              "keyward.dev/component": "secrets",
              "keyward.dev/instance": "snap",
              "keyward.dev/managed-by": "keyward",
              "keyward.dev/spec-version": "v2",
              "keyward.dev/target": "k8s",
            },
            "name": "kw-snap-secrets-agent",
            "namespace": "keyward-snap",
          },
          "type": "Opaque",
        },
        {
          "apiVersion": "v1",
          "kind": "Secret",
          "metadata": {
            "annotations": {
              "keyward.dev/audience": "gateway",
              "keyward.dev/keys": "proxy-for-gateway",
              "keyward.dev/values": "omitted",
            },
            "labels": {
              "keyward.dev/component": "secrets",
              "keyward.dev/instance": "snap",
              "keyward.dev/managed-by": "keyward",
              "keyward.dev/spec-version": "v2",
              "keyward.dev/target": "k8s",
            },
            "name": "kw-snap-secrets-gateway",
            "namespace": "keyward-snap",
          },
          "type": "Opaque",
        },
        {
          "apiVersion": "v1",
          "kind": "Secret",
          "metadata": {
            "annotations": {
              "keyward.dev/audience": "proxy",
              "keyward.dev/keys": "proxy-open-key",
              "keyward.dev/values": "omitted",
            },
            "labels": {
              "keyward.dev/component": "secrets",
              "keyward.dev/instance": "snap",
              "keyward.dev/managed-by": "keyward",
              "keyward.dev/spec-version": "v2",
              "keyward.dev/target": "k8s",
            },
            "name": "kw-snap-secrets-proxy",
            "namespace": "keyward-snap",
          },
          "type": "Opaque",
        },
      ]
    `);
  });

  it('keeps every secret value (raw and base64) out of the default output, and only there', async () => {
    const plan = await fixturePlan(provider);
    const values = plan.secrets.map((secret) => secret.value);
    expect(values.length).toBeGreaterThan(2);
    const omitted = provider.render(plan);
    const included = provider.render(plan, { secretValues: 'include' });
    for (const value of values) {
      const encoded = Buffer.from(value, 'utf8').toString('base64');
      expect(omitted).not.toContain(value);
      expect(omitted).not.toContain(encoded);
      expect(included).toContain(encoded);
    }
  });

  it('renders the same objects with and without values, but for the Secrets, so the two fit together', async () => {
    const plan = await fixturePlan(provider);
    const omitted = parseYaml(provider.render(plan));
    const included = parseYaml(provider.render(plan, { secretValues: 'include' }));
    const only = parseYaml(provider.render(plan, { secretValues: 'only' }));
    const notSecrets = (objects: ReturnType<typeof parseYaml>) =>
      objects.filter((object) => object.kind !== 'Secret');
    expect(notSecrets(omitted)).toEqual(notSecrets(included));
    expect(only).toEqual(byKind(included, 'Secret'));
    for (const secret of byKind(omitted, 'Secret')) {
      const full = named(included, 'Secret', secret.metadata.name);
      expect(secret.metadata.annotations['keyward.dev/keys']).toBe(Object.keys(full.data).join(','));
    }
  });

  it('lists the Secrets it renders with their keys and readers, and no value', async () => {
    const plan = await fixturePlan(provider);
    const listed = provider.renderedSecrets(plan);
    expect(listed).toMatchInlineSnapshot(`
      [
        {
          "keys": [
            {
              "agentSafe": true,
              "key": "proxy-token-github",
              "providerId": "proxy",
              "readers": [
                "agent",
              ],
            },
            {
              "agentSafe": true,
              "key": "proxy-token-stripe",
              "providerId": "proxy",
              "readers": [
                "agent",
              ],
            },
          ],
          "kind": "Secret",
          "name": "kw-snap-secrets-agent",
          "namespace": "keyward-snap",
        },
        {
          "keys": [
            {
              "agentSafe": false,
              "key": "proxy-for-gateway",
              "providerId": "proxy",
              "readers": [
                "gateway",
              ],
            },
          ],
          "kind": "Secret",
          "name": "kw-snap-secrets-gateway",
          "namespace": "keyward-snap",
        },
        {
          "keys": [
            {
              "agentSafe": false,
              "key": "proxy-open-key",
              "providerId": "proxy",
              "readers": [
                "proxy",
              ],
            },
          ],
          "kind": "Secret",
          "name": "kw-snap-secrets-proxy",
          "namespace": "keyward-snap",
        },
      ]
    `);
    for (const value of plan.secrets.map((secret) => secret.value)) {
      expect(JSON.stringify(listed)).not.toContain(value);
    }
  });

  it('refuses an unknown secretValues choice and says what to write', async () => {
    const plan = await fixturePlan(provider);
    // @ts-expect-error: a caller outside TypeScript (the API) may pass anything.
    expect(() => provider.render(plan, { secretValues: 'redact' })).toThrow(/"omit", "include", "only"/);
  });

  it('orders objects so policies exist before anything runs and the agent comes last', async () => {
    const objects = parseYaml(provider.render(await fixturePlan(provider)));
    expect(objects.map((object) => `${object.kind}/${object.metadata.name}`)).toMatchInlineSnapshot(`
      [
        "Namespace/keyward-snap",
        "ServiceAccount/kw-snap-agent",
        "ServiceAccount/kw-snap-egress",
        "NetworkPolicy/kw-snap-agent",
        "NetworkPolicy/kw-snap-egress",
        "Secret/kw-snap-secrets-agent",
        "Secret/kw-snap-secrets-gateway",
        "Secret/kw-snap-secrets-proxy",
        "ConfigMap/kw-snap-files-agent",
        "ConfigMap/kw-snap-files-proxy",
        "PersistentVolumeClaim/kw-snap-state",
        "ConfigMap/kw-snap-record",
        "Service/kw-snap-egress",
        "Service/kw-snap-agent",
        "Deployment/kw-snap-egress",
        "Deployment/kw-snap-agent",
      ]
    `);
  });

  it('labels every object with the plan labels', async () => {
    const plan = await fixturePlan(provider);
    for (const object of parseYaml(provider.render(plan))) {
      expect(object.metadata.labels, `${object.kind}/${object.metadata.name}`).toMatchObject(plan.labels);
      expect(object.metadata.labels[labelKeys.component]).toBeTruthy();
    }
  });

  it('refuses to render proxy-only without the egress Service IP, and says which option to set', async () => {
    const plan = await fixturePlan(provider, { targetOptions: {} });
    expect(() => provider.render(plan)).toThrow(/targetOptions\.egressServiceIP/);
    // `open` needs no address: everything is on localhost.
    const open = await fixturePlan(provider, { mode: 'open', targetOptions: {} });
    expect(parseYaml(provider.render(open)).length).toBeGreaterThan(5);
  });
});

describe('proxy-only topology', () => {
  it('gives the agent no DNS and reaches the sidecars by hostAliases to the egress Service IP', async () => {
    const objects = parseYaml(provider.render(await fixturePlan(provider)));
    const agentPod = named(objects, 'Deployment', 'kw-snap-agent').spec.template.spec;
    expect(agentPod.dnsPolicy).toBe('None');
    expect(agentPod.dnsConfig).toEqual({ nameservers: ['127.0.0.1'] });
    expect(agentPod.hostAliases).toEqual([
      { ip: '10.0.0.50', hostnames: ['gateway.keyward.internal', 'proxy.keyward.internal'] },
    ]);
    expect(named(objects, 'Service', 'kw-snap-egress').spec.clusterIP).toBe('10.0.0.50');
    expect(agentPod.automountServiceAccountToken).toBe(false);
    expect(agentPod.enableServiceLinks).toBe(false);
    expect(podContainers(agentPod).map((container) => container.name)).toEqual(['agent']);
    const agent = agentPod.containers[0];
    const env = Object.fromEntries(
      agent.env
        .filter((item: { value?: string }) => item.value)
        .map((item: { name: string; value: string }) => [item.name, item.value]),
    );
    expect(env['PROXY_URL']).toBe('http://proxy.keyward.internal:4001');
    expect(env['LLM_BASE_URL']).toBe('http://gateway.keyward.internal:4000');
  });

  it("lets the agent reach only the egress pod's connected ports: no DNS, no API server, no admin port", async () => {
    const objects = parseYaml(provider.render(await fixturePlan(provider)));
    const policy = named(objects, 'NetworkPolicy', 'kw-snap-agent').spec;
    expect(policy.policyTypes).toEqual(['Ingress', 'Egress']);
    expect(policy.egress).toEqual([
      {
        to: [
          {
            podSelector: {
              matchLabels: {
                'keyward.dev/instance': 'snap',
                'keyward.dev/managed-by': 'keyward',
                'keyward.dev/pod': 'egress',
              },
            },
          },
        ],
        ports: [
          { protocol: 'TCP', port: 4000 },
          { protocol: 'TCP', port: 4001 },
        ],
      },
    ]);
    expect(JSON.stringify(policy.egress)).not.toMatch(/"port":53|ipBlock|namespaceSelector/);
    expect(policy.ingress).toEqual([{ ports: [{ protocol: 'TCP', port: 18789 }] }]);
    // The admin port is not in the agent's connections: neither the Service nor the policy opens it.
    const service = named(objects, 'Service', 'kw-snap-egress');
    expect(service.spec.ports.map((port: { port: number }) => port.port)).toEqual([4000, 4001]);
  });

  it("gives the egress pod the sidecars' egress (internet) and ingress only from the agent", async () => {
    const objects = parseYaml(provider.render(await fixturePlan(provider)));
    const policy = named(objects, 'NetworkPolicy', 'kw-snap-egress').spec;
    expect(policy.egress).toEqual([{}]);
    expect(policy.ingress[0].from).toEqual([
      {
        podSelector: {
          matchLabels: {
            'keyward.dev/instance': 'snap',
            'keyward.dev/managed-by': 'keyward',
            'keyward.dev/pod': 'agent',
          },
        },
      },
    ]);
  });

  it('starts the gateway after the proxy inside the egress pod (native sidecar), and on localhost', async () => {
    const objects = parseYaml(provider.render(await fixturePlan(provider)));
    const egressPod = named(objects, 'Deployment', 'kw-snap-egress').spec.template.spec;
    expect(egressPod.initContainers.map((item: { name: string }) => item.name)).toEqual(['proxy']);
    expect(egressPod.initContainers[0].restartPolicy).toBe('Always');
    expect(egressPod.initContainers[0].startupProbe.httpGet).toEqual({ path: '/health', port: 4002 });
    expect(egressPod.containers.map((item: { name: string }) => item.name)).toEqual(['gateway']);
    const gatewayEnv = egressPod.containers[0].env.find(
      (item: { name: string }) => item.name === 'HTTPS_PROXY',
    );
    expect(gatewayEnv.value).toBe('http://localhost:4001');
  });

  it('restricts egress to CIDRs for `destinations`, and refuses host names it cannot enforce', async () => {
    const plan = await fixturePlan(provider);
    const gateway = plan.containers.find((container) => container.name === 'gateway');
    const proxy = plan.containers.find((container) => container.name === 'proxy');
    if (!gateway || !proxy) throw new Error('fixture changed');
    proxy.egress = { type: 'destinations', destinations: ['203.0.113.0/24', '198.51.100.7'] };
    const options = kubernetesTargetOptionsSchema.parse(plan.targetOptions);
    const built = buildManifests({ plan, options, egressServiceIP: '10.0.0.50', nativeSidecars: true });
    const policy = built.objects.find(
      (object) => object.kind === 'NetworkPolicy' && object.metadata?.name === 'kw-snap-egress',
    ) as unknown as { spec: { egress: unknown } };
    expect(policy.spec.egress).toEqual([
      { to: [{ ipBlock: { cidr: '198.51.100.7/32' } }, { ipBlock: { cidr: '203.0.113.0/24' } }] },
    ]);
    proxy.egress = { type: 'destinations', destinations: ['api.github.com'] };
    try {
      buildManifests({ plan, options, egressServiceIP: '10.0.0.50', nativeSidecars: true });
      expect.unreachable();
    } catch (error) {
      expect(isKeywardError(error, 'UNSUPPORTED_CAPABILITY')).toBe(true);
      expect((error as Error).message).toMatch(/api\.github\.com.*IP addresses or CIDRs/);
    }
  });
});

describe('open topology', () => {
  it('runs the sidecars as native sidecars in the agent pod, in dependency order, reached on localhost', async () => {
    const objects = parseYaml(provider.render(await fixturePlan(provider, { mode: 'open' })));
    expect(byKind(objects, 'Deployment').map((object) => object.metadata.name)).toEqual(['kw-snap-agent']);
    const pod = named(objects, 'Deployment', 'kw-snap-agent').spec.template.spec;
    expect(
      pod.initContainers.map((item: { name: string; restartPolicy: string }) => [
        item.name,
        item.restartPolicy,
      ]),
    ).toEqual([
      ['proxy', 'Always'],
      ['gateway', 'Always'],
    ]);
    expect(pod.containers.map((item: { name: string }) => item.name)).toEqual(['agent']);
    expect(pod.dnsPolicy).toBeUndefined();
    expect(pod.hostAliases).toBeUndefined();
    const agentEnv = pod.containers[0].env.find((item: { name: string }) => item.name === 'PROXY_URL');
    expect(agentEnv.value).toBe('http://localhost:4001');
    // Ingress only on the agent's port; egress is open (that is what `open` means).
    const policy = named(objects, 'NetworkPolicy', 'kw-snap-agent').spec;
    expect(policy.policyTypes).toEqual(['Ingress']);
    expect(policy.ingress).toEqual([{ ports: [{ protocol: 'TCP', port: 18789 }] }]);
  });

  it('uses plain containers when native sidecars are off (Kubernetes before 1.29)', async () => {
    const plan = await fixturePlan(provider, { mode: 'open', targetOptions: { nativeSidecars: 'never' } });
    const pod = named(parseYaml(provider.render(plan)), 'Deployment', 'kw-snap-agent').spec.template.spec;
    expect(pod.initContainers).toBeUndefined();
    expect(pod.containers.map((item: { name: string }) => item.name)).toEqual(['agent', 'proxy', 'gateway']);
    expect(pod.containers.some((item: { startupProbe?: unknown }) => item.startupProbe)).toBe(false);
  });
});

describe('security contexts', () => {
  it('every container: non-root, read-only root, no capabilities, RuntimeDefault seccomp, no privilege escalation', async () => {
    for (const mode of ['proxy-only', 'open'] as const) {
      const objects = parseYaml(provider.render(await fixturePlan(provider, { mode })));
      for (const deployment of byKind(objects, 'Deployment')) {
        const pod = deployment.spec.template.spec;
        expect(pod.securityContext).toMatchObject({
          runAsNonRoot: true,
          seccompProfile: { type: 'RuntimeDefault' },
        });
        expect(pod.automountServiceAccountToken).toBe(false);
        for (const container of podContainers(pod)) {
          expect(container.securityContext, `${mode} ${container.name}`).toMatchObject({
            allowPrivilegeEscalation: false,
            capabilities: { drop: ['ALL'] },
            readOnlyRootFilesystem: true,
            runAsNonRoot: true,
            seccompProfile: { type: 'RuntimeDefault' },
          });
        }
      }
    }
  });

  it('fixes no UID unless the plan does (OpenShift assigns its own), and gives read-only roots a /tmp', async () => {
    const objects = parseYaml(provider.render(await fixturePlan(provider)));
    const agent = named(objects, 'Deployment', 'kw-snap-agent').spec.template.spec;
    expect(agent.securityContext.fsGroup).toBeUndefined();
    expect(agent.containers[0].securityContext.runAsUser).toBeUndefined();
    expect(agent.containers[0].volumeMounts.map((mount: { mountPath: string }) => mount.mountPath)).toContain(
      '/tmp',
    );
    const egress = named(objects, 'Deployment', 'kw-snap-egress').spec.template.spec;
    const proxy = egress.initContainers[0];
    expect(proxy.securityContext.runAsUser).toBe(65532);
    expect(egress.securityContext.fsGroup).toBe(65532);
  });

  it('applies default resources only where the provider set none', async () => {
    const plan = await fixturePlan(provider, {
      targetOptions: {
        egressServiceIP: '10.0.0.50',
        resources: { requests: { cpu: '10m', memory: '32Mi' } },
      },
    });
    const objects = parseYaml(provider.render(plan));
    const egress = named(objects, 'Deployment', 'kw-snap-egress').spec.template.spec;
    expect(egress.initContainers[0].resources).toEqual({
      requests: { cpu: '50m', memory: '64Mi' },
      limits: { memory: '256Mi' },
    });
    expect(egress.containers[0].resources).toEqual({ requests: { cpu: '10m', memory: '32Mi' } });
  });
});

describe('state and files', () => {
  it('puts the agent state directories on one PVC (subPaths) and files in ConfigMaps mounted per file', async () => {
    const plan = await fixturePlan(provider, {
      stateDirectories: ['/home/agent/.agent', '/workspace'],
      targetOptions: { egressServiceIP: '10.0.0.50', storageClassName: 'fast', storageSize: '5Gi' },
    });
    const objects = parseYaml(provider.render(plan));
    const claim = named(objects, 'PersistentVolumeClaim', 'kw-snap-state');
    expect(claim.spec).toEqual({
      accessModes: ['ReadWriteOnce'],
      storageClassName: 'fast',
      resources: { requests: { storage: '5Gi' } },
    });
    const agent = named(objects, 'Deployment', 'kw-snap-agent').spec.template.spec.containers[0];
    expect(agent.volumeMounts.filter((mount: { name: string }) => mount.name === 'state')).toEqual([
      { name: 'state', mountPath: '/home/agent/.agent', subPath: 'agent-state-0' },
      { name: 'state', mountPath: '/workspace', subPath: 'agent-state-1' },
    ]);
    const skill = named(objects, 'ConfigMap', 'kw-snap-files-agent');
    expect(Object.values(skill.data)).toEqual([
      '# Proxy\nSend requests through http://proxy.keyward.internal:4001.\n',
    ]);
  });

  it('makes no PVC when the agent keeps no state', async () => {
    const objects = parseYaml(provider.render(await fixturePlan(provider, { stateDirectories: [] })));
    expect(byKind(objects, 'PersistentVolumeClaim')).toEqual([]);
  });
});

describe('names', () => {
  it('keeps every name within 63 characters, distinct, and Services starting with a letter', async () => {
    const long = `a${'b'.repeat(60)}9z`;
    expect(long.length).toBe(63);
    for (const name of [long, '1st-agent']) {
      const plan = await fixturePlan(provider, { name });
      const objects = parseYaml(provider.render(plan));
      const names = objects.map((object) => `${object.kind}/${object.metadata.name}`);
      expect(new Set(names).size).toBe(names.length);
      for (const object of objects) {
        expect(object.metadata.name.length, object.metadata.name).toBeLessThanOrEqual(63);
        expect(object.metadata.name).toMatch(/^[a-z]([-a-z0-9]*[a-z0-9])?$/);
        for (const value of Object.values(object.metadata.labels) as string[])
          expect(value.length).toBeLessThanOrEqual(63);
      }
    }
  });
});

describe('target options', () => {
  it('are strict and say what to write instead', () => {
    const unknown = kubernetesTargetOptionsSchema.safeParse({ namespce: 'x' });
    expect(unknown.success).toBe(false);
    const quantity = kubernetesTargetOptionsSchema.safeParse({ storageSize: '5 gigs' });
    expect(quantity.error?.issues[0]?.message).toMatch(/quantity such as/);
    const ip = kubernetesTargetOptionsSchema.safeParse({ egressServiceIP: 'egress.local' });
    expect(ip.error?.issues[0]?.message).toMatch(/IPv4 or IPv6 address/);
    const namespace = kubernetesTargetOptionsSchema.safeParse({ namespace: 'Agents' });
    expect(namespace.error?.issues[0]?.message).toMatch(/DNS-1123 label/);
    expect(kubernetesTargetOptionsSchema.parse({})).toEqual({ storageSize: '1Gi', nativeSidecars: 'auto' });
  });
});

describe('addressOf', () => {
  const request = (networkMode: 'open' | 'proxy-only', from: string, to: string, port: number) => ({
    instanceName: 'demo',
    networkMode,
    targetOptions: {},
    from: { container: from, role: from === 'agent' ? ('agent' as const) : ('sidecar' as const) },
    to: { container: to, role: to === 'agent' ? ('agent' as const) : ('sidecar' as const) },
    port,
  });
  it('open: everything on localhost (one pod)', () => {
    expect(provider.addressOf(request('open', 'agent', 'proxy', 4001))).toBe('localhost:4001');
    expect(provider.addressOf(request('open', 'gateway', 'proxy', 4001))).toBe('localhost:4001');
  });
  it('proxy-only: the agent dials a hostAliases name; sidecars share the egress pod', () => {
    expect(provider.addressOf(request('proxy-only', 'agent', 'proxy', 4001))).toBe(
      'proxy.keyward.internal:4001',
    );
    expect(provider.addressOf(request('proxy-only', 'gateway', 'proxy', 4001))).toBe('localhost:4001');
    expect(provider.addressOf(request('proxy-only', 'proxy', 'agent', 18789))).toBe(
      'kw-demo-agent.keyward-demo.svc:18789',
    );
  });
});
