import { describe, expect, it } from 'vitest';
import { storePlan } from '../src/instance-record.js';
import { plannedVolumes } from '../src/volume-files.js';
import { mockPlan, sealedCredentialPlan } from './plan-fixtures.js';

describe('planned volumes', () => {
  it('gives each container only its own secrets, grouped by directory, labelled for cleanup', async () => {
    const plan = await mockPlan('proxy-only');
    const stored = storePlan(plan);
    const values = new Map(plan.secrets.map((secret) => [secret.name, secret.value]));
    const byContainer = Object.fromEntries(
      plan.containers.map((container) => [container.name, plannedVolumes(stored, container, values, 'g7')]),
    );
    const sidecarSecret = plan.secrets.find((secret) => !secret.visibleTo.includes('agent'));
    expect(sidecarSecret).toBeDefined();
    expect(JSON.stringify(byContainer['agent'])).not.toContain(sidecarSecret?.value);
    expect(byContainer['mock']?.[0]).toMatchObject({
      volumeName: 'keyward-snap-mock-files-g7-0',
      directory: '/run/keyward',
      files: [{ name: 'mock-secret', mode: 0o400, secret: 'mock-secret' }],
      labels: {
        'keyward.dev/instance': 'snap',
        'keyward.dev/volume-kind': 'files',
        'keyward.dev/generation': 'g7',
      },
    });
    expect(byContainer['agent']?.map((volume) => volume.directory)).toEqual([
      '/home/node/.openclaw/skills/mock',
    ]);
  });

  it('keeps the sealing key in the sealer’s volume only', async () => {
    const plan = await sealedCredentialPlan('proxy-only', 'vol');
    const stored = storePlan(plan);
    const values = new Map(plan.secrets.map((secret) => [secret.name, secret.value]));
    const key = values.get('sealer-key');
    expect(key).toBeDefined();
    for (const container of plan.containers) {
      const volumes = JSON.stringify(plannedVolumes(stored, container, values, 'g1'));
      expect(volumes.includes(key as string), container.name).toBe(container.name === 'sealer');
    }
  });
});
