import { randomBytes as nodeRandomBytes } from 'node:crypto';
import { dnsLabelPattern } from '../dns-label.js';
import { KeywardError } from '../errors/keyward-error.js';
import { formatIssues, type InstanceSpec } from '../instance-spec.js';
import { instanceLabels, objectLabels } from '../labels.js';
import type { SecretRedactor } from '../redaction.js';
import { AGENT_CONTAINER_NAME } from '../spec/v1/contribution-v1.js';
import type { JsonObject } from '../spec/v1/json-value.js';
import type { ConnectionV2, ReceivedRequestV2, SidecarRequestV2 } from '../spec/v2/contribution-v2.js';
import type { DeploymentPlanV2, PlannedContainerV2 } from '../spec/v2/deployment-plan-v2.js';
import type { SidecarContextV2, SidecarProviderV2 } from '../spec/v2/sidecar-provider-v2.js';
import type { TargetProviderV2 } from '../spec/v2/target-provider-v2.js';
import { dependencyOrder } from './dependency-order.js';
import { fail, type ResolvedSidecarV2, resolveSidecarContributionV2 } from './resolve-contribution.js';

// biome-ignore lint/suspicious/noExplicitAny: providers carry their own config types.
export type AnySidecarProviderV2 = SidecarProviderV2<any, any>;

export interface SidecarLookupV2 {
  getSidecar(id: string): AnySidecarProviderV2 | undefined;
}

/** The part of a target the composer needs: its addressing, options and capabilities. */
export type TargetForComposition = Pick<
  TargetProviderV2,
  'id' | 'capabilities' | 'configSchema' | 'addressOf'
>;

export interface ComposePlanV2Options {
  spec: InstanceSpec;
  sidecars: SidecarLookupV2;
  target: TargetForComposition;
  randomBytes?: (length: number) => Uint8Array;
  /** Secret values are registered here so logs and responses can redact them. */
  redactor?: SecretRedactor;
}

export function defaultRandomBytes(length: number): Uint8Array {
  return new Uint8Array(nodeRandomBytes(length));
}

/** Validates one sidecar's config with its provider's own schema. */
export function parseSidecarConfigV2<TConfig>(
  provider: SidecarProviderV2<TConfig>,
  config: unknown,
): TConfig {
  const result = provider.configSchema.safeParse(config);
  if (!result.success) {
    const problems = formatIssues(result.error.issues, `sidecars.${provider.id}`);
    throw new KeywardError({
      code: 'INVALID_PROVIDER_CONFIG',
      providerId: provider.id,
      message: `Invalid config for sidecar "${provider.id}": ${problems.join('; ')}`,
      details: { problems },
    });
  }
  return result.data;
}

/** Validates the instance's target options with the target's own schema. */
export function parseTargetOptions(target: TargetForComposition, spec: InstanceSpec): JsonObject {
  const result = target.configSchema.safeParse(spec.targetOptions ?? {});
  if (!result.success) {
    const problems = formatIssues(result.error.issues, 'targetOptions');
    throw new KeywardError({
      code: 'INVALID_INSTANCE_SPEC',
      providerId: target.id,
      message: `Invalid options for target "${target.id}": ${problems.join('; ')}`,
      details: { problems },
    });
  }
  return JSON.parse(JSON.stringify(result.data ?? {})) as JsonObject;
}

export interface ContextInput {
  spec: InstanceSpec;
  target: TargetForComposition;
  targetOptions: JsonObject;
  /** Logical container name → role, for the addresses of containers composed so far. */
  randomBytes: (length: number) => Uint8Array;
  dependencies: Record<string, { exports: JsonObject }>;
  requests: readonly ReceivedRequestV2[];
}

export function createSidecarContextV2(input: ContextInput): SidecarContextV2 {
  const { spec, target } = input;
  const role = (container: string) => (container === AGENT_CONTAINER_NAME ? 'agent' : 'sidecar');
  return {
    instanceName: spec.name,
    networkMode: spec.network.egress,
    target: target.id,
    addressOf: (from, to, port) =>
      target.addressOf({
        instanceName: spec.name,
        networkMode: spec.network.egress,
        targetOptions: input.targetOptions,
        from: { container: from, role: role(from) },
        to: { container: to, role: role(to) },
        port,
      }),
    agent: {
      port: spec.agent.port,
      ...(spec.agent.skillsDirectory === undefined ? {} : { skillsDirectory: spec.agent.skillsDirectory }),
    },
    randomBytes: input.randomBytes,
    dependencies: input.dependencies,
    requests: input.requests,
  };
}

/** Asks each provider for its requests and checks them against the answering provider's schema. */
function collectRequests(
  spec: InstanceSpec,
  providers: Map<string, { provider: AnySidecarProviderV2; config: unknown }>,
  requirements: Map<string, string[]>,
): Map<string, SidecarRequestV2[]> {
  const made = new Map<string, SidecarRequestV2[]>();
  for (const [id, { provider, config }] of providers) {
    const requests = provider.request?.(
      { instanceName: spec.name, networkMode: spec.network.egress, providers: [...providers.keys()].sort() },
      config,
    );
    const ids = new Set<string>();
    for (const request of requests ?? []) {
      if (typeof request.id !== 'string' || ids.has(request.id)) {
        fail(
          'PROVIDER_CONTRACT_VIOLATION',
          id,
          `Sidecar "${id}" made two requests with the id ${JSON.stringify(request.id)}, or one without an id.`,
        );
      }
      ids.add(request.id);
      if (!requirements.get(id)?.includes(request.provider)) {
        fail(
          'PROVIDER_CONTRACT_VIOLATION',
          id,
          `Sidecar "${id}" asked "${request.provider}" for "${request.kind}" without requiring it (or it is not in the instance); a provider may only ask providers it requires.`,
        );
      }
      const answering = providers.get(request.provider)?.provider;
      const schema = answering?.answers?.[request.kind];
      if (!schema) {
        fail(
          'UNSUPPORTED_CAPABILITY',
          id,
          `Sidecar "${id}" asked "${request.provider}" for "${request.kind}", which "${request.provider}" does not answer${answering?.answers ? ` (it answers: ${Object.keys(answering.answers).join(', ')})` : ''}.`,
        );
      }
      const parsed = schema.safeParse(request.payload);
      if (!parsed.success) {
        const problems = formatIssues(parsed.error.issues, `sidecars.${id}`);
        throw new KeywardError({
          code: 'INVALID_PROVIDER_CONFIG',
          providerId: id,
          message: `Sidecar "${id}" cannot ask "${request.provider}" for "${request.kind}": ${problems.join('; ')}`,
          details: { problems },
        });
      }
    }
    made.set(id, requests ?? []);
  }
  return made;
}

/** Builds the agent container from the spec and every sidecar's agent env, files and agent-safe secrets. */
export function buildAgentContainerV2(
  spec: InstanceSpec,
  resolved: readonly ResolvedSidecarV2[],
): PlannedContainerV2 {
  const env: Record<string, string> = { ...spec.agent.env };
  const owners = new Map<string, string>(Object.keys(env).map((key) => [key, 'agent.env']));
  const claim = (key: string, owner: string) => {
    const existing = owners.get(key);
    if (existing !== undefined) {
      fail(
        'ENV_CONFLICT',
        owner,
        `Agent environment variable ${key} is set by both ${existing} and sidecar "${owner}"; remove one.`,
      );
    }
    owners.set(key, owner);
  };
  const files: PlannedContainerV2['files'] = [];
  const filePaths = new Map<string, string>();
  const secretMounts: PlannedContainerV2['secretMounts'] = [];
  for (const part of resolved) {
    for (const [key, value] of Object.entries(part.agentEnv)) {
      claim(key, part.sidecar.providerId);
      env[key] = value;
    }
    for (const secret of part.secrets) {
      if (!secret.visibleTo.includes(AGENT_CONTAINER_NAME)) continue;
      if (secret.delivery.type === 'env') claim(secret.delivery.variable, part.sidecar.providerId);
      secretMounts.push({ secret: secret.name, delivery: secret.delivery });
    }
    for (const file of part.agentFiles) {
      const existing = filePaths.get(file.path);
      if (existing !== undefined) {
        fail(
          'FILE_CONFLICT',
          part.sidecar.providerId,
          `Agent file ${file.path} is written by both sidecar "${existing}" and sidecar "${part.sidecar.providerId}".`,
        );
      }
      filePaths.set(file.path, part.sidecar.providerId);
      files.push(file);
    }
  }
  return {
    name: AGENT_CONTAINER_NAME,
    role: 'agent',
    providerId: AGENT_CONTAINER_NAME,
    image: spec.agent.image,
    ...(spec.agent.command ? { command: [...spec.agent.command] } : {}),
    env: sortRecord(env),
    ports: [{ name: 'agent', containerPort: spec.agent.port, protocol: 'tcp' }],
    egress: spec.network.egress === 'open' ? { type: 'internet' } : { type: 'none' },
    // Hardened like a sidecar: no capabilities, no privilege gain, a read-only root unless the spec opts out.
    security: {
      readOnlyRootFilesystem: spec.agent.readOnlyRootFilesystem,
      dropAllCapabilities: true,
      noNewPrivileges: true,
    },
    tmpfs: ['/tmp'],
    labels: objectLabels(spec.name, spec.target, AGENT_CONTAINER_NAME, AGENT_CONTAINER_NAME),
    files: files.sort((a, b) => a.path.localeCompare(b.path)),
    secretMounts,
    volumes: spec.agent.stateDirectories.map((path, index) => ({ name: `agent-state-${index}`, path })),
    startAfter: resolved.flatMap((part) => part.containers.map((container) => container.name)),
  };
}

function sortRecord(record: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

export function assertNoPortConflictsV2(containers: readonly PlannedContainerV2[]): void {
  const owners = new Map<number, PlannedContainerV2>();
  for (const container of containers) {
    for (const port of container.ports) {
      const owner = owners.get(port.containerPort);
      if (owner && owner !== container) {
        const names = [owner, container].map((item) =>
          item.role === 'agent' ? 'the agent' : `sidecar "${item.providerId}"`,
        );
        throw new KeywardError({
          code: 'PORT_CONFLICT',
          providerId: container.providerId,
          message: `Port ${port.containerPort} is used by both ${names[0]} (container "${owner.name}") and ${names[1]} (container "${container.name}"); configure one of them to use another port.`,
          details: { port: port.containerPort, providers: [owner.providerId, container.providerId] },
        });
      }
      owners.set(port.containerPort, container);
    }
  }
}

/**
 * What spans providers: a connection to another provider's container must name a provider the
 * declaring one requires, and that container's declared port; a secret handed to a requester's
 * container is mounted there.
 */
function linkAcrossProviders(resolved: readonly ResolvedSidecarV2[]): ConnectionV2[] {
  const ownerOf = new Map<string, ResolvedSidecarV2>();
  for (const part of resolved) for (const container of part.containers) ownerOf.set(container.name, part);
  const connections: ConnectionV2[] = [];
  for (const part of resolved) {
    for (const connection of part.sidecar.connections) {
      const owner = ownerOf.get(connection.to);
      if (!owner) {
        fail(
          'UNKNOWN_CONTAINER',
          part.sidecar.providerId,
          `Sidecar "${part.sidecar.providerId}" declared a connection to "${connection.to}", which no sidecar of the instance contributes.`,
        );
      }
      if (owner !== part && !part.sidecar.requires.includes(owner.sidecar.providerId)) {
        fail(
          'PROVIDER_CONTRACT_VIOLATION',
          part.sidecar.providerId,
          `Sidecar "${part.sidecar.providerId}" declared a connection to "${connection.to}" of sidecar "${owner.sidecar.providerId}" without requiring it.`,
        );
      }
      const container = owner.containers.find((candidate) => candidate.name === connection.to);
      if (!container?.ports.some((port) => port.containerPort === connection.port)) {
        fail(
          'PROVIDER_CONTRACT_VIOLATION',
          part.sidecar.providerId,
          `Sidecar "${part.sidecar.providerId}" declared a connection to port ${connection.port} of "${connection.to}", which does not declare that port.`,
        );
      }
      connections.push(connection);
    }
  }
  for (const part of resolved) {
    for (const secret of part.secrets) {
      for (const consumer of secret.visibleTo) {
        if (consumer === AGENT_CONTAINER_NAME || part.sidecar.containerNames.includes(consumer)) continue;
        const owner = ownerOf.get(consumer);
        const container = owner?.containers.find((candidate) => candidate.name === consumer);
        if (!container) {
          fail(
            'UNKNOWN_SECRET_CONSUMER',
            part.sidecar.providerId,
            `Secret "${secret.name}" of sidecar "${part.sidecar.providerId}" is for container "${consumer}", which the sidecar that asked for it did not contribute.`,
          );
        }
        container.secretMounts.push({ secret: secret.name, delivery: secret.delivery });
      }
    }
  }
  return connections;
}

// Container and secret names are unique across all sidecars of an instance.
export function claimNames(
  owners: Map<string, string>,
  objects: readonly { name: string }[],
  providerId: string,
  kind: 'container' | 'secret',
): void {
  for (const { name } of objects) {
    const owner = owners.get(name);
    if (owner) {
      fail(
        kind === 'container' ? 'CONTAINER_NAME_CONFLICT' : 'SECRET_NAME_CONFLICT',
        providerId,
        `Sidecars "${owner}" and "${providerId}" both contribute a ${kind} named "${name}".`,
      );
    }
    owners.set(name, providerId);
  }
}

export function assertTargetSupports(target: TargetForComposition, spec: InstanceSpec): void {
  const mode = spec.network.egress;
  if (!target.capabilities.networkModes.includes(mode)) {
    throw new KeywardError({
      code: 'UNSUPPORTED_CAPABILITY',
      providerId: target.id,
      message: `Target "${target.id}" does not support network mode "${mode}"; use one of: ${target.capabilities.networkModes.join(', ')}.`,
    });
  }
}

function assertEgressSupported(
  target: TargetForComposition,
  containers: readonly PlannedContainerV2[],
): void {
  for (const container of containers) {
    if (!target.capabilities.egress.includes(container.egress.type)) {
      throw new KeywardError({
        code: 'UNSUPPORTED_CAPABILITY',
        providerId: container.providerId,
        message: `Container "${container.name}" asks for egress "${container.egress.type}", which target "${target.id}" cannot enforce (it can: ${target.capabilities.egress.join(', ')}); choose another target or egress.`,
      });
    }
  }
}

/** The redacted spec keyward persists: never a secret value. */
export function redactedSpecOf(
  spec: InstanceSpec,
  targetOptions: JsonObject,
  sidecars: JsonObject,
): JsonObject {
  return {
    apiVersion: spec.apiVersion,
    name: spec.name,
    target: spec.target,
    ...(Object.keys(targetOptions).length === 0 ? {} : { targetOptions }),
    agent: {
      image: spec.agent.image,
      port: spec.agent.port,
      env: spec.agent.env,
      ...(spec.agent.command ? { command: spec.agent.command } : {}),
      ...(spec.agent.skillsDirectory === undefined ? {} : { skillsDirectory: spec.agent.skillsDirectory }),
      ...(spec.agent.stateDirectories.length === 0 ? {} : { stateDirectories: spec.agent.stateDirectories }),
      ...(spec.agent.readOnlyRootFilesystem ? {} : { readOnlyRootFilesystem: false }),
    },
    network: { egress: spec.network.egress },
    sidecars,
  };
}

/**
 * Instance spec + sidecar providers + a target → a target-neutral plan. Pure given the
 * providers and `randomBytes`: the same input gives the same plan. Providers are composed in
 * dependency order; each sees the exports of those it requires and the requests made of it.
 */
export async function composePlanV2(options: ComposePlanV2Options): Promise<DeploymentPlanV2> {
  const { spec, sidecars, target } = options;
  const mode = spec.network.egress;
  if (target.id !== spec.target) {
    throw new KeywardError({
      code: 'INVALID_INPUT',
      providerId: target.id,
      message: `The instance asks for target "${spec.target}" but was composed for target "${target.id}".`,
    });
  }
  assertTargetSupports(target, spec);
  const targetOptions = parseTargetOptions(target, spec);
  const randomBytes = options.randomBytes ?? defaultRandomBytes;

  const providers = new Map<string, { provider: AnySidecarProviderV2; config: unknown }>();
  for (const providerId of Object.keys(spec.sidecars).sort()) {
    if (!dnsLabelPattern.test(providerId)) {
      fail('INVALID_INSTANCE_SPEC', providerId, `Sidecar id "${providerId}" must be a DNS label.`);
    }
    const provider = sidecars.getSidecar(providerId);
    if (!provider) {
      throw new KeywardError({
        code: 'UNKNOWN_PROVIDER',
        providerId,
        message: `The instance asks for sidecar "${providerId}", but no sidecar provider with that id is installed.`,
      });
    }
    if (!provider.capabilities.networkModes.includes(mode)) {
      throw new KeywardError({
        code: 'UNSUPPORTED_CAPABILITY',
        providerId,
        message: `Sidecar "${providerId}" does not support network mode "${mode}"; use one of: ${provider.capabilities.networkModes.join(', ')}.`,
      });
    }
    providers.set(providerId, {
      provider,
      config: parseSidecarConfigV2(provider, spec.sidecars[providerId]),
    });
  }

  const order = dependencyOrder([...providers.values()].map(({ provider }) => provider));
  const requirements = new Map(
    order.map((id) => [
      id,
      (providers.get(id)?.provider.requires ?? [])
        .map((requirement) => requirement.provider)
        .filter((required) => providers.has(required)),
    ]),
  );
  const requestsMade = collectRequests(spec, providers, requirements);

  const resolved: ResolvedSidecarV2[] = [];
  const redactedSidecars: JsonObject = {};
  const containerOwners = new Map<string, string>();
  const secretOwners = new Map<string, string>();
  const exportsById: Record<string, { exports: JsonObject }> = {};
  for (const providerId of order) {
    const entry = providers.get(providerId);
    if (!entry) continue;
    const { provider, config } = entry;
    const requires = requirements.get(providerId) ?? [];
    const received: ReceivedRequestV2[] = [];
    for (const [from, requests] of requestsMade) {
      for (const request of requests) {
        if (request.provider === providerId) received.push({ ...request, from });
      }
    }
    const context = createSidecarContextV2({
      spec,
      target,
      targetOptions,
      randomBytes,
      dependencies: Object.fromEntries(requires.map((id) => [id, exportsById[id] ?? { exports: {} }])),
      requests: received,
    });
    const contribution = await provider.contribute(context, config);
    const part = resolveSidecarContributionV2({
      spec,
      providerId,
      contribution,
      requires,
      requests: requestsMade.get(providerId) ?? [],
      received,
      redactor: options.redactor,
    });
    claimNames(containerOwners, part.containers, providerId, 'container');
    claimNames(secretOwners, part.secrets, providerId, 'secret');
    const required = new Set(requires);
    for (const container of part.containers) {
      container.startAfter = resolved
        .filter((earlier) => required.has(earlier.sidecar.providerId))
        .flatMap((earlier) => earlier.containers.map((item) => item.name));
    }
    exportsById[providerId] = { exports: part.sidecar.exports };
    resolved.push(part);
    redactedSidecars[providerId] = provider.redactConfig(config);
  }
  for (const [from, requests] of requestsMade) {
    const part = resolved.find((item) => item.sidecar.providerId === from);
    for (const request of requests) {
      if (!part?.sidecar.containerNames.includes(request.container)) {
        fail(
          'PROVIDER_CONTRACT_VIOLATION',
          from,
          `Sidecar "${from}" asked "${request.provider}" for "${request.kind}" on behalf of container "${request.container}", which it does not contribute.`,
        );
      }
    }
  }

  const connections = linkAcrossProviders(resolved);
  const agent = buildAgentContainerV2(spec, resolved);
  const containers = [agent, ...resolved.flatMap((part) => part.containers)];
  assertNoPortConflictsV2(containers);
  assertEgressSupported(target, containers);
  return {
    specificationVersion: 'v2',
    instance: { name: spec.name, target: spec.target },
    networkMode: mode,
    labels: instanceLabels(spec.name, spec.target),
    containers,
    secrets: resolved.flatMap((part) => part.secrets),
    sidecars: resolved.map((part) => part.sidecar),
    connections: sortConnections(connections),
    ingress: [{ container: AGENT_CONTAINER_NAME, port: spec.agent.port }],
    targetOptions,
    redactedSpec: redactedSpecOf(spec, targetOptions, redactedSidecars),
    warnings: [
      ...(mode === 'open'
        ? [
            {
              code: 'OPEN_EGRESS',
              message:
                'Network mode "open": the agent shares the network namespace with its sidecars and can reach the internet directly, going around the proxy.',
            },
          ]
        : []),
      ...(spec.agent.readOnlyRootFilesystem
        ? []
        : [
            {
              code: 'WRITABLE_AGENT_ROOT',
              message:
                'agent.readOnlyRootFilesystem is false: the agent can change its own image files; list the directories it writes in agent.stateDirectories and leave the root read-only where you can.',
            },
          ]),
      ...resolved.flatMap((part) => part.warnings),
    ],
  };
}

function sortConnections(connections: ConnectionV2[]): ConnectionV2[] {
  const key = (item: ConnectionV2) =>
    `${item.from}\u0000${item.to}\u0000${String(item.port).padStart(5, '0')}`;
  const unique = new Map(connections.map((item) => [key(item), item]));
  return [...unique.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, item]) => item);
}
