import { KeywardError } from '../errors/keyward-error.js';
import { labelKeys } from '../labels.js';
import type { DeploymentPlanV2 } from '../spec/v2/deployment-plan-v2.js';
import type { ProgressEventV2, TargetProviderV2 } from '../spec/v2/target-provider-v2.js';
import type { ConformanceViolation } from './sidecar-conformance.js';

export interface TargetConformanceOptions {
  // biome-ignore lint/suspicious/noExplicitAny: any target's options type.
  createProvider: () => TargetProviderV2<any> | Promise<TargetProviderV2<any>>;
  /** A plan for a fresh instance with this name, deployable on the target. */
  createPlan: (instanceName: string) => DeploymentPlanV2 | Promise<DeploymentPlanV2>;
  /** Instance name to use; unique per run avoids clashing with leftovers. */
  instanceName?: string;
  /**
   * A command the agent image can run and what it must print, to check `exec` (targets with
   * `capabilities.exec`). Without it the exec step only checks that an unknown container is refused.
   */
  execProbe?: { command: string[]; stdin?: string; expectStdout: string };
  /**
   * Whether the instance is expected to reach `running` (targets without nodes, such as a bare
   * Kubernetes API server, cannot run pods: they pass `false` and the suite checks `partial`
   * or `running`).
   */
  expectRunning?: boolean;
}

interface TargetConformanceState {
  // biome-ignore lint/suspicious/noExplicitAny: any target's options type.
  provider: TargetProviderV2<any>;
  plan: DeploymentPlanV2;
  name: string;
  events: ProgressEventV2[];
  options: TargetConformanceOptions;
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

function acceptable(state: TargetConformanceState, actual: string): boolean {
  return state.options.expectRunning === false
    ? actual === 'running' || actual === 'partial'
    : actual === 'running';
}

/** Ordered: each step runs on the state the previous ones left. */
export const targetConformanceSteps: {
  rule: string;
  check: (state: TargetConformanceState) => Promise<string | undefined>;
}[] = [
  {
    rule: 'declares specification version v2, capabilities and an options schema',
    check: async ({ provider }) => {
      if (provider.specificationVersion !== 'v2')
        return `specificationVersion is ${JSON.stringify(provider.specificationVersion)}`;
      if (!provider.capabilities?.networkModes?.length) return 'capabilities.networkModes is empty';
      if (!provider.capabilities?.egress?.length) return 'capabilities.egress is empty';
      if (typeof provider.configSchema?.safeParse !== 'function') return 'configSchema is not a zod schema';
      return undefined;
    },
  },
  {
    rule: 'addressOf gives a host:port for every connection of the plan, the same each time',
    check: async ({ provider, plan }) => {
      for (const connection of plan.connections) {
        const request = {
          instanceName: plan.instance.name,
          networkMode: plan.networkMode,
          targetOptions: plan.targetOptions,
          from: { container: connection.from, role: connection.from === 'agent' ? 'agent' : 'sidecar' },
          to: { container: connection.to, role: connection.to === 'agent' ? 'agent' : 'sidecar' },
          port: connection.port,
        } as const;
        const address = provider.addressOf(request);
        if (!/^[^\s:/]+:\d+$/.test(address) || !address.endsWith(`:${connection.port}`))
          return `addressOf(${connection.from} → ${connection.to}:${connection.port}) gave ${JSON.stringify(address)}`;
        if (provider.addressOf(request) !== address) return 'addressOf is not deterministic';
      }
      return undefined;
    },
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
      if (!acceptable(state, detail.state)) return `state after apply is ${detail.state}`;
      if (state.events.length === 0) return 'apply reported no progress';
      if (!state.events.every((event) => event.step && event.message && event.time))
        return 'a progress event lacks step, message or time';
      return undefined;
    },
  },
  {
    rule: 'recoverInterrupted (where the target has it) finds nothing to do on a whole instance and throws INSTANCE_NOT_FOUND for an unknown one',
    check: async ({ provider, name }) => {
      if (!provider.recoverInterrupted) return undefined;
      const recovery = await provider.recoverInterrupted(name);
      if (recovery.outcome !== 'none')
        return `recoverInterrupted of a whole instance gave "${recovery.outcome}" (${recovery.message})`;
      if (!recovery.message) return 'recoverInterrupted gave no message';
      const recover = provider.recoverInterrupted.bind(provider);
      return expectNotFound(() => recover(`${name}-missing`), 'recoverInterrupted');
    },
  },
  {
    rule: 'get returns the redacted spec, every planned container and each sidecar with its exports',
    check: async ({ provider, plan, name }) => {
      const detail = await provider.get(name);
      const names = detail.containers.map((container) => container.name).sort();
      const planned = plan.containers.map((container) => container.name).sort();
      if (JSON.stringify(names) !== JSON.stringify(planned))
        return `containers ${names.join(',')} instead of ${planned.join(',')}`;
      if (detail.redactedSpec['name'] !== name) return 'redactedSpec does not describe the instance';
      for (const sidecar of plan.sidecars) {
        const found = detail.sidecars.find((item) => item.providerId === sidecar.providerId);
        if (!found) return `sidecar ${sidecar.providerId} missing from get()`;
        if (JSON.stringify(found.exports) !== JSON.stringify(sidecar.exports))
          return `sidecar ${sidecar.providerId}: exports not kept`;
      }
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
    rule: 'exec runs in the agent, and refuses an unknown container',
    check: async ({ provider, name, options }) => {
      if (!provider.capabilities.exec)
        return provider.exec ? 'exec() given without capabilities.exec' : undefined;
      if (!provider.exec) return 'capabilities.exec without exec()';
      try {
        await provider.exec(name, { container: 'no-such-container', command: ['true'], timeoutSeconds: 5 });
        return 'exec in an unknown container succeeded';
      } catch (error) {
        if (!KeywardError.isInstance(error)) return `exec in an unknown container threw ${String(error)}`;
      }
      if (!options.execProbe) return undefined;
      const result = await provider.exec(name, {
        container: 'agent',
        command: options.execProbe.command,
        ...(options.execProbe.stdin === undefined ? {} : { stdin: options.execProbe.stdin }),
        timeoutSeconds: 20,
      });
      return result.exitCode === 0 && result.stdout.includes(options.execProbe.expectStdout)
        ? undefined
        : `exec probe gave exit ${result.exitCode}, stdout ${JSON.stringify(result.stdout.slice(0, 200))}`;
    },
  },
  {
    rule: 'apply is idempotent',
    check: async (state) => {
      const { provider, plan, name } = state;
      const before = (await provider.list()).filter((instance) => instance.name === name);
      await provider.apply(plan);
      const after = (await provider.list()).filter((instance) => instance.name === name);
      if (after.length !== 1 || before.length !== 1) return `expected one instance, found ${after.length}`;
      return after[0] && acceptable(state, after[0].state)
        ? undefined
        : `state after second apply is ${after[0]?.state}`;
    },
  },
  {
    rule: 'stop, start and restart change the state',
    check: async (state) => {
      const { provider, name } = state;
      await provider.stop(name);
      const stopped = await provider.get(name);
      if (stopped.state !== 'stopped') return `state after stop is ${stopped.state}`;
      await provider.start(name);
      if (!acceptable(state, (await provider.get(name)).state)) return 'not running after start';
      await provider.restart(name);
      return acceptable(state, (await provider.get(name)).state) ? undefined : 'not running after restart';
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
    options,
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
