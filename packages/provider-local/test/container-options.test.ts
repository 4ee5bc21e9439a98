import { describe, expect, it } from 'vitest';
import { containerCreateOptions, helperCreateOptions } from '../src/container-options.js';
import { storePlan } from '../src/instance-record.js';
import { plannedVolumes } from '../src/volume-files.js';
import { mockPlan } from './plan-fixtures.js';

async function optionsFor(egress: 'proxy-only' | 'open') {
  const plan = await mockPlan(egress);
  const stored = storePlan(plan);
  const values = new Map(plan.secrets.map((secret) => [secret.name, secret.value]));
  return {
    plan,
    options: Object.fromEntries(
      plan.containers.map((container) => {
        const secretEnv: Record<string, string> = {};
        for (const mount of container.secretMounts) {
          if (mount.delivery.type === 'env')
            secretEnv[mount.delivery.variable] = values.get(mount.secret) as string;
        }
        return [
          container.name,
          containerCreateOptions({
            plan: stored,
            container,
            volumes: plannedVolumes(stored, container, values, 'g1'),
            secretEnv,
            kind: 'podman',
            extraLabels: { 'keyward.dev/generation': 'g1' },
          }),
        ];
      }),
    ),
    helper: helperCreateOptions({
      plan: stored,
      image: 'localhost/keyward-network-helper:0.1.0',
      kind: 'podman',
      labels: { 'keyward.dev/instance': 'snap' },
      extraLabels: {},
    }),
  };
}

describe('dockerode create options (proxy-only)', () => {
  it('puts the agent only on the internal network, the sidecar on both, with read-only file volumes', async () => {
    const { options } = await optionsFor('proxy-only');
    expect(options['agent']).toMatchInlineSnapshot(`
      {
        "Env": [
          "AGENT_MODE=test",
          "MOCK_URL=http://mock:4100",
          "MOCK_TOKEN=030a11181f262d343b424950575e656c",
        ],
        "ExposedPorts": {
          "18789/tcp": {},
        },
        "HostConfig": {
          "Binds": [
            "keyward-snap-agent-files-g1-0:/home/node/.openclaw/skills/mock:ro",
          ],
          "NetworkMode": "keyward-snap-internal",
          "RestartPolicy": {
            "Name": "unless-stopped",
          },
        },
        "Image": "localhost/keyward-agent-standin:0.1.0",
        "Labels": {
          "keyward.dev/component": "agent",
          "keyward.dev/generation": "g1",
          "keyward.dev/instance": "snap",
          "keyward.dev/managed-by": "keyward",
          "keyward.dev/provider": "agent",
          "keyward.dev/spec-version": "v1",
          "keyward.dev/target": "local",
        },
        "NetworkingConfig": {
          "EndpointsConfig": {
            "keyward-snap-internal": {
              "Aliases": [
                "agent",
              ],
            },
          },
        },
        "name": "keyward-snap-agent",
      }
    `);
    expect(options['mock']).toMatchInlineSnapshot(`
      {
        "Cmd": [
          "--listen",
          "0.0.0.0:4100",
        ],
        "Entrypoint": [
          "mock-sidecar",
        ],
        "Env": [
          "MOCK_SECRET_FILE=/run/keyward/mock-secret",
        ],
        "ExposedPorts": {
          "4100/tcp": {},
        },
        "HostConfig": {
          "Binds": [
            "keyward-snap-mock-files-g1-0:/run/keyward:ro",
          ],
          "CapDrop": [
            "ALL",
          ],
          "NetworkMode": "keyward-snap-internal",
          "ReadonlyRootfs": true,
          "RestartPolicy": {
            "Name": "unless-stopped",
          },
          "SecurityOpt": [
            "no-new-privileges",
          ],
        },
        "Image": "localhost/keyward-mock-sidecar:test",
        "Labels": {
          "keyward.dev/component": "mock",
          "keyward.dev/generation": "g1",
          "keyward.dev/instance": "snap",
          "keyward.dev/managed-by": "keyward",
          "keyward.dev/provider": "mock",
          "keyward.dev/spec-version": "v1",
          "keyward.dev/target": "local",
        },
        "NetworkingConfig": {
          "EndpointsConfig": {
            "keyward-snap-egress": {},
            "keyward-snap-internal": {
              "Aliases": [
                "mock",
              ],
            },
          },
        },
        "User": "65532",
        "name": "keyward-snap-mock",
      }
    `);
  });

  it('publishes the agent port through the helper, which forwards to the agent by name', async () => {
    const { helper } = await optionsFor('proxy-only');
    expect(helper).toMatchInlineSnapshot(`
      {
        "Env": [
          "FORWARDS=18789=agent:18789",
        ],
        "ExposedPorts": {
          "18789/tcp": {},
        },
        "HostConfig": {
          "CapDrop": [
            "ALL",
          ],
          "NetworkMode": "keyward-snap-egress",
          "PortBindings": {
            "18789/tcp": [
              {
                "HostIp": "127.0.0.1",
                "HostPort": "28789",
              },
            ],
          },
          "ReadonlyRootfs": true,
          "RestartPolicy": {
            "Name": "unless-stopped",
          },
          "SecurityOpt": [
            "no-new-privileges",
          ],
        },
        "Image": "localhost/keyward-network-helper:0.1.0",
        "Labels": {
          "keyward.dev/instance": "snap",
          "keyward.dev/role": "network-helper",
        },
        "NetworkingConfig": {
          "EndpointsConfig": {
            "keyward-snap-egress": {},
            "keyward-snap-internal": {},
          },
        },
        "name": "keyward-snap-network-helper",
      }
    `);
  });

  it('never puts a file secret in env, argv or labels', async () => {
    const { plan, options } = await optionsFor('proxy-only');
    const fileSecrets = plan.secrets.filter((secret) => secret.delivery.type === 'file');
    expect(fileSecrets.length).toBeGreaterThan(0);
    for (const secret of fileSecrets) {
      expect(JSON.stringify(options)).not.toContain(secret.value);
    }
  });
});

describe('agent data volume', () => {
  it('is mounted read-write before the read-only file volumes', async () => {
    const plan = await mockPlan('proxy-only');
    const stored = storePlan(plan);
    const agent = plan.containers.find((container) => container.role === 'agent');
    if (!agent) throw new Error('no agent');
    const options = containerCreateOptions({
      plan: stored,
      container: agent,
      volumes: plannedVolumes(
        stored,
        agent,
        new Map(plan.secrets.map((secret) => [secret.name, secret.value])),
        'g1',
      ),
      dataVolume: { volumeName: 'keyward-snap-agent-data', directory: '/home/node/.openclaw' },
      secretEnv: {},
      kind: 'docker',
      extraLabels: {},
    });
    expect(options.HostConfig?.Binds).toEqual([
      'keyward-snap-agent-data:/home/node/.openclaw',
      'keyward-snap-agent-files-g1-0:/home/node/.openclaw/skills/mock:ro',
    ]);
  });
});

describe('dockerode create options (open)', () => {
  it('joins every container to the helper namespace; the helper publishes the agent port', async () => {
    const { options, helper } = await optionsFor('open');
    expect(options['agent']?.HostConfig?.NetworkMode).toBe('container:keyward-snap-network-helper');
    expect(options['mock']?.HostConfig?.NetworkMode).toBe('container:keyward-snap-network-helper');
    expect(options['agent']?.NetworkingConfig).toBeUndefined();
    expect(helper).toMatchInlineSnapshot(`
      {
        "Env": [],
        "ExposedPorts": {
          "18789/tcp": {},
        },
        "HostConfig": {
          "CapDrop": [
            "ALL",
          ],
          "NetworkMode": "keyward-snap-egress",
          "PortBindings": {
            "18789/tcp": [
              {
                "HostIp": "127.0.0.1",
                "HostPort": "28789",
              },
            ],
          },
          "ReadonlyRootfs": true,
          "RestartPolicy": {
            "Name": "unless-stopped",
          },
          "SecurityOpt": [
            "no-new-privileges",
          ],
        },
        "Image": "localhost/keyward-network-helper:0.1.0",
        "Labels": {
          "keyward.dev/instance": "snap",
          "keyward.dev/role": "network-helper",
        },
        "name": "keyward-snap-network-helper",
      }
    `);
  });
});
