// Security invariants over the objects the target sends: whatever the agent container can read
// (env, env references, mounted Secrets and ConfigMaps, projected items) holds no raw
// credential, no open key, and no value its provider did not declare agent-safe.
import type { DeploymentPlanV2 } from '@keyward/core';
import { describe, expect, it } from 'vitest';
import { createKubernetesProvider } from '../src/index.js';
import {
  type AnyObject,
  byKind,
  configMapsReadBy,
  decodedSecretValues,
  named,
  parseYaml,
  podContainers,
  secretsReadBy,
} from './support/object-queries.js';
import { fixturePlan, openKeyValue, rawCredentials, tokenizerPlan } from './support/plan-fixtures.js';

const provider = createKubernetesProvider();

/** Values the agent must never be able to read: raw credentials, the proxy's key, non-agent-safe secrets. */
function forbiddenForAgent(plan: DeploymentPlanV2): Map<string, string> {
  const forbidden = new Map<string, string>(
    Object.entries(rawCredentials).map(([key, value]) => [`raw ${key}`, value]),
  );
  forbidden.set('fixture open key', openKeyValue);
  for (const secret of plan.secrets) {
    if (!secret.agentSafe) forbidden.set(`secret ${secret.name}`, secret.value);
  }
  return forbidden;
}

function agentReadableText(objects: AnyObject[]): { what: string; text: string }[] {
  const readable: { what: string; text: string }[] = [];
  for (const deployment of byKind(objects, 'Deployment')) {
    const pod = deployment.spec.template.spec;
    const agent = podContainers(pod).find((container) => container.name === 'agent');
    if (!agent) continue;
    readable.push({ what: 'agent container spec (env, command, args)', text: JSON.stringify(agent) });
    for (const name of secretsReadBy(pod, agent)) {
      for (const value of decodedSecretValues(named(objects, 'Secret', name))) {
        readable.push({ what: `Secret ${name}`, text: value });
      }
    }
    for (const name of configMapsReadBy(pod, agent)) {
      readable.push({
        what: `ConfigMap ${name}`,
        text: JSON.stringify(named(objects, 'ConfigMap', name).data),
      });
    }
    readable.push({ what: 'agent pod annotations', text: JSON.stringify(deployment.spec.template.metadata) });
  }
  return readable;
}

const cases: [string, () => Promise<DeploymentPlanV2>][] = [
  ['fixture proxy + gateway, proxy-only', () => fixturePlan(provider)],
  ['fixture proxy + gateway, open', () => fixturePlan(provider, { mode: 'open' })],
  ['real tokenizer provider (v2), proxy-only', () => tokenizerPlan(provider, 'proxy-only')],
  ['real tokenizer provider (v2), open', () => tokenizerPlan(provider, 'open')],
];

describe.each(cases)('%s', (_label, makePlan) => {
  it('the agent container can read no raw credential, no open key and no secret that is not agent-safe', async () => {
    const plan = await makePlan();
    const objects = parseYaml(provider.render(plan, { secretValues: 'include' }));
    const readable = agentReadableText(objects);
    expect(readable.length).toBeGreaterThan(1);
    const findings: string[] = [];
    for (const [label, value] of forbiddenForAgent(plan)) {
      for (const { what, text } of readable) {
        if (text.includes(value) || text.includes(Buffer.from(value).toString('base64'))) {
          findings.push(`${label} in ${what}`);
        }
      }
    }
    expect(findings).toEqual([]);
  });

  it('every Secret the agent container references holds only agent-safe values', async () => {
    const plan = await makePlan();
    const objects = parseYaml(provider.render(plan, { secretValues: 'include' }));
    const safe = new Set(plan.secrets.filter((secret) => secret.agentSafe).map((secret) => secret.name));
    for (const deployment of byKind(objects, 'Deployment')) {
      const pod = deployment.spec.template.spec;
      const agent = podContainers(pod).find((container) => container.name === 'agent');
      if (!agent) continue;
      const referenced = secretsReadBy(pod, agent);
      expect(referenced.length).toBeGreaterThan(0);
      for (const name of referenced) {
        const keys = Object.keys(named(objects, 'Secret', name).data ?? {});
        expect(
          keys.filter((key) => !safe.has(key)),
          `Secret ${name}`,
        ).toEqual([]);
      }
    }
  });

  it('each Secret is read only by the containers of its audience', async () => {
    const plan = await makePlan();
    const objects = parseYaml(provider.render(plan, { secretValues: 'include' }));
    const visibleTo = new Map(plan.secrets.map((secret) => [secret.name, new Set(secret.visibleTo)]));
    for (const deployment of byKind(objects, 'Deployment')) {
      const pod = deployment.spec.template.spec;
      for (const container of podContainers(pod)) {
        for (const name of secretsReadBy(pod, container)) {
          for (const key of Object.keys(named(objects, 'Secret', name).data ?? {})) {
            expect(visibleTo.get(key)?.has(container.name), `${container.name} reads ${name}/${key}`).toBe(
              true,
            );
          }
        }
      }
    }
  });

  it('no raw credential appears anywhere in the rendered objects (it never enters the plan)', async () => {
    const plan = await makePlan();
    const rendered = provider.render(plan, { secretValues: 'include' });
    for (const value of Object.values(rawCredentials)) {
      expect(rendered).not.toContain(value);
      expect(rendered).not.toContain(Buffer.from(value).toString('base64'));
    }
  });

  it('the record ConfigMap keeps no secret value', async () => {
    const plan = await makePlan();
    const objects = parseYaml(provider.render(plan, { secretValues: 'include' }));
    const record = byKind(objects, 'ConfigMap').find(
      (object) => object.metadata.labels['keyward.dev/component'] === 'record',
    );
    const text = JSON.stringify(record);
    for (const secret of plan.secrets) expect(text).not.toContain(secret.value);
  });
});
