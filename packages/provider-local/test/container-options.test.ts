import type { DeploymentPlanV2 } from '@keyward/core';
import { describe, expect, it } from 'vitest';
import { containerMaterials } from '../src/container-deployment.js';
import {
  agentNetworkCreateOptions,
  containerCreateOptions,
  helperCreateOptions,
} from '../src/container-options.js';
import { storePlan } from '../src/instance-record.js';
import { mockPlan, sealedCredentialPlan } from './plan-fixtures.js';

function optionsForPlan(plan: DeploymentPlanV2) {
  const stored = storePlan(plan);
  const values = new Map(plan.secrets.map((secret) => [secret.name, secret.value]));
  return {
    plan,
    options: Object.fromEntries(
      plan.containers.map((container) => {
        const materials = containerMaterials(stored, container, values, 'g1');
        return [
          container.name,
          containerCreateOptions({
            plan: stored,
            container,
            volumes: materials.volumes,
            stateVolumes: materials.stateVolumes,
            secretEnv: materials.secretEnv,
            kind: 'podman',
            extraLabels: { 'keyward.dev/generation': 'g1' },
          }),
        ];
      }),
    ),
    helper: helperCreateOptions({
      plan: stored,
      image: 'localhost/keyward-network-helper:0.2.0',
      kind: 'podman',
      labels: { 'keyward.dev/instance': plan.instance.name },
      extraLabels: {},
    }),
    agentNetwork: agentNetworkCreateOptions({
      plan: stored,
      image: 'localhost/keyward-network-helper:0.2.0',
      kind: 'podman',
      labels: { 'keyward.dev/instance': plan.instance.name },
      extraLabels: {},
    }),
  };
}

async function optionsFor(egress: 'proxy-only' | 'open', agent: { stateDirectories?: string[] } = {}) {
  return optionsForPlan(await mockPlan(egress, 'snap', agent));
}

describe('dockerode create options (proxy-only)', () => {
  it('puts the agent in the agent-network helper’s loopback-only namespace, hardened; the sidecar on both networks', async () => {
    const { options } = await optionsFor('proxy-only');
    expect(options['agent']).toMatchInlineSnapshot(`
      {
        "Env": [
          "AGENT_MODE=test",
          "MOCK_URL=http://localhost:4100",
          "MOCK_TOKEN=030a11181f262d343b424950575e656c",
        ],
        "HostConfig": {
          "Binds": [
            "keyward-snap-agent-files-g1-0:/home/node/.openclaw/skills/mock:ro",
          ],
          "CapDrop": [
            "ALL",
          ],
          "NetworkMode": "container:keyward-snap-agent-network",
          "ReadonlyRootfs": true,
          "RestartPolicy": {
            "Name": "unless-stopped",
          },
          "SecurityOpt": [
            "no-new-privileges",
          ],
          "Tmpfs": {
            "/tmp": "rw,nosuid,nodev,size=64m",
          },
        },
        "Image": "localhost/keyward-agent-standin:0.1.0",
        "Labels": {
          "keyward.dev/component": "agent",
          "keyward.dev/generation": "g1",
          "keyward.dev/instance": "snap",
          "keyward.dev/managed-by": "keyward",
          "keyward.dev/provider": "agent",
          "keyward.dev/spec-version": "v2",
          "keyward.dev/target": "local",
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
          "keyward.dev/spec-version": "v2",
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
        "name": "keyward-snap-mock",
      }
    `);
  });

  it('publishes the plan ingress with the target options; the helpers relay only the allowed connections', async () => {
    const { helper, agentNetwork } = await optionsFor('proxy-only');
    expect(agentNetwork).toMatchInlineSnapshot(`
      {
        "Env": [
          "RELAYS=[{"listen":{"host":"127.0.0.1","port":4100},"connect":{"path":"/keyward-sockets/to-mock-4100.sock"}},{"listen":{"path":"/keyward-sockets/ingress-18789.sock"},"connect":{"host":"127.0.0.1","port":18789}}]",
        ],
        "HostConfig": {
          "Binds": [
            "keyward-snap-sockets:/keyward-sockets",
          ],
          "CapDrop": [
            "ALL",
          ],
          "NetworkMode": "none",
          "ReadonlyRootfs": true,
          "RestartPolicy": {
            "Name": "unless-stopped",
          },
          "SecurityOpt": [
            "no-new-privileges",
          ],
        },
        "Image": "localhost/keyward-network-helper:0.2.0",
        "Labels": {
          "keyward.dev/instance": "snap",
          "keyward.dev/role": "agent-network",
        },
        "name": "keyward-snap-agent-network",
      }
    `);
    expect(helper).toMatchInlineSnapshot(`
      {
        "Env": [
          "RELAYS=[{"listen":{"path":"/keyward-sockets/to-mock-4100.sock"},"connect":{"host":"mock","port":4100}},{"listen":{"host":"0.0.0.0","port":18789},"connect":{"path":"/keyward-sockets/ingress-18789.sock"}}]",
        ],
        "ExposedPorts": {
          "18789/tcp": {},
        },
        "HostConfig": {
          "Binds": [
            "keyward-snap-sockets:/keyward-sockets",
          ],
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
        "Image": "localhost/keyward-network-helper:0.2.0",
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

  it('mounts a secret made for another sidecar’s container into exactly that container', async () => {
    const plan = await sealedCredentialPlan('proxy-only', 'sealed');
    const sealed = plan.secrets.find((secret) => secret.forRequest !== undefined);
    if (!sealed) throw new Error('the sealing provider answered no request');
    const { options } = optionsForPlan(plan);
    const holders = Object.entries(options)
      .filter(([, created]) => JSON.stringify(created).includes(sealed.value))
      .map(([name]) => name);
    expect(holders).toEqual(['gateway']);
    expect(options['gateway']?.Env).toContain(`UPSTREAM_SEALED_KEY=${sealed.value}`);
    // The sealing key stays in the sealer's own read-only file volume.
    expect(options['sealer']?.HostConfig?.Binds).toEqual([
      'keyward-sealed-sealer-files-g1-0:/run/keyward:ro',
    ]);
    expect(options['gateway']?.HostConfig?.NetworkMode).toBe('keyward-sealed-internal');
    expect(options['gateway']?.NetworkingConfig?.EndpointsConfig).toEqual({
      'keyward-sealed-internal': { Aliases: ['gateway'] },
    });
  });
});

describe('state volumes', () => {
  it('mounts the agent’s state directories read-write, before the read-only file volumes', async () => {
    const { options } = await optionsFor('proxy-only', {
      stateDirectories: ['/home/node/.openclaw', '/data'],
    });
    expect(options['agent']?.HostConfig?.Binds).toEqual([
      'keyward-snap-agent-state-0:/home/node/.openclaw',
      'keyward-snap-agent-state-1:/data',
      'keyward-snap-agent-files-g1-0:/home/node/.openclaw/skills/mock:ro',
    ]);
    expect(options['mock']?.HostConfig?.Binds).toEqual(['keyward-snap-mock-files-g1-0:/run/keyward:ro']);
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
        "Image": "localhost/keyward-network-helper:0.2.0",
        "Labels": {
          "keyward.dev/instance": "snap",
          "keyward.dev/role": "network-helper",
        },
        "name": "keyward-snap-network-helper",
      }
    `);
  });
});
