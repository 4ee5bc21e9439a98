import { composeRotationV2, type InstanceDetailV2, isKeywardError } from '@keyward/core';
import { describe, expect, it } from 'vitest';
import {
  buildManifests,
  createKubernetesProvider,
  kubernetesTargetOptionsSchema,
  storePlan,
} from '../src/index.js';
import { resourcePath } from '../src/kubernetes-api.js';
import { boundedName } from '../src/object-names.js';
import { deploymentFailure, deploymentSettled, describePod } from '../src/rollout.js';
import { rotatedPlan } from '../src/rotated-plan.js';
import { microTime } from '../src/rotation-lease.js';
import { fixturePlan, fixtureSidecars, fixtureSpec, sequenceBytes } from './support/plan-fixtures.js';

const provider = createKubernetesProvider();

describe('refusals over the plan', () => {
  it('refuses to mount a secret that is not agent-safe into the agent, even if a plan says so', async () => {
    const plan = await fixturePlan(provider);
    const openKey = plan.secrets.find((secret) => secret.name === 'proxy-open-key');
    if (!openKey) throw new Error('fixture changed');
    openKey.visibleTo = ['proxy', 'agent'];
    const options = kubernetesTargetOptionsSchema.parse(plan.targetOptions);
    try {
      buildManifests({ plan, options, egressServiceIP: '10.0.0.50', nativeSidecars: true });
      expect.unreachable();
    } catch (error) {
      expect(isKeywardError(error, 'SECRET_NOT_AGENT_SAFE')).toBe(true);
    }
  });

  it('refuses a container mount of a secret outside its audience', async () => {
    const plan = await fixturePlan(provider);
    const agent = plan.containers.find((container) => container.name === 'agent');
    agent?.secretMounts.push({ secret: 'proxy-open-key', delivery: { type: 'env', variable: 'STOLEN' } });
    const options = kubernetesTargetOptionsSchema.parse(plan.targetOptions);
    expect(() =>
      buildManifests({ plan, options, egressServiceIP: '10.0.0.50', nativeSidecars: true }),
    ).toThrow(/not visible to it/);
  });
});

describe('rotatedPlan', () => {
  it("replaces the rotated provider's part and keeps the requester's mount of the answer", async () => {
    const plan = await fixturePlan(provider);
    const spec = fixtureSpec();
    const request = await composeRotationV2({
      spec,
      providerId: 'proxy',
      change: { credentials: [{ name: 'slack', secret: 'xoxb-raw-slack-credential-1' }] },
      sidecars: { getSidecar: (id) => fixtureSidecars.get(id) },
      target: provider,
      readState: async (providerId) => ({
        metadata: plan.sidecars.find((sidecar) => sidecar.providerId === providerId)?.metadata ?? {},
        exports: plan.sidecars.find((sidecar) => sidecar.providerId === providerId)?.exports ?? {},
        secrets: { 'proxy-for-gateway': 'sealed(kept-gateway-answer)' },
        requests:
          providerId === 'proxy'
            ? [
                {
                  id: 'provider-key',
                  provider: 'proxy',
                  kind: 'sealed-credential',
                  container: 'gateway',
                  from: 'gateway',
                },
              ]
            : [],
      }),
      randomBytes: sequenceBytes(),
    });
    const next = rotatedPlan(storePlan(plan), request);
    const agent = next.containers.find((container) => container.name === 'agent');
    expect(agent?.secretMounts.map((mount) => mount.secret)).toEqual(['proxy-token-slack']);
    expect(Object.keys(agent?.env ?? {})).toEqual(['AGENT_MODE', 'LLM_BASE_URL', 'PROXY_URL']);
    expect(agent?.startAfter).toEqual(['proxy', 'gateway']);
    expect(next.secrets.map((secret) => secret.name).sort()).toEqual([
      'proxy-for-gateway',
      'proxy-open-key',
      'proxy-token-slack',
    ]);
    expect(next.containers.find((container) => container.name === 'gateway')?.secretMounts).toEqual([
      { secret: 'proxy-for-gateway', delivery: { type: 'env', variable: 'PROXY_TOKEN' } },
    ]);
    expect(next.connections).toEqual(plan.connections);
    const gateway = next.containers.find((container) => container.name === 'gateway');
    expect(gateway?.startAfter).toEqual(['proxy']);
    expect(next.redactedSpec).toEqual(request.redactedSpec);
    expect(JSON.stringify(next)).not.toContain('xoxb-raw-slack-credential-1');
  });
});

describe('rollout judgement', () => {
  it('a Deployment is settled when its controller caught up and every replica is available', () => {
    const deployment = (status: Record<string, number>, replicas = 1, generation = 2) =>
      ({ metadata: { generation }, spec: { replicas }, status }) as never;
    expect(
      deploymentSettled(
        deployment({ observedGeneration: 2, replicas: 1, updatedReplicas: 1, availableReplicas: 1 }),
      ),
    ).toBe(true);
    expect(
      deploymentSettled(
        deployment({ observedGeneration: 1, replicas: 1, updatedReplicas: 1, availableReplicas: 1 }),
      ),
    ).toBe(false);
    expect(
      deploymentSettled(
        deployment({ observedGeneration: 2, replicas: 2, updatedReplicas: 1, availableReplicas: 2 }),
      ),
    ).toBe(false);
    expect(deploymentSettled(deployment({ observedGeneration: 2, replicas: 0 }, 0))).toBe(true);
    expect(
      deploymentFailure({
        status: {
          conditions: [
            {
              type: 'ReplicaFailure',
              status: 'True',
              reason: 'FailedCreate',
              message: 'forbidden: PodSecurity',
            },
          ],
        },
      } as never),
    ).toBe('FailedCreate: forbidden: PodSecurity');
  });

  it('reports image pull and scheduling problems with their messages; pull errors are fatal', () => {
    const result = describePod({
      metadata: { name: 'kw-a-agent-1' },
      status: {
        conditions: [
          {
            type: 'PodScheduled',
            status: 'False',
            reason: 'Unschedulable',
            message: '0/3 nodes are available',
          },
        ],
        containerStatuses: [
          {
            name: 'agent',
            image: 'x',
            imageID: '',
            ready: false,
            restartCount: 0,
            state: { waiting: { reason: 'ErrImagePull', message: 'manifest unknown' } },
          },
        ],
      },
    } as never);
    expect(result.notes).toEqual([
      'kw-a-agent-1 not scheduled (Unschedulable): 0/3 nodes are available',
      'kw-a-agent-1/agent waiting (ErrImagePull): manifest unknown',
    ]);
    expect(result.fatal).toBe('kw-a-agent-1/agent waiting (ErrImagePull): manifest unknown');
  });
});

describe('small parts', () => {
  it('paths of the kinds keyward uses, without discovery', () => {
    expect(resourcePath('apps/v1', 'Deployment', 'ns', 'a')).toBe(
      '/apis/apps/v1/namespaces/ns/deployments/a',
    );
    expect(resourcePath('v1', 'Namespace', 'ignored', 'ns')).toBe('/api/v1/namespaces/ns');
    expect(resourcePath('v1', 'Pod', undefined)).toBe('/api/v1/pods');
    expect(() => resourcePath('example.com/v1', 'Widget')).toThrow(/does not know/);
  });

  it('Lease times in MicroTime format (six fractional digits)', () => {
    expect(microTime(new Date('2026-12-02T03:04:05.678Z'))).toBe('2026-12-02T03:04:05.678000Z');
  });

  it('bounded names keep a readable head and a hash', () => {
    const long = `kw-${'x'.repeat(80)}-agent`;
    const bounded = boundedName(long);
    expect(bounded).toHaveLength(63);
    expect(bounded).toMatch(/^kw-x+-[0-9a-f]{8}$/);
    expect(boundedName(`${long}2`)).not.toBe(bounded);
    expect(boundedName('9lives')).toBe('k-9lives');
  });
});

describe('verificationChecks', () => {
  const detail = (networkMode: 'open' | 'proxy-only'): InstanceDetailV2 => ({
    name: 'a',
    target: 'k8s',
    state: 'running',
    networkMode,
    containers: [],
    redactedSpec: {},
    sidecars: [],
  });
  const run = (stdout: string) => ({ exitCode: 0, stdout, stderr: '', timedOut: false });

  it('proxy-only: passes only on timeouts or unreachable networks, never on a refused connection', () => {
    const checks = provider.verificationChecks(detail('proxy-only'));
    expect(checks.map((item) => item.name)).toEqual([
      'no-service-account-token',
      'api-server-blocked',
      'direct-egress-blocked',
      'dns-blocked',
    ]);
    const isolated = run(
      '{"apiServer":"timeout","internet":"ENETUNREACH","dns":"ECONNREFUSED","token":false}',
    );
    expect(checks.map((item) => item.judge(isolated).passed)).toEqual([true, true, true, true]);
    const leaky = run(
      '{"apiServer":"ECONNREFUSED","internet":"connected","dns":"resolved:10.0.0.10","token":true}',
    );
    expect(checks.map((item) => item.judge(leaky).passed)).toEqual([false, false, false, false]);
    expect(checks[0]?.exec).toMatchObject({ container: 'agent', command: ['node', '-'] });
    expect(checks[0]?.judge(run('node: not found')).passed).toBe(false);
  });

  it('open: only the token check (the agent may go around the proxy by design)', () => {
    expect(provider.verificationChecks(detail('open')).map((item) => item.name)).toEqual([
      'no-service-account-token',
    ]);
  });
});

describe('rotatedPlan keeps requests', () => {
  it("keeps what a rotated provider asked of others (the gateway's sealed key stays asked for)", async () => {
    const plan = await fixturePlan(provider);
    const stored = storePlan(plan);
    const gateway = stored.sidecars.find((sidecar) => sidecar.providerId === 'gateway');
    if (!gateway) throw new Error('fixture changed');
    const next = rotatedPlan(stored, {
      providerId: 'gateway',
      redactedSpec: stored.redactedSpec,
      parts: [
        {
          providerId: 'gateway',
          sidecar: { ...gateway, requests: [] },
          containers: stored.containers.filter((container) => container.providerId === 'gateway'),
          secrets: [],
          agentEnv: { LLM_BASE_URL: 'http://gateway.keyward.internal:4000' },
          agentFiles: [],
        },
      ],
    });
    expect(next.sidecars.find((sidecar) => sidecar.providerId === 'gateway')?.requests).toEqual(
      gateway.requests,
    );
    expect(gateway.requests).toHaveLength(1);
    // The proxy's answer stays mounted in the gateway.
    expect(next.containers.find((container) => container.name === 'gateway')?.secretMounts).toEqual([
      { secret: 'proxy-for-gateway', delivery: { type: 'env', variable: 'PROXY_TOKEN' } },
    ]);
  });
});
