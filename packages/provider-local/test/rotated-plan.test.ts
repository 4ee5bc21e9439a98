import { composePlan, parseInstanceSpec, resolveSidecarContribution } from '@keyward/core';
import { createMockSidecarProvider } from '@keyward/core/testing';
import { describe, expect, it } from 'vitest';
import { storePlan } from '../src/instance-record.js';
import { rotatedPlan } from '../src/rotated-plan.js';
import { counterBytes } from './plan-fixtures.js';

describe('rotatedPlan', () => {
  it('replaces one sidecar’s containers, secrets, agent env and files; keeps the rest of the agent and other sidecars', async () => {
    const mock = createMockSidecarProvider();
    const other = createMockSidecarProvider({ id: 'other' });
    const spec = parseInstanceSpec({
      name: 'rot',
      agent: { image: 'agent:1', port: 18000, env: { KEEP_ME: 'yes' } },
      sidecars: { mock: { secret: 'first-secret-value' }, other: { port: 4200 } },
    });
    const plan = await composePlan({
      spec,
      sidecars: { getSidecar: (id) => (id === 'mock' ? mock : id === 'other' ? other : undefined) },
      randomBytes: counterBytes,
    });
    const contribution = await mock.contribute(
      {
        instanceName: 'rot',
        networkMode: 'proxy-only',
        addressOf: (c, p) => `http://${c}:${p}`,
        agent: { port: 18000, skillsDirectory: spec.agent.skillsDirectory },
        randomBytes: () => new Uint8Array(16).fill(9),
      },
      { secret: 'second-secret-value', port: 4100, image: 'mock:2' },
    );
    const part = resolveSidecarContribution(spec, 'mock', contribution);
    const next = rotatedPlan(storePlan(plan), {
      providerId: 'mock',
      sidecar: part.sidecar,
      containers: part.containers,
      secrets: part.secrets,
      agentEnv: part.agentEnv,
      agentFiles: part.agentFiles,
      redactedSpec: { ...plan.redactedSpec, rotated: true },
    });
    const agentBefore = plan.containers.find((container) => container.role === 'agent');
    const agentAfter = next.containers.find((container) => container.role === 'agent');
    expect(agentAfter?.image).toBe('agent:1');
    expect(agentAfter?.ports).toEqual(agentBefore?.ports);
    expect(agentAfter?.env['KEEP_ME']).toBe('yes');
    // The other sidecar's env, secret mounts and container are untouched.
    const otherKeys = plan.sidecars.find((sidecar) => sidecar.providerId === 'other')?.agentEnvKeys ?? [];
    for (const key of otherKeys.filter((candidate) => candidate in (agentBefore?.env ?? {}))) {
      expect(agentAfter?.env[key]).toBe(agentBefore?.env[key]);
    }
    expect(next.containers.find((container) => container.name === 'other')).toEqual(
      plan.containers.find((container) => container.name === 'other'),
    );
    expect(agentAfter?.secretMounts.filter((mount) => mount.secret.startsWith('other'))).toEqual(
      agentBefore?.secretMounts.filter((mount) => mount.secret.startsWith('other')),
    );
    expect(next.containers.find((container) => container.name === 'mock')?.image).toBe('mock:2');
    expect(next.containers.map((container) => container.name)).toEqual(
      plan.containers.map((container) => container.name),
    );
    expect(next.redactedSpec['rotated']).toBe(true);
    // The stored plan never carries values.
    expect(JSON.stringify(next)).not.toContain('second-secret-value');
  });

  it('refuses a sidecar the instance does not have', async () => {
    const plan = await composePlan({
      spec: parseInstanceSpec({ name: 'rot', agent: { image: 'agent:1' } }),
      sidecars: { getSidecar: () => undefined },
    });
    expect(() =>
      rotatedPlan(storePlan(plan), {
        providerId: 'tokenizer',
        sidecar: {
          providerId: 'tokenizer',
          containerNames: [],
          secretNames: [],
          agentEnvKeys: [],
          agentFilePaths: [],
          metadata: {},
        },
        containers: [],
        secrets: [],
        agentEnv: {},
        agentFiles: [],
        redactedSpec: {},
      }),
    ).toThrow(/has no sidecar "tokenizer"/);
  });
});
