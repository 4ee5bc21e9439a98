import { KeywardError } from '../errors/keyward-error.js';
import { labelKeys } from '../labels.js';
import type { DeploymentPlanV1 } from '../spec/v1/deployment-plan-v1.js';
import type { ProgressEventV1, TargetProviderV1 } from '../spec/v1/target-provider-v1.js';
import type { ConformanceViolation } from './sidecar-conformance.js';

export interface TargetConformanceOptions {
  createProvider: () => TargetProviderV1 | Promise<TargetProviderV1>;
  /** A plan for a fresh instance with this name, deployable on the target. */
  createPlan: (instanceName: string) => DeploymentPlanV1 | Promise<DeploymentPlanV1>;
  /** Instance name to use; unique per run avoids clashing with leftovers. */
  instanceName?: string;
}

interface TargetConformanceState {
  provider: TargetProviderV1;
  plan: DeploymentPlanV1;
  name: string;
  events: ProgressEventV1[];
}

async function expectNotFound(operation: () => Promise<unknown>, what: string): Promise<string | undefined> {
  try {
    await operation();
    return `${what} succeeded for an instance that does not exist`;
  } catch (error) {
    return KeywardError.isInstance(error) && error.code === 'INSTANCE_NOT_FOUND'
      ? undefined
      : `${what} threw ${KeywardError.isInstance(error) ? error.code : String(error)} instead of INSTANCE_NOT_FOUND`;
  }
}

/** Ordered: each step runs on the state the previous ones left. */
export const targetConformanceSteps: {
  rule: string;
  check: (state: TargetConformanceState) => Promise<string | undefined>;
}[] = [
  {
    rule: 'declares specification version v1 and capabilities',
    check: async ({ provider }) =>
      provider.specificationVersion !== 'v1'
        ? `specificationVersion is ${JSON.stringify(provider.specificationVersion)}`
        : provider.capabilities?.networkModes?.length
          ? undefined
          : 'capabilities.networkModes is empty',
  },
  {
    rule: 'detects its runtime and says which strategy found it',
    check: async ({ provider }) => {
      const detection = await provider.detect();
      if (!detection.available) return `runtime not available: ${detection.reason ?? 'no reason given'}`;
      return detection.strategy ? undefined : 'detect() gave no strategy name';
    },
  },
  {
    rule: 'get, start, stop, delete and logs of an unknown instance throw INSTANCE_NOT_FOUND',
    check: async ({ provider, name }) => {
      const unknown = `${name}-missing`;
      for (const [what, operation] of [
        ['get', () => provider.get(unknown)],
        ['start', () => provider.start(unknown)],
        ['stop', () => provider.stop(unknown)],
        ['delete', () => provider.delete(unknown)],
        [
          'logs',
          async () => {
            for await (const _line of provider.logs(unknown)) break;
          },
        ],
      ] as const) {
        const problem = await expectNotFound(operation, what);
        if (problem) return problem;
      }
      return undefined;
    },
  },
  {
    rule: 'apply deploys the plan, reports progress and the instance runs',
    check: async (state) => {
      const detail = await state.provider.apply(state.plan, {
        onProgress: (event) => state.events.push(event),
      });
      if (detail.name !== state.name) return `apply returned instance ${detail.name}`;
      if (detail.state !== 'running') return `state after apply is ${detail.state}`;
      if (state.events.length === 0) return 'apply reported no progress';
      if (!state.events.every((event) => event.step && event.message && event.time))
        return 'a progress event lacks step, message or time';
      return undefined;
    },
  },
  {
    rule: 'get returns the redacted spec and every planned container',
    check: async ({ provider, plan, name }) => {
      const detail = await provider.get(name);
      const names = detail.containers.map((container) => container.name).sort();
      const planned = plan.containers.map((container) => container.name).sort();
      if (JSON.stringify(names) !== JSON.stringify(planned))
        return `containers ${names.join(',')} instead of ${planned.join(',')}`;
      if (detail.redactedSpec['name'] !== name) return 'redactedSpec does not describe the instance';
      const text = JSON.stringify(detail);
      if (plan.secrets.some((secret) => secret.value.length >= 6 && text.includes(secret.value)))
        return 'get() exposes a secret value';
      return undefined;
    },
  },
  {
    rule: 'list includes the instance',
    check: async ({ provider, name }) =>
      (await provider.list()).some((instance) => instance.name === name)
        ? undefined
        : 'list() does not include it',
  },
  {
    rule: 'apply is idempotent',
    check: async ({ provider, plan, name }) => {
      const before = (await provider.list()).filter((instance) => instance.name === name);
      await provider.apply(plan);
      const after = (await provider.list()).filter((instance) => instance.name === name);
      if (after.length !== 1 || before.length !== 1) return `expected one instance, found ${after.length}`;
      return after[0]?.state === 'running' ? undefined : `state after second apply is ${after[0]?.state}`;
    },
  },
  {
    rule: 'stop, start and restart change the state',
    check: async ({ provider, name }) => {
      await provider.stop(name);
      const stopped = await provider.get(name);
      if (stopped.state !== 'stopped') return `state after stop is ${stopped.state}`;
      await provider.start(name);
      if ((await provider.get(name)).state !== 'running') return 'not running after start';
      await provider.restart(name);
      return (await provider.get(name)).state === 'running' ? undefined : 'not running after restart';
    },
  },
  {
    rule: 'logs are an async iterable of lines',
    check: async ({ provider, name }) => {
      const lines: unknown[] = [];
      for await (const line of provider.logs(name, { follow: false, tail: 50 })) {
        lines.push(line);
        if (lines.length > 200) break;
      }
      return lines.every((line) => typeof (line as { line?: unknown }).line === 'string')
        ? undefined
        : 'a log entry has no line';
    },
  },
  {
    rule: 'delete removes the instance',
    check: async ({ provider, name }) => {
      await provider.delete(name, { removeVolumes: true });
      if ((await provider.list()).some((instance) => instance.name === name))
        return 'still listed after delete';
      return expectNotFound(() => provider.get(name), 'get after delete');
    },
  },
];

export async function checkTargetProvider(
  options: TargetConformanceOptions,
): Promise<ConformanceViolation[]> {
  const name = options.instanceName ?? `conformance-${Date.now().toString(36)}`;
  const state: TargetConformanceState = {
    provider: await options.createProvider(),
    plan: await options.createPlan(name),
    name,
    events: [],
  };
  const violations: ConformanceViolation[] = [];
  if (state.plan.labels[labelKeys.instance] !== name) {
    violations.push({ rule: 'plan', message: 'createPlan() must return a plan for the given instance name' });
    return violations;
  }
  try {
    for (const { rule, check } of targetConformanceSteps) {
      try {
        const problem = await check(state);
        if (problem !== undefined) violations.push({ rule, message: problem });
      } catch (error) {
        violations.push({
          rule,
          message: `threw: ${error instanceof Error ? error.message : String(error)}`,
        });
      }
    }
  } finally {
    await state.provider.delete(name, { removeVolumes: true }).catch(() => undefined);
  }
  return violations;
}
