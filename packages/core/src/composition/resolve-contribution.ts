import { posix } from 'node:path';
import { dnsLabelPattern } from '../dns-label.js';
import { KeywardError, type KeywardErrorCode } from '../errors/keyward-error.js';
import type { InstanceSpec } from '../instance-spec.js';
import { objectLabels } from '../labels.js';
import type { SecretRedactor } from '../redaction.js';
import { AGENT_CONTAINER_NAME } from '../spec/v1/contribution-v1.js';
import type {
  ConnectionV2,
  EgressV2,
  PlanWarningV2,
  ReceivedRequestV2,
  SidecarContributionV2,
  SidecarRequestV2,
} from '../spec/v2/contribution-v2.js';
import type {
  PlannedContainerV2,
  PlannedFileV2,
  PlannedSecretV2,
  PlannedSidecarV2,
} from '../spec/v2/deployment-plan-v2.js';

export const environmentNamePattern = /^[A-Za-z_][A-Za-z0-9_]*$/;

export interface ResolvedSidecarV2 {
  sidecar: PlannedSidecarV2;
  containers: PlannedContainerV2[];
  secrets: PlannedSecretV2[];
  agentFiles: PlannedFileV2[];
  agentEnv: Record<string, string>;
  warnings: PlanWarningV2[];
}

export function fail(code: KeywardErrorCode, providerId: string, message: string): never {
  throw new KeywardError({ code, providerId, message });
}

/** A provider broke the spec's contract: a bug in the provider, not in the user's config. */
function contractViolation(providerId: string, message: string): never {
  fail('PROVIDER_CONTRACT_VIOLATION', providerId, `${message} This is a bug in sidecar "${providerId}".`);
}

function validateEgress(providerId: string, container: string, egress: EgressV2): void {
  if (egress?.type === 'none' || egress?.type === 'internet') return;
  if (
    egress?.type === 'destinations' &&
    Array.isArray(egress.destinations) &&
    egress.destinations.length > 0 &&
    egress.destinations.every((item) => typeof item === 'string' && item.length > 0)
  ) {
    return;
  }
  contractViolation(
    providerId,
    `Container "${container}" has egress ${JSON.stringify(egress)}; use {type:"none"}, {type:"internet"} or {type:"destinations",destinations:[…]}.`,
  );
}

export interface ResolveContributionInput {
  spec: InstanceSpec;
  providerId: string;
  contribution: SidecarContributionV2;
  /** Providers this one requires that are in the plan (its connections may reach their containers). */
  requires: readonly string[];
  /** Its requests as it made them (a rotation passes the stored ones). */
  requests: readonly (SidecarRequestV2 | PlannedSidecarV2['requests'][number])[];
  /** Requests other providers made of it: its secrets may be visible to their asking containers. */
  received: readonly ReceivedRequestV2[];
  redactor?: SecretRedactor | undefined;
}

/**
 * Turns one provider's contribution into its resolved part of a plan. Checks what can be
 * checked from the contribution alone; the composer checks what spans providers
 * (connections to other providers' containers, secrets for requesters' containers).
 */
export function resolveSidecarContributionV2(input: ResolveContributionInput): ResolvedSidecarV2 {
  const { spec, providerId, contribution } = input;
  const instance = spec.name;
  if (
    !contribution ||
    !Array.isArray(contribution.containers) ||
    !Array.isArray(contribution.secrets) ||
    !Array.isArray(contribution.files)
  ) {
    contractViolation(providerId, 'Its contribution has no containers, secrets or files list.');
  }
  const ownContainers = new Set(contribution.containers.map((container) => container.name));
  const containers: PlannedContainerV2[] = [];
  const seenNames = new Set<string>();
  for (const container of contribution.containers) {
    if (!dnsLabelPattern.test(container.name) || container.name.length > 40) {
      contractViolation(
        providerId,
        `It named a container "${container.name}"; container names must be DNS labels of at most 40 characters.`,
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
    validateEgress(providerId, container.name, container.egress);
    const { ports, env, ...rest } = container;
    containers.push({
      ...rest,
      role: 'sidecar',
      providerId,
      env: { ...(env ?? {}) },
      ports: (ports ?? []).map((port) => ({ ...port })),
      labels: objectLabels(instance, spec.target, providerId, container.name),
      files: [],
      secretMounts: [],
      volumes: [],
      startAfter: [],
    });
  }

  const received = new Map(input.received.map((request) => [`${request.from}/${request.id}`, request]));
  const secrets: PlannedSecretV2[] = [];
  const secretNames = new Set<string>();
  for (const secret of contribution.secrets) {
    if (!dnsLabelPattern.test(secret.name)) {
      contractViolation(providerId, `It named a secret "${secret.name}"; secret names must be DNS labels.`);
    }
    if (secretNames.has(secret.name)) {
      fail(
        'SECRET_NAME_CONFLICT',
        providerId,
        `Sidecar "${providerId}" contributed two secrets named "${secret.name}".`,
      );
    }
    secretNames.add(secret.name);
    if (typeof secret.value !== 'string') {
      contractViolation(providerId, `Secret "${secret.name}" has no string value.`);
    }
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
        // Another provider's container: only the container that asked, through a request.
        const answered = [...received.values()].find(
          (request) => request.id === secret.forRequest && request.container === consumer,
        );
        if (secret.forRequest === undefined || answered === undefined) {
          fail(
            'UNKNOWN_SECRET_CONSUMER',
            providerId,
            `Secret "${secret.name}" of sidecar "${providerId}" is visible to "${consumer}", which is not a container of "${providerId}", nor the agent, nor a container that asked "${providerId}" for it (forRequest).`,
          );
        }
      }
    }
    if (secret.delivery.type === 'env' && !environmentNamePattern.test(secret.delivery.variable)) {
      contractViolation(
        providerId,
        `Secret "${secret.name}" uses an invalid environment variable name "${secret.delivery.variable}".`,
      );
    }
    if (secret.delivery.type === 'file' && !posix.isAbsolute(secret.delivery.path)) {
      contractViolation(
        providerId,
        `Secret "${secret.name}" must be delivered to an absolute path, not "${secret.delivery.path}".`,
      );
    }
    input.redactor?.register(secret.value);
    secrets.push({
      ...secret,
      visibleTo: [...secret.visibleTo],
      providerId,
      labels: objectLabels(instance, spec.target, providerId, secret.name),
    });
    for (const container of containers) {
      if (secret.visibleTo.includes(container.name)) {
        container.secretMounts.push({ secret: secret.name, delivery: secret.delivery });
      }
    }
  }

  const agentFiles: PlannedFileV2[] = [];
  for (const file of contribution.files) {
    let path: string;
    if (file.root === 'skills') {
      const directory = spec.agent.skillsDirectory;
      if (directory === undefined) {
        fail(
          'INVALID_INSTANCE_SPEC',
          providerId,
          `Sidecar "${providerId}" writes ${file.path} into the agent's skills directory, but the instance has none: set agent.skillsDirectory to the folder the agent reads skills from.`,
        );
      }
      // Compared normalized: "/", "/skills/" and "/a/../skills" are directories too.
      const root = posix.normalize(directory);
      path = posix.join(root, file.path);
      const inside = posix.relative(root, path);
      if (posix.isAbsolute(file.path) || inside === '' || inside === '..' || inside.startsWith('../')) {
        contractViolation(providerId, `File "${file.path}" must stay inside the agent's skills directory.`);
      }
    } else {
      if (!posix.isAbsolute(file.path)) {
        contractViolation(providerId, `File "${file.path}" has root "absolute" but a relative path.`);
      }
      path = posix.normalize(file.path);
    }
    const planned: PlannedFileV2 = { path, content: file.content, mode: file.mode ?? 0o644, providerId };
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

  for (const key of Object.keys(contribution.agentEnv ?? {})) {
    if (!environmentNamePattern.test(key)) {
      contractViolation(providerId, `It set an invalid agent environment variable name "${key}".`);
    }
  }

  const connections: ConnectionV2[] = (contribution.connections ?? []).map((connection) => ({
    from: connection.from,
    to: connection.to,
    port: connection.port,
  }));
  for (const connection of connections) {
    const fromOwn = ownContainers.has(connection.from);
    const toOwn = ownContainers.has(connection.to);
    const allowed =
      ((fromOwn || connection.from === AGENT_CONTAINER_NAME) && toOwn) ||
      (fromOwn && !toOwn && connection.to !== AGENT_CONTAINER_NAME);
    if (!allowed) {
      contractViolation(
        providerId,
        `It declared a connection from "${connection.from}" to "${connection.to}"; a provider declares connections from the agent or its own containers to its own, or from its own to a provider it requires.`,
      );
    }
    if (toOwn) {
      const target = containers.find((container) => container.name === connection.to);
      if (!target?.ports.some((port) => port.containerPort === connection.port)) {
        contractViolation(
          providerId,
          `It declared a connection to port ${connection.port} of "${connection.to}", which does not declare that port.`,
        );
      }
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
      agentEnvKeys: [...Object.keys(contribution.agentEnv ?? {}), ...agentSecretVariables].sort(),
      agentFilePaths: agentFiles.map((file) => file.path).sort(),
      requires: [...input.requires],
      requests: input.requests.map((request) => ({
        id: request.id,
        provider: request.provider,
        kind: request.kind,
        container: request.container,
      })),
      exports: contribution.exports ?? {},
      connections,
      metadata: contribution.metadata,
    },
    containers,
    secrets,
    agentFiles,
    agentEnv: { ...(contribution.agentEnv ?? {}) },
    warnings: (contribution.warnings ?? []).map((warning) => ({ ...warning, providerId })),
  };
}

// A secret value must only travel through the secret channel: never in env, argv,
// files, exports or the metadata keyward persists.
function assertNoSecretInPlainFields(
  providerId: string,
  contribution: SidecarContributionV2,
  containers: PlannedContainerV2[],
  agentFiles: PlannedFileV2[],
): void {
  const values = contribution.secrets.map((secret) => secret.value).filter((value) => value.length >= 6);
  if (values.length === 0) return;
  const places: [string, string][] = [
    ['agent environment', JSON.stringify(contribution.agentEnv ?? {})],
    ['metadata', JSON.stringify(contribution.metadata)],
    ['exports', JSON.stringify(contribution.exports ?? {})],
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
