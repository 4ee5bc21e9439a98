import * as z from 'zod';
import { KeywardError } from '../errors/keyward-error.js';
import { runtimeName } from '../labels.js';
import type { DeploymentPlanV1, PlannedContainerV1, PlannedSecretV1 } from '../spec/v1/deployment-plan-v1.js';
import type {
  InstanceDetailV1,
  SidecarRotationRequestV1,
  TargetProviderV1,
} from '../spec/v1/target-provider-v1.js';
import type { DeploymentPlanV2, PlannedContainerV2 } from '../spec/v2/deployment-plan-v2.js';
import type { InstanceDetailV2, TargetProviderV2 } from '../spec/v2/target-provider-v2.js';

/** What a v1 target understood as options: the agent's published host port and address. */
export const targetV1OptionsSchema = z
  .object({
    hostPort: z.number().int().min(1).max(65535).nullable().optional(),
    hostAddress: z.string().default('127.0.0.1'),
  })
  .strict();

function containerV1(plan: DeploymentPlanV2, container: PlannedContainerV2): PlannedContainerV1 {
  const {
    ports,
    egress,
    volumes: _volumes,
    startAfter: _startAfter,
    resources: _resources,
    ...rest
  } = container;
  if (egress.type === 'destinations') {
    throw new KeywardError({
      code: 'UNSUPPORTED_CAPABILITY',
      providerId: plan.instance.target,
      message: `Container "${container.name}" asks for an egress list, which a v1 target cannot enforce.`,
    });
  }
  return {
    ...rest,
    ports: ports.map((port) => ({ ...port, ...(container.role === 'agent' ? { publish: true } : {}) })),
    egress: egress.type,
    runtimeName: runtimeName(plan.instance.name, container.name),
  };
}

/** The v2 plan in the shape a v1 target expects: runtime names, networks and publish as v1 computed them. */
export function planV1FromV2(plan: DeploymentPlanV2): DeploymentPlanV1 {
  const options = targetV1OptionsSchema.parse(plan.targetOptions);
  const name = plan.instance.name;
  return {
    specificationVersion: 'v1',
    instance: plan.instance,
    network:
      plan.networkMode === 'proxy-only'
        ? {
            mode: plan.networkMode,
            internalNetwork: runtimeName(name, 'internal'),
            egressNetwork: runtimeName(name, 'egress'),
          }
        : { mode: plan.networkMode },
    labels: plan.labels,
    containers: plan.containers.map((container) => containerV1(plan, container)),
    secrets: plan.secrets.map(
      ({ forRequest: _forRequest, ...secret }): PlannedSecretV1 => ({
        ...secret,
        runtimeName: runtimeName(name, secret.name),
      }),
    ),
    sidecars: plan.sidecars.map(
      ({ requires: _r, requests: _q, exports: _e, connections: _c, ...sidecar }) => sidecar,
    ),
    publish: plan.ingress.map((ingress) => ({
      container: ingress.container,
      containerPort: ingress.port,
      hostPort: options.hostPort ?? null,
      hostAddress: options.hostAddress,
    })),
    redactedSpec: plan.redactedSpec,
    warnings: plan.warnings,
  };
}

function detailV2(detail: InstanceDetailV1): InstanceDetailV2 {
  return { ...detail, sidecars: detail.sidecars.map((sidecar) => ({ ...sidecar, exports: {} })) };
}

/**
 * Lets a v1 target plugin run v2 plans whose sidecars it could have run before: addresses as v1
 * computed them (a container's name in proxy-only, localhost in open), no egress lists, no exec,
 * one-part rotations only.
 */
export function adaptTargetProviderV1(
  target: TargetProviderV1,
): TargetProviderV2<z.output<typeof targetV1OptionsSchema>> {
  const { readSidecarState, rotateSecrets, render } = target;
  return {
    specificationVersion: 'v2',
    id: target.id,
    ...(target.displayName === undefined ? {} : { displayName: target.displayName }),
    capabilities: {
      networkModes: [...target.capabilities.networkModes],
      egress: ['none', 'internet'],
      rotation: target.capabilities.rotation,
      render: target.capabilities.render,
      exec: false,
      logsFollow: target.capabilities.logsFollow,
    },
    configSchema: targetV1OptionsSchema,
    addressOf: ({ networkMode, to, port }) =>
      networkMode === 'proxy-only' ? `${to.container}:${port}` : `localhost:${port}`,
    detect: () => target.detect(),
    apply: async (plan, options) => detailV2(await target.apply(planV1FromV2(plan), options)),
    list: () => target.list(),
    get: async (name) => detailV2(await target.get(name)),
    start: (name, options) => target.start(name, options),
    stop: (name, options) => target.stop(name, options),
    restart: (name, options) => target.restart(name, options),
    logs: (name, options) => target.logs(name, options),
    delete: (name, options) => target.delete(name, options),
    ...(readSidecarState
      ? {
          readSidecarState: async (name: string, providerId: string) => ({
            ...(await readSidecarState.call(target, name, providerId)),
            exports: {},
          }),
        }
      : {}),
    ...(rotateSecrets
      ? {
          rotateSecrets: async (name, request, options) => {
            const [part, ...dependents] = request.parts;
            if (!part || dependents.length > 0) {
              throw new KeywardError({
                code: 'UNSUPPORTED_CAPABILITY',
                providerId: target.id,
                message: `Target "${target.id}" implements spec v1 and rotates one sidecar at a time; this change also moves ${dependents.map((item) => `"${item.providerId}"`).join(', ')}.`,
              });
            }
            const planLike = { instance: { name, target: target.id } } as DeploymentPlanV2;
            const v1Request: SidecarRotationRequestV1 = {
              providerId: part.providerId,
              sidecar: (({ requires: _r, requests: _q, exports: _e, connections: _c, ...sidecar }) =>
                sidecar)(part.sidecar),
              containers: part.containers.map((container) => containerV1(planLike, container)),
              secrets: part.secrets.map(({ forRequest: _forRequest, ...secret }) => ({
                ...secret,
                runtimeName: runtimeName(name, secret.name),
              })),
              agentEnv: part.agentEnv,
              agentFiles: part.agentFiles,
              redactedSpec: request.redactedSpec,
            };
            return detailV2(await rotateSecrets.call(target, name, v1Request, options));
          },
        }
      : {}),
    ...(render ? { render: (plan: DeploymentPlanV2) => render.call(target, planV1FromV2(plan)) } : {}),
  };
}
