import { randomBytes as nodeRandomBytes } from 'node:crypto';
import { posix } from 'node:path';
import { KeywardError } from './errors/keyward-error.js';
import { formatIssues, type InstanceSpec } from './instance-spec.js';
import { instanceLabels, objectLabels, runtimeName } from './labels.js';
import { secretRedactor } from './redaction.js';
import {
  AGENT_CONTAINER_NAME,
  type PlanWarningV1,
  type SidecarContributionV1,
} from './spec/v1/contribution-v1.js';
import type {
  DeploymentPlanV1,
  PlannedContainerV1,
  PlannedFileV1,
  PlannedSecretV1,
  PlannedSidecarV1,
} from './spec/v1/deployment-plan-v1.js';
import type { JsonObject } from './spec/v1/json-value.js';
import type { NetworkMode } from './spec/v1/network-mode.js';
import type { SidecarContextV1, SidecarProviderV1 } from './spec/v1/sidecar-provider-v1.js';
import type { TargetCapabilitiesV1 } from './spec/v1/target-provider-v1.js';

const dnsLabelPattern = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const environmentNamePattern = /^[A-Za-z_][A-Za-z0-9_]*$/;

export interface SidecarLookup {
  getSidecar(id: string): SidecarProviderV1 | undefined;
}

export interface ComposeOptions {
  spec: InstanceSpec;
  sidecars: SidecarLookup;
  /** When given, the plan is checked against what the target can do. */
  target?: { id: string; capabilities: TargetCapabilitiesV1 };
  randomBytes?: (length: number) => Uint8Array;
}

/** The address the agent uses to reach a sidecar, per network mode. */
export function sidecarAddress(mode: NetworkMode, container: string, port: number): string {
  return mode === 'proxy-only' ? `http://${container}:${port}` : `http://localhost:${port}`;
}

export function createSidecarContext(
  spec: InstanceSpec,
  randomBytes: (length: number) => Uint8Array = (length) => new Uint8Array(nodeRandomBytes(length)),
): SidecarContextV1 {
  return {
    instanceName: spec.name,
    networkMode: spec.network.egress,
    addressOf: (container, port) => sidecarAddress(spec.network.egress, container, port),
    agent: { port: spec.agent.port, skillsDirectory: spec.agent.skillsDirectory },
    randomBytes,
  };
}

/** Validates one sidecar's config with its provider's own schema. */
export function parseSidecarConfig<TConfig>(provider: SidecarProviderV1<TConfig>, config: unknown): TConfig {
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

export interface ResolvedSidecar {
  sidecar: PlannedSidecarV1;
  containers: PlannedContainerV1[];
  secrets: PlannedSecretV1[];
  agentFiles: PlannedFileV1[];
  agentEnv: Record<string, string>;
  warnings: PlanWarningV1[];
}

function fail(
  code: ConstructorParameters<typeof KeywardError>[0]['code'],
  providerId: string,
  message: string,
): never {
  throw new KeywardError({ code, providerId, message });
}

/**
 * Turns one provider's contribution into its resolved part of a plan. Exported
 * because a rotation resolves a single new contribution the same way.
 */
export function resolveSidecarContribution(
  spec: InstanceSpec,
  providerId: string,
  contribution: SidecarContributionV1,
): ResolvedSidecar {
  const instance = spec.name;
  const ownContainers = new Set(contribution.containers.map((container) => container.name));
  const containers: PlannedContainerV1[] = [];
  const seenNames = new Set<string>();
  for (const container of contribution.containers) {
    if (!dnsLabelPattern.test(container.name) || container.name.length > 40) {
      fail(
        'INVALID_PROVIDER_CONFIG',
        providerId,
        `Sidecar "${providerId}" named a container "${container.name}"; container names must be DNS labels of at most 40 characters.`,
      );
    }
    if (container.name === AGENT_CONTAINER_NAME) {
      fail(
        'CONTAINER_NAME_CONFLICT',
        providerId,
        `Sidecar "${providerId}" named a container "agent", which is reserved for the agent.`,
      );
    }
    if (seenNames.has(container.name)) {
      fail(
        'CONTAINER_NAME_CONFLICT',
        providerId,
        `Sidecar "${providerId}" contributed two containers named "${container.name}".`,
      );
    }
    seenNames.add(container.name);
    containers.push({
      ...container,
      role: 'sidecar',
      providerId,
      runtimeName: runtimeName(instance, container.name),
      env: { ...(container.env ?? {}) },
      labels: objectLabels(instance, spec.target, providerId, container.name),
      files: [],
      secretMounts: [],
    });
  }

  const secrets: PlannedSecretV1[] = [];
  const secretNames = new Set<string>();
  for (const secret of contribution.secrets) {
    if (!dnsLabelPattern.test(secret.name)) {
      fail(
        'INVALID_PROVIDER_CONFIG',
        providerId,
        `Sidecar "${providerId}" named a secret "${secret.name}"; secret names must be DNS labels.`,
      );
    }
    if (secretNames.has(secret.name)) {
      fail(
        'CONTAINER_NAME_CONFLICT',
        providerId,
        `Sidecar "${providerId}" contributed two secrets named "${secret.name}".`,
      );
    }
    secretNames.add(secret.name);
    if (secret.visibleTo.length === 0) {
      fail(
        'UNKNOWN_SECRET_CONSUMER',
        providerId,
        `Secret "${secret.name}" of sidecar "${providerId}" is visible to no container; list at least one in visibleTo.`,
      );
    }
    for (const consumer of secret.visibleTo) {
      if (consumer === AGENT_CONTAINER_NAME) {
        if (!secret.agentSafe) {
          fail(
            'SECRET_NOT_AGENT_SAFE',
            providerId,
            `Sidecar "${providerId}" made secret "${secret.name}" visible to the agent without declaring it agent-safe; only sealed values may reach the agent.`,
          );
        }
      } else if (!ownContainers.has(consumer)) {
        fail(
          'UNKNOWN_SECRET_CONSUMER',
          providerId,
          `Secret "${secret.name}" of sidecar "${providerId}" is visible to "${consumer}", which is not a container of "${providerId}" nor the agent.`,
        );
      }
    }
    if (secret.delivery.type === 'env' && !environmentNamePattern.test(secret.delivery.variable)) {
      fail(
        'INVALID_PROVIDER_CONFIG',
        providerId,
        `Secret "${secret.name}" of sidecar "${providerId}" uses an invalid environment variable name "${secret.delivery.variable}".`,
      );
    }
    if (secret.delivery.type === 'file' && !posix.isAbsolute(secret.delivery.path)) {
      fail(
        'INVALID_PROVIDER_CONFIG',
        providerId,
        `Secret "${secret.name}" of sidecar "${providerId}" must be delivered to an absolute path, not "${secret.delivery.path}".`,
      );
    }
    secretRedactor.register(secret.value);
    secrets.push({
      ...secret,
      providerId,
      runtimeName: runtimeName(instance, secret.name),
      labels: objectLabels(instance, spec.target, providerId, secret.name),
    });
    for (const container of containers) {
      if (secret.visibleTo.includes(container.name)) {
        container.secretMounts.push({ secret: secret.name, delivery: secret.delivery });
      }
    }
  }

  const agentFiles: PlannedFileV1[] = [];
  for (const file of contribution.files) {
    const path =
      file.root === 'skills' ? posix.join(spec.agent.skillsDirectory, file.path) : posix.normalize(file.path);
    if (file.root === 'absolute' && !posix.isAbsolute(file.path)) {
      fail(
        'INVALID_PROVIDER_CONFIG',
        providerId,
        `File "${file.path}" of sidecar "${providerId}" has root "absolute" but a relative path.`,
      );
    }
    if (
      file.root === 'skills' &&
      (posix.isAbsolute(file.path) ||
        path.split('/').includes('..') ||
        !path.startsWith(`${spec.agent.skillsDirectory}/`))
    ) {
      fail(
        'INVALID_PROVIDER_CONFIG',
        providerId,
        `File "${file.path}" of sidecar "${providerId}" must stay inside the agent's skills directory.`,
      );
    }
    const planned: PlannedFileV1 = { path, content: file.content, mode: file.mode ?? 0o644, providerId };
    if (file.container === AGENT_CONTAINER_NAME) {
      agentFiles.push(planned);
    } else {
      const container = containers.find((candidate) => candidate.name === file.container);
      if (!container) {
        fail(
          'UNKNOWN_CONTAINER',
          providerId,
          `Sidecar "${providerId}" wrote a file to "${file.container}", which is not one of its containers nor the agent.`,
        );
      }
      container.files.push(planned);
    }
  }

  for (const key of Object.keys(contribution.agentEnv)) {
    if (!environmentNamePattern.test(key)) {
      fail(
        'INVALID_PROVIDER_CONFIG',
        providerId,
        `Sidecar "${providerId}" set an invalid agent environment variable name "${key}".`,
      );
    }
  }

  assertNoSecretInPlainFields(providerId, contribution, containers, agentFiles);

  const agentSecretVariables = secrets
    .filter((secret) => secret.visibleTo.includes(AGENT_CONTAINER_NAME) && secret.delivery.type === 'env')
    .map((secret) => (secret.delivery.type === 'env' ? secret.delivery.variable : ''));
  return {
    sidecar: {
      providerId,
      containerNames: containers.map((container) => container.name),
      secretNames: secrets.map((secret) => secret.name),
      agentEnvKeys: [...Object.keys(contribution.agentEnv), ...agentSecretVariables].sort(),
      agentFilePaths: agentFiles.map((file) => file.path).sort(),
      metadata: contribution.metadata,
    },
    containers,
    secrets,
    agentFiles,
    agentEnv: { ...contribution.agentEnv },
    warnings: (contribution.warnings ?? []).map((warning) => ({ ...warning, providerId })),
  };
}

// A secret value must only travel through the secret channel: never in env,
// argv, files or the metadata keyward persists.
function assertNoSecretInPlainFields(
  providerId: string,
  contribution: SidecarContributionV1,
  containers: PlannedContainerV1[],
  agentFiles: PlannedFileV1[],
): void {
  const values = contribution.secrets.map((secret) => secret.value).filter((value) => value.length >= 6);
  if (values.length === 0) return;
  const places: [string, string][] = [
    ['agent environment', JSON.stringify(contribution.agentEnv)],
    ['metadata', JSON.stringify(contribution.metadata)],
    ...containers.map((container): [string, string] => [
      `container "${container.name}" env or command`,
      JSON.stringify([container.env, container.command ?? []]),
    ]),
    ...[...agentFiles, ...containers.flatMap((container) => container.files)].map(
      (file): [string, string] => [`file ${file.path}`, file.content],
    ),
  ];
  for (const [place, text] of places) {
    if (values.some((value) => text.includes(value) || text.includes(JSON.stringify(value).slice(1, -1)))) {
      fail(
        'SECRET_IN_PLAIN_FIELD',
        providerId,
        `Sidecar "${providerId}" put a secret value in its ${place}; secrets must be contributed through "secrets".`,
      );
    }
  }
}

/** Builds the agent container from the spec and every sidecar's agent env, files and agent-safe secrets. */
export function buildAgentContainer(
  spec: InstanceSpec,
  resolved: readonly ResolvedSidecar[],
): PlannedContainerV1 {
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
  const files: PlannedFileV1[] = [];
  const filePaths = new Map<string, string>();
  const secretMounts: PlannedContainerV1['secretMounts'] = [];
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
    ports: [{ name: 'agent', containerPort: spec.agent.port, protocol: 'tcp', publish: true }],
    egress: spec.network.egress === 'open' ? 'internet' : 'none',
    runtimeName: runtimeName(spec.name, AGENT_CONTAINER_NAME),
    labels: objectLabels(spec.name, spec.target, AGENT_CONTAINER_NAME, AGENT_CONTAINER_NAME),
    files: files.sort((a, b) => a.path.localeCompare(b.path)),
    secretMounts,
  };
}

function sortRecord(record: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function assertNoPortConflicts(containers: readonly PlannedContainerV1[]): void {
  const owners = new Map<number, PlannedContainerV1>();
  for (const container of containers) {
    for (const port of container.ports ?? []) {
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

// Container and secret names are unique across all sidecars of an instance.
function claimNames(
  owners: Map<string, string>,
  objects: readonly { name: string }[],
  providerId: string,
  kind: 'container' | 'secret',
): void {
  for (const { name } of objects) {
    const owner = owners.get(name);
    if (owner) {
      fail(
        'CONTAINER_NAME_CONFLICT',
        providerId,
        `Sidecars "${owner}" and "${providerId}" both contribute a ${kind} named "${name}".`,
      );
    }
    owners.set(name, providerId);
  }
}

/**
 * Instance spec + sidecar providers → a target-neutral plan. Pure given the
 * providers and `randomBytes`: the same input gives the same plan.
 */
export async function composePlan(options: ComposeOptions): Promise<DeploymentPlanV1> {
  const { spec, sidecars, target } = options;
  const mode = spec.network.egress;
  if (target && !target.capabilities.networkModes.includes(mode)) {
    throw new KeywardError({
      code: 'UNSUPPORTED_CAPABILITY',
      providerId: target.id,
      message: `Target "${target.id}" does not support network mode "${mode}"; use one of: ${target.capabilities.networkModes.join(', ')}.`,
    });
  }
  const context = createSidecarContext(spec, options.randomBytes);
  const resolved: ResolvedSidecar[] = [];
  const redactedSidecars: JsonObject = {};
  const containerOwners = new Map<string, string>();
  const secretOwners = new Map<string, string>();
  for (const providerId of Object.keys(spec.sidecars).sort()) {
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
    const config = parseSidecarConfig(provider, spec.sidecars[providerId]);
    const contribution = await provider.contribute(context, config);
    const part = resolveSidecarContribution(spec, providerId, contribution);
    claimNames(containerOwners, part.containers, providerId, 'container');
    claimNames(secretOwners, part.secrets, providerId, 'secret');
    resolved.push(part);
    redactedSidecars[providerId] = provider.redactConfig(config);
  }
  const agent = buildAgentContainer(spec, resolved);
  const containers = [agent, ...resolved.flatMap((part) => part.containers)];
  assertNoPortConflicts(containers);
  const labels = instanceLabels(spec.name, spec.target);
  return {
    specificationVersion: 'v1',
    instance: { name: spec.name, target: spec.target },
    network:
      mode === 'proxy-only'
        ? {
            mode,
            internalNetwork: runtimeName(spec.name, 'internal'),
            egressNetwork: runtimeName(spec.name, 'egress'),
          }
        : { mode },
    labels,
    containers,
    secrets: resolved.flatMap((part) => part.secrets),
    sidecars: resolved.map((part) => part.sidecar),
    publish: [
      {
        container: AGENT_CONTAINER_NAME,
        containerPort: spec.agent.port,
        hostPort: spec.network.hostPort ?? null,
        hostAddress: spec.network.hostAddress,
      },
    ],
    redactedSpec: {
      apiVersion: spec.apiVersion,
      name: spec.name,
      target: spec.target,
      agent: {
        image: spec.agent.image,
        port: spec.agent.port,
        env: spec.agent.env,
        ...(spec.agent.command ? { command: spec.agent.command } : {}),
        skillsDirectory: spec.agent.skillsDirectory,
      },
      network: {
        egress: spec.network.egress,
        ...(spec.network.hostPort == null ? {} : { hostPort: spec.network.hostPort }),
        hostAddress: spec.network.hostAddress,
      },
      sidecars: redactedSidecars,
    },
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
      ...resolved.flatMap((part) => part.warnings),
    ],
  };
}

export interface ComposeRotationOptions<TChange> {
  /** The instance spec as the target persisted it (secrets removed). */
  spec: InstanceSpec;
  provider: SidecarProviderV1<unknown, TChange>;
  current: import('./spec/v1/sidecar-provider-v1.js').SidecarRotationStateV1;
  change: unknown;
  randomBytes?: (length: number) => Uint8Array;
}

/**
 * A rotation: validate the change with the provider's schema, let the provider
 * build its new contribution, and resolve it exactly as a deploy would.
 */
export async function composeRotation<TChange>(
  options: ComposeRotationOptions<TChange>,
): Promise<import('./spec/v1/target-provider-v1.js').SidecarRotationRequestV1> {
  const { spec, provider } = options;
  if (!provider.rotation) {
    throw new KeywardError({
      code: 'ROTATION_NOT_SUPPORTED',
      providerId: provider.id,
      message: `Sidecar "${provider.id}" does not support changes after install.`,
    });
  }
  const parsed = provider.rotation.changeSchema.safeParse(options.change);
  if (!parsed.success) {
    const problems = formatIssues(parsed.error.issues);
    throw new KeywardError({
      code: 'INVALID_PROVIDER_CONFIG',
      providerId: provider.id,
      message: `Invalid change for sidecar "${provider.id}": ${problems.join('; ')}`,
      details: { problems },
    });
  }
  const context = createSidecarContext(spec, options.randomBytes);
  const contribution = await provider.rotation.rotate(context, options.current, parsed.data);
  const part = resolveSidecarContribution(spec, provider.id, contribution);
  // The persisted spec follows the change, without its secrets.
  // The change only names what it changes (credentials); everything else keeps its saved value.
  const saved = spec.sidecars[provider.id];
  const nextConfig = provider.configSchema.safeParse(
    saved && typeof saved === 'object' && parsed.data && typeof parsed.data === 'object'
      ? { ...saved, ...parsed.data }
      : parsed.data,
  );
  const redactedSpec = {
    ...spec,
    sidecars: {
      ...spec.sidecars,
      [provider.id]: nextConfig.success ? provider.redactConfig(nextConfig.data) : spec.sidecars[provider.id],
    },
  } as unknown as JsonObject;
  return {
    providerId: provider.id,
    sidecar: part.sidecar,
    containers: part.containers,
    secrets: part.secrets,
    agentEnv: part.agentEnv,
    agentFiles: part.agentFiles,
    redactedSpec,
  };
}
