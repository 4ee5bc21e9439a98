import * as z from 'zod';
import { KeywardError } from '../errors/keyward-error.js';
import { AGENT_CONTAINER_NAME } from '../spec/v1/contribution-v1.js';
import type { JsonObject } from '../spec/v1/json-value.js';
import type { DeploymentPlanV2, PlannedContainerV2 } from '../spec/v2/deployment-plan-v2.js';
import type { SidecarStateV2 } from '../spec/v2/sidecar-provider-v2.js';
import type {
  InstanceDetailV2,
  InstanceSummaryV2,
  LogLineV2,
  LogOptionsV2,
  OperationOptionsV2,
  SidecarRotationRequestV2,
  TargetProviderV2,
} from '../spec/v2/target-provider-v2.js';
import type { ExecRequestV2, ExecResultV2 } from '../spec/v2/verification-v2.js';

interface StoredInstance {
  plan: DeploymentPlanV2;
  running: boolean;
  createdAt: string;
  logs: LogLineV2[];
}

export const memoryTargetOptionsSchema = z
  .object({
    /** Where the (pretend) agent port is exposed; only shapes `agentUrl`. */
    hostPort: z.number().int().min(1).max(65535).nullable().optional(),
    hostAddress: z.string().optional(),
  })
  .strict();

/**
 * Two ways to render a plan as plain data, standing for two kinds of runtime: `pods` groups
 * containers into an agent pod and an egress pod with allow-lists (Kubernetes-like), `compose`
 * into services on networks (compose-like). Both come from the same neutral plan.
 */
export type MemoryRenderStyle = 'pods' | 'compose';

export interface MemoryTargetProviderOptions {
  id?: string;
  /** Called before every step; throw to inject a failure, await to hold an operation open. */
  beforeStep?: (step: string, instance: string) => void | Promise<void>;
  now?: () => Date;
  /**
   * What `exec` answers. The in-memory target runs no process; without a handler every exec
   * answers exit 127, which a check judges as failed.
   */
  exec?: (instance: DeploymentPlanV2, request: ExecRequestV2) => ExecResultV2 | Promise<ExecResultV2>;
  renderStyle?: MemoryRenderStyle;
}

export interface MemoryTargetProvider extends TargetProviderV2<z.output<typeof memoryTargetOptionsSchema>> {
  readSidecarState: NonNullable<TargetProviderV2['readSidecarState']>;
  rotateSecrets: NonNullable<TargetProviderV2['rotateSecrets']>;
  exec: NonNullable<TargetProviderV2['exec']>;
  /** What the target holds, for assertions: the current plan of an instance. */
  inspect(name: string): DeploymentPlanV2 | undefined;
  /** Number of runtime calls made, so list() can be checked to be one call. */
  readonly calls: { list: number; exec: number };
  /** The plan as plain data in this target's render style. */
  renderData(plan: DeploymentPlanV2): JsonObject;
}

function clonePlan(plan: DeploymentPlanV2): DeploymentPlanV2 {
  return structuredClone(plan);
}

function podOf(plan: DeploymentPlanV2, container: string): string {
  if (plan.networkMode === 'open' || container === AGENT_CONTAINER_NAME) return 'agent';
  return 'egress';
}

/** Plain-data renderings of a plan for two kinds of runtime (see `MemoryRenderStyle`). */
export function renderPlanData(plan: DeploymentPlanV2, style: MemoryRenderStyle): JsonObject {
  const name = plan.instance.name;
  if (style === 'pods') {
    const pods: Record<string, string[]> = {};
    for (const container of plan.containers) {
      const pod = podOf(plan, container.name);
      pods[pod] = [...(pods[pod] ?? []), container.name];
    }
    const crossPod = plan.connections.filter(
      (connection) => podOf(plan, connection.from) !== podOf(plan, connection.to),
    );
    return {
      pods: Object.entries(pods).map(([pod, containers]) => ({ name: `${name}-${pod}`, containers })),
      policies: Object.keys(pods).map((pod) => ({
        pod: `${name}-${pod}`,
        egressTo: crossPod
          .filter((connection) => podOf(plan, connection.from) === pod)
          .map((connection) => ({ pod: `${name}-${podOf(plan, connection.to)}`, port: connection.port })),
        internet: plan.containers.some(
          (container) => podOf(plan, container.name) === pod && container.egress.type === 'internet',
        ),
        destinations: plan.containers
          .filter((container) => podOf(plan, container.name) === pod)
          .flatMap((container) =>
            container.egress.type === 'destinations' ? container.egress.destinations : [],
          ),
      })),
      secrets: plan.secrets.map((secret) => ({
        name: `${name}-${secret.name}`,
        mountedInto: secret.visibleTo,
      })),
    };
  }
  return {
    services: plan.containers.map((container) => ({
      name: `${name}-${container.name}`,
      networks:
        plan.networkMode === 'open'
          ? ['shared']
          : container.egress.type === 'none'
            ? ['internal']
            : ['internal', 'egress'],
      dependsOn: container.startAfter.map((item) => `${name}-${item}`),
      allowedEgress:
        container.egress.type === 'destinations' ? container.egress.destinations : container.egress.type,
    })),
    firewall: plan.connections.map((connection) => ({
      allow: `${name}-${connection.from} -> ${name}-${connection.to}:${connection.port}`,
    })),
  };
}

/**
 * An in-memory target that follows the TargetProviderV2 contract: idempotent apply with
 * rollback, lifecycle, rotation that keeps the old state on failure, plain-data rendering.
 * It runs nothing; it is the stand-in for route tests and conformance self-tests.
 */
export function createMemoryTargetProvider(options: MemoryTargetProviderOptions = {}): MemoryTargetProvider {
  const id = options.id ?? 'memory';
  const now = options.now ?? (() => new Date());
  const renderStyle = options.renderStyle ?? 'pods';
  const instances = new Map<string, StoredInstance>();
  const calls = { list: 0, exec: 0 };

  const step = async (
    name: string,
    stepId: string,
    message: string,
    operation: OperationOptionsV2 | undefined,
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

  const summary = (name: string, instance: StoredInstance): InstanceSummaryV2 => {
    const hostPort = instance.plan.targetOptions['hostPort'];
    return {
      name,
      target: id,
      state: instance.running ? 'running' : 'stopped',
      networkMode: instance.plan.networkMode,
      containers: instance.plan.containers.map((container) => ({
        name: container.name,
        providerId: container.providerId,
        image: container.image,
        state: instance.running ? 'running' : 'exited',
        running: instance.running,
      })),
      agentUrl: `http://127.0.0.1:${typeof hostPort === 'number' ? hostPort : (instance.plan.ingress[0]?.port ?? 0)}`,
      createdAt: instance.createdAt,
    };
  };

  const detail = (name: string, instance: StoredInstance): InstanceDetailV2 => ({
    ...summary(name, instance),
    redactedSpec: structuredClone(instance.plan.redactedSpec),
    sidecars: instance.plan.sidecars.map((sidecar) => ({
      providerId: sidecar.providerId,
      metadata: structuredClone(sidecar.metadata),
      exports: structuredClone(sidecar.exports),
    })),
  });

  const provider: MemoryTargetProvider = {
    specificationVersion: 'v2',
    id,
    displayName: 'In-memory target (test stand-in)',
    capabilities: {
      networkModes: ['proxy-only', 'open'],
      egress: ['none', 'internet', 'destinations'],
      rotation: true,
      render: true,
      exec: true,
      logsFollow: false,
    },
    configSchema: memoryTargetOptionsSchema,
    calls,
    inspect: (name) => {
      const instance = instances.get(name);
      return instance ? clonePlan(instance.plan) : undefined;
    },
    addressOf: ({ instanceName, networkMode, from, to, port }) => {
      if (networkMode === 'open') return `localhost:${port}`;
      // Containers of one pod share localhost; across pods, a name only this target resolves.
      const sameSide = (from.role === 'agent') === (to.role === 'agent');
      return sameSide ? `localhost:${port}` : `${instanceName}-${to.container}.memory.invalid:${port}`;
    },
    async detect() {
      return { available: true, strategy: 'memory', runtime: { name: 'memory' } };
    },
    async apply(plan, operation) {
      const name = plan.instance.name;
      const previous = instances.get(name);
      try {
        if (plan.networkMode === 'proxy-only') {
          await step(name, 'policy.create', `Allow ${plan.connections.length} connections`, operation);
        }
        for (const secret of plan.secrets) {
          await step(name, `secret.create:${secret.name}`, `Store secret ${secret.name}`, operation);
        }
        // Sidecars in plan order (dependency order), the agent last.
        const ordered = [
          ...plan.containers.filter((container) => container.role === 'sidecar'),
          plan.containers[0],
        ];
        for (const container of ordered) {
          if (!container) continue;
          await step(name, `container.start:${container.name}`, `Start ${name}-${container.name}`, operation);
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
            line: `${name}-${container.name} started`,
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
    logs(name, logOptions?: LogOptionsV2): AsyncIterable<LogLineV2> {
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
    async readSidecarState(name, providerId): Promise<SidecarStateV2> {
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
      return {
        metadata: structuredClone(sidecar.metadata),
        exports: structuredClone(sidecar.exports),
        secrets,
        // What others asked of it, so a rotation keeps its answers visible to those containers.
        requests: instance.plan.sidecars.flatMap((other) =>
          other.requests
            .filter((request) => request.provider === providerId)
            .map((request) => ({ ...request, from: other.providerId })),
        ),
      };
    },
    async rotateSecrets(name, request: SidecarRotationRequestV2, operation) {
      const instance = require(name);
      const previous = clonePlan(instance.plan);
      try {
        const next = clonePlan(previous);
        for (const part of request.parts) {
          await step(
            name,
            `rotate.prepare:${part.providerId}`,
            `Prepare new ${part.providerId} state`,
            operation,
          );
          const old = next.sidecars.find((sidecar) => sidecar.providerId === part.providerId);
          const agent = next.containers.find(
            (container) => container.name === AGENT_CONTAINER_NAME,
          ) as PlannedContainerV2;
          for (const key of old?.agentEnvKeys ?? []) delete agent.env[key];
          agent.files = agent.files.filter((file) => !(old?.agentFilePaths ?? []).includes(file.path));
          const oldSecrets = new Set(old?.secretNames ?? []);
          for (const container of next.containers) {
            container.secretMounts = container.secretMounts.filter((mount) => !oldSecrets.has(mount.secret));
          }
          Object.assign(agent.env, part.agentEnv);
          agent.files.push(...part.agentFiles);
          const replaced = new Map(part.containers.map((container) => [container.name, container]));
          next.containers = next.containers
            .filter((container) => container.providerId !== part.providerId || replaced.has(container.name))
            .map((container) => replaced.get(container.name) ?? container);
          for (const container of part.containers) {
            if (!next.containers.includes(container)) next.containers.push(container);
          }
          next.secrets = [
            ...next.secrets.filter((secret) => secret.providerId !== part.providerId),
            ...part.secrets,
          ];
          for (const secret of part.secrets) {
            for (const container of next.containers) {
              if (
                secret.visibleTo.includes(container.name) &&
                !container.secretMounts.some((mount) => mount.secret === secret.name)
              ) {
                container.secretMounts.push({ secret: secret.name, delivery: secret.delivery });
              }
            }
          }
          next.sidecars = next.sidecars.map((sidecar) =>
            sidecar.providerId === part.providerId ? part.sidecar : sidecar,
          );
        }
        next.redactedSpec = structuredClone(request.redactedSpec);
        await step(
          name,
          `rotate.restart:${request.providerId}`,
          `Restart ${request.parts.map((part) => part.providerId).join(', ')} and the agent`,
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
    async exec(name, request) {
      const instance = require(name);
      calls.exec += 1;
      if (!instance.plan.containers.some((container) => container.name === request.container)) {
        throw new KeywardError({
          code: 'UNKNOWN_CONTAINER',
          providerId: id,
          message: `Instance "${name}" has no container "${request.container}".`,
        });
      }
      if (options.exec) return options.exec(clonePlan(instance.plan), request);
      return {
        exitCode: 127,
        stdout: '',
        stderr: 'the in-memory target runs no processes',
        timedOut: false,
      };
    },
    renderData: (plan) => renderPlanData(plan, renderStyle),
    render(plan) {
      return `${JSON.stringify(renderPlanData(plan, renderStyle), null, 2)}\n`;
    },
  };
  return provider;
}
