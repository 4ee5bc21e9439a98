import { KeywardError } from '../errors/keyward-error.js';
import { AGENT_CONTAINER_NAME } from '../spec/v1/contribution-v1.js';
import type { DeploymentPlanV1, PlannedContainerV1, PlannedSecretV1 } from '../spec/v1/deployment-plan-v1.js';
import type { SidecarRotationStateV1 } from '../spec/v1/sidecar-provider-v1.js';
import type {
  InstanceDetailV1,
  InstanceSummaryV1,
  LogLineV1,
  LogOptionsV1,
  OperationOptionsV1,
  SidecarRotationRequestV1,
  TargetProviderV1,
  VerifyResultV1,
} from '../spec/v1/target-provider-v1.js';

interface StoredInstance {
  plan: DeploymentPlanV1;
  running: boolean;
  createdAt: string;
  logs: LogLineV1[];
}

export interface MemoryTargetProviderOptions {
  id?: string;
  /** Called before every step; throw to inject a failure, await to hold an operation open. */
  beforeStep?: (step: string, instance: string) => void | Promise<void>;
  now?: () => Date;
}

export interface MemoryTargetProvider extends TargetProviderV1 {
  /** What the target holds, for assertions: the current plan of an instance. */
  inspect(name: string): DeploymentPlanV1 | undefined;
  /** Number of runtime calls made, so list() can be checked to be one call. */
  readonly calls: { list: number };
}

function clonePlan(plan: DeploymentPlanV1): DeploymentPlanV1 {
  return structuredClone(plan);
}

/**
 * An in-memory target that follows the TargetProviderV1 contract: idempotent
 * apply with rollback, lifecycle, rotation that keeps the old state on failure.
 * It runs nothing; it is the stand-in for route tests and conformance self-tests.
 */
export function createMemoryTargetProvider(options: MemoryTargetProviderOptions = {}): MemoryTargetProvider {
  const id = options.id ?? 'memory';
  const now = options.now ?? (() => new Date());
  const instances = new Map<string, StoredInstance>();
  const calls = { list: 0 };

  const step = async (
    name: string,
    stepId: string,
    message: string,
    operation: OperationOptionsV1 | undefined,
  ): Promise<void> => {
    operation?.signal?.throwIfAborted();
    operation?.onProgress?.({ step: stepId, status: 'started', message, time: now().toISOString() });
    try {
      await options.beforeStep?.(stepId, name);
    } catch (error) {
      operation?.onProgress?.({
        step: stepId,
        status: 'failed',
        message: `${message} failed: ${error instanceof Error ? error.message : String(error)}`,
        time: now().toISOString(),
      });
      throw error;
    }
    operation?.onProgress?.({ step: stepId, status: 'succeeded', message, time: now().toISOString() });
  };

  const require = (name: string): StoredInstance => {
    const instance = instances.get(name);
    if (!instance) {
      throw new KeywardError({
        code: 'INSTANCE_NOT_FOUND',
        providerId: id,
        message: `No instance "${name}" on target "${id}".`,
      });
    }
    return instance;
  };

  const summary = (name: string, instance: StoredInstance): InstanceSummaryV1 => ({
    name,
    target: id,
    state: instance.running ? 'running' : 'stopped',
    networkMode: instance.plan.network.mode,
    containers: instance.plan.containers.map((container) => ({
      name: container.name,
      providerId: container.providerId,
      image: container.image,
      state: instance.running ? 'running' : 'exited',
      running: instance.running,
    })),
    agentUrl: `http://127.0.0.1:${instance.plan.publish[0]?.hostPort ?? 18789}`,
    createdAt: instance.createdAt,
  });

  const detail = (name: string, instance: StoredInstance): InstanceDetailV1 => ({
    ...summary(name, instance),
    redactedSpec: structuredClone(instance.plan.redactedSpec),
    sidecars: instance.plan.sidecars.map((sidecar) => ({
      providerId: sidecar.providerId,
      metadata: structuredClone(sidecar.metadata),
    })),
  });

  const provider: MemoryTargetProvider = {
    specificationVersion: 'v1',
    id,
    displayName: 'In-memory target (test stand-in)',
    capabilities: {
      networkModes: ['proxy-only', 'open'],
      rotation: true,
      render: true,
      verify: true,
      logsFollow: false,
    },
    calls,
    inspect: (name) => {
      const instance = instances.get(name);
      return instance ? clonePlan(instance.plan) : undefined;
    },
    async detect() {
      return { available: true, strategy: 'memory', runtime: { name: 'memory' } };
    },
    async apply(plan, operation) {
      const name = plan.instance.name;
      const previous = instances.get(name);
      try {
        if (plan.network.internalNetwork) {
          await step(name, 'network.create', `Create network ${plan.network.internalNetwork}`, operation);
        }
        for (const secret of plan.secrets) {
          await step(name, `secret.create:${secret.name}`, `Store secret ${secret.name}`, operation);
        }
        const ordered = [
          ...plan.containers.filter((container) => container.role === 'sidecar'),
          plan.containers[0],
        ];
        for (const container of ordered) {
          if (!container) continue;
          await step(name, `container.start:${container.name}`, `Start ${container.runtimeName}`, operation);
        }
      } catch (error) {
        // Rollback: the instance is exactly as it was before this apply.
        if (previous) instances.set(name, previous);
        else instances.delete(name);
        throw new KeywardError({
          code: 'DEPLOY_FAILED',
          providerId: id,
          message: `Deploy of "${name}" failed and was rolled back: ${error instanceof Error ? error.message : String(error)}`,
          cause: error,
        });
      }
      const stored: StoredInstance = {
        plan: clonePlan(plan),
        running: true,
        createdAt: previous?.createdAt ?? now().toISOString(),
        logs: [
          ...(previous?.logs ?? []),
          ...plan.containers.map((container) => ({
            container: container.name,
            stream: 'stdout' as const,
            line: `${container.runtimeName} started`,
          })),
        ],
      };
      instances.set(name, stored);
      return detail(name, stored);
    },
    async list() {
      calls.list += 1;
      return [...instances.entries()].map(([name, instance]) => summary(name, instance));
    },
    async get(name) {
      return detail(name, require(name));
    },
    async start(name, operation) {
      const instance = require(name);
      await step(name, 'instance.start', `Start ${name}`, operation);
      instance.running = true;
    },
    async stop(name, operation) {
      const instance = require(name);
      await step(name, 'instance.stop', `Stop ${name}`, operation);
      instance.running = false;
    },
    async restart(name, operation) {
      const instance = require(name);
      await step(name, 'instance.restart', `Restart ${name}`, operation);
      instance.running = true;
    },
    logs(name, logOptions?: LogOptionsV1): AsyncIterable<LogLineV1> {
      const instance = require(name);
      const lines = instance.logs.filter(
        (line) => !logOptions?.container || line.container === logOptions.container,
      );
      return (async function* () {
        yield* lines;
      })();
    },
    async delete(name, operation) {
      require(name);
      await step(name, 'instance.delete', `Delete ${name}`, operation);
      instances.delete(name);
    },
    async readSidecarState(name, providerId): Promise<SidecarRotationStateV1> {
      const instance = require(name);
      const sidecar = instance.plan.sidecars.find((candidate) => candidate.providerId === providerId);
      if (!sidecar) {
        throw new KeywardError({
          code: 'UNKNOWN_PROVIDER',
          providerId,
          message: `Instance "${name}" has no sidecar "${providerId}".`,
        });
      }
      const secrets: Record<string, string | undefined> = {};
      for (const secret of instance.plan.secrets) {
        if (secret.providerId === providerId) secrets[secret.name] = secret.value;
      }
      return { metadata: structuredClone(sidecar.metadata), secrets };
    },
    async rotateSecrets(name, request: SidecarRotationRequestV1, operation) {
      const instance = require(name);
      const previous = clonePlan(instance.plan);
      const old = previous.sidecars.find((sidecar) => sidecar.providerId === request.providerId);
      try {
        await step(
          name,
          `rotate.prepare:${request.providerId}`,
          `Prepare new ${request.providerId} credentials`,
          operation,
        );
        const next = clonePlan(previous);
        const agent = next.containers.find(
          (container) => container.name === AGENT_CONTAINER_NAME,
        ) as PlannedContainerV1;
        for (const key of old?.agentEnvKeys ?? []) delete agent.env[key];
        agent.files = agent.files.filter((file) => !(old?.agentFilePaths ?? []).includes(file.path));
        agent.secretMounts = agent.secretMounts.filter(
          (mount) => !(old?.secretNames ?? []).includes(mount.secret),
        );
        Object.assign(agent.env, request.agentEnv);
        agent.files.push(...request.agentFiles);
        for (const secret of request.secrets) {
          if (secret.visibleTo.includes(AGENT_CONTAINER_NAME)) {
            agent.secretMounts.push({ secret: secret.name, delivery: secret.delivery });
          }
        }
        next.containers = [
          agent,
          ...next.containers.filter(
            (container) => container.role === 'sidecar' && container.providerId !== request.providerId,
          ),
          ...request.containers,
        ];
        next.secrets = [
          ...next.secrets.filter((secret: PlannedSecretV1) => secret.providerId !== request.providerId),
          ...request.secrets,
        ];
        next.sidecars = next.sidecars.map((sidecar) =>
          sidecar.providerId === request.providerId ? request.sidecar : sidecar,
        );
        next.redactedSpec = structuredClone(request.redactedSpec);
        await step(
          name,
          `rotate.restart:${request.providerId}`,
          `Restart ${request.providerId} and the agent`,
          operation,
        );
        instance.plan = next;
      } catch (error) {
        instance.plan = previous;
        throw new KeywardError({
          code: 'ROTATION_FAILED',
          providerId: request.providerId,
          message: `Rotation of ${request.providerId} on "${name}" failed; the previous credentials are still in place: ${error instanceof Error ? error.message : String(error)}`,
          cause: error,
        });
      }
      return detail(name, instance);
    },
    async verify(name): Promise<VerifyResultV1> {
      const instance = require(name);
      const isolated = instance.plan.network.mode === 'proxy-only';
      const checks = [
        {
          name: 'direct-egress-blocked',
          passed: isolated,
          evidence: isolated ? 'memory target: agent has no egress network' : 'network mode open',
        },
      ];
      return { passed: checks.every((check) => check.passed), checks };
    },
    render(plan) {
      return `${JSON.stringify({ instance: plan.instance, containers: plan.containers.map((container) => container.runtimeName) }, null, 2)}\n`;
    },
  };
  return provider;
}
