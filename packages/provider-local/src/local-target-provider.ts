import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import {
  AGENT_CONTAINER_NAME,
  type ContainerStatusV1,
  type DeploymentPlanV1,
  type DetectionResultV1,
  type InstanceDetailV1,
  type InstanceStateV1,
  type InstanceSummaryV1,
  KeywardError,
  type LogLineV1,
  type LogOptionsV1,
  labelKeys,
  type OperationOptionsV1,
  objectLabels,
  type PlannedContainerV1,
  type ProbeV1,
  type ProgressListenerV1,
  redact,
  registerSecret,
  runtimeName,
  type SidecarRotationRequestV1,
  type SidecarRotationStateV1,
  type TargetCapabilitiesV1,
  type TargetProviderV1,
  type VerifyCheckV1,
  type VerifyOptionsV1,
  type VerifyResultV1,
} from '@keyward/core';
import type Docker from 'dockerode';
import { execInContainer } from './container-exec.js';
import { containerLogStream, demultiplexLines, mergeIterables } from './container-logs.js';
import { containerCreateOptions, egressNetworkName, helperCreateOptions } from './container-options.js';
import { acquireInstanceLock } from './instance-lock.js';
import {
  decodeRecord,
  encodeRecord,
  helperComponent,
  helperLabels,
  helperRuntimeName,
  type InstanceRecord,
  instanceFilter,
  localLabelKeys,
  planDigest,
  type StoredPlan,
  storePlan,
} from './instance-record.js';
import { rotatedPlan } from './rotated-plan.js';
import {
  type DetectionContext,
  detectRuntime,
  type RuntimeDetectionStrategy,
  runtimeStartHint,
} from './runtime-detection.js';
import {
  containerSummaryName,
  isConflict,
  isNotFound,
  isNotModified,
  matchesAllLabels,
  networkAttachStrategy,
  publishedHostPortFromSummary,
  type RuntimeKind,
  runtimeKindFromVersion,
  splitNetworks,
  volumeWriteStrategy,
} from './runtime-differences.js';
import { verifyScript } from './verify-script.js';
import { type PlannedVolume, packVolumeFiles, plannedVolumes, readArchive } from './volume-files.js';

export const VERSION = '0.1.0';

/** Built by `pnpm images` (`@keyward/images`); configurable for registries. */
export const DEFAULT_NETWORK_HELPER_IMAGE = 'localhost/keyward-network-helper:0.1.0';

export interface LocalProviderSettings {
  /** A dockerode client to use instead of detecting a runtime (tests, custom endpoints). */
  docker?: Docker;
  /** `podman` or `docker`; asked from the runtime's `version` when not given. */
  runtimeKind?: RuntimeKind;
  /** Runtime detection strategies, in order; defaults to env, rootless podman, rootful podman, docker. */
  detectionStrategies?: readonly RuntimeDetectionStrategy[];
  /** Environment, uid and file checks for detection; defaults to this process's. */
  detectionContext?: Partial<DetectionContext>;
  /** Directory for cross-process instance locks. Default: `$TMPDIR/keyward-locks`. */
  lockDirectory?: string;
  /** How long a rotation waits for another one on the same instance. Default 60 s. */
  lockWaitMs?: number;
  /** Image of the port-forwarding / namespace-holding helper container. */
  networkHelperImage?: string;
  /** Target id; instances carry it in their `keyward.dev/target` label. Default `local`. */
  id?: string;
  clock?: () => Date;
  /** Generation ids for volume names; injectable for deterministic tests. */
  generation?: () => string;
  /** Pause between readiness probes. Default 250 ms. */
  readinessIntervalMs?: number;
  /** How files reach read-only volumes; defaults to what the runtime supports (see runtime-differences). */
  volumeWriteStrategy?: 'archive-into-consumer' | 'writer-container';
  /** How containers join several networks; defaults to what the runtime supports (see runtime-differences). */
  networkAttachStrategy?: 'at-create' | 'connect-after-create';
  /** Seconds a container gets to stop before it is killed. Default 5. */
  stopTimeoutSeconds?: number;
  /**
   * Where the agent's persistent data volume is mounted: kept across rotations and by
   * `delete` unless `removeVolumes`. Default: the parent of the agent's skills directory
   * (`/home/node/.openclaw`); `false` for none.
   */
  agentDataPath?: string | false;
}

interface Runtime {
  docker: Docker;
  kind: RuntimeKind;
}

/** Everything created during one apply or rotation, so a failure can take it back. */
interface CreatedResources {
  containers: string[];
  volumes: string[];
  networks: string[];
}

type Emit = ((step: string, status: 'started' | 'succeeded' | 'failed' | 'info', message: string) => void) & {
  /** Aborting stops before the next step; the caller's rollback then removes what was made. */
  signal?: AbortSignal;
};

class StepError extends Error {
  constructor(
    readonly step: string,
    readonly original: unknown,
  ) {
    super(original instanceof Error ? original.message : String(original));
  }
}

function credentialKey(name: string): string {
  return name.toUpperCase().replace(/[^A-Z0-9]/g, '_');
}

/** A sidecar's own probe; the agent is ready when its published port accepts connections. */
function readinessProbe(plan: StoredPlan, container: PlannedContainerV1): ProbeV1 | undefined {
  if (container.readiness) return container.readiness;
  const agentPort = plan.publish[0]?.containerPort;
  return container.role === 'agent' && agentPort !== undefined
    ? { type: 'tcp', port: agentPort, retries: 60 }
    : undefined;
}

/** Sort order that puts the agent first (stop it before its sidecars); reversed for starting. */
function agentFirst(a: PlannedContainerV1, b: PlannedContainerV1): number {
  return (a.role === 'agent' ? 0 : 1) - (b.role === 'agent' ? 0 : 1);
}

function summaryState(summary: Docker.ContainerInfo | undefined): { state: string; running: boolean } {
  if (!summary) return { state: 'missing', running: false };
  return { state: summary.State, running: summary.State === 'running' };
}

export class LocalProvider implements TargetProviderV1 {
  readonly specificationVersion = 'v1' as const;
  readonly id: string;
  readonly displayName = 'Local (podman / docker)';
  readonly capabilities: TargetCapabilitiesV1 = {
    networkModes: ['proxy-only', 'open'],
    rotation: true,
    render: false,
    verify: true,
    logsFollow: true,
  };

  readonly #settings: LocalProviderSettings;
  readonly #helperImage: string;
  #runtime: Promise<Runtime> | undefined;

  constructor(settings: LocalProviderSettings = {}) {
    this.#settings = settings;
    this.id = settings.id ?? 'local';
    this.#helperImage = settings.networkHelperImage ?? DEFAULT_NETWORK_HELPER_IMAGE;
  }

  // ---------------------------------------------------------------- runtime

  async detect(): Promise<DetectionResultV1> {
    if (this.#settings.docker) {
      try {
        const version = await this.#settings.docker.version();
        const kind = this.#settings.runtimeKind ?? runtimeKindFromVersion(version);
        return {
          available: true,
          strategy: 'injected client',
          runtime: { name: kind, version: version.Version },
        };
      } catch (error) {
        return {
          available: false,
          strategy: 'injected client',
          reason: `The injected dockerode client did not answer: ${(error as Error).message}`,
          hint: runtimeStartHint,
        };
      }
    }
    const detected = await detectRuntime({
      ...(this.#settings.detectionStrategies ? { strategies: this.#settings.detectionStrategies } : {}),
      ...(this.#settings.detectionContext ? { context: this.#settings.detectionContext } : {}),
    });
    return detected.result;
  }

  #getRuntime(): Promise<Runtime> {
    this.#runtime ??= (async () => {
      if (this.#settings.docker) {
        const kind =
          this.#settings.runtimeKind ?? runtimeKindFromVersion(await this.#settings.docker.version());
        return { docker: this.#settings.docker, kind };
      }
      const detected = await detectRuntime({
        ...(this.#settings.detectionStrategies ? { strategies: this.#settings.detectionStrategies } : {}),
        ...(this.#settings.detectionContext ? { context: this.#settings.detectionContext } : {}),
      });
      if (!detected.docker || !detected.kind) {
        throw new KeywardError({
          code: 'RUNTIME_UNAVAILABLE',
          providerId: this.id,
          message: `${detected.result.reason} ${detected.result.hint}`,
        });
      }
      return { docker: detected.docker, kind: this.#settings.runtimeKind ?? detected.kind };
    })();
    this.#runtime.catch(() => {
      this.#runtime = undefined;
    });
    return this.#runtime;
  }

  #now(): string {
    return (this.#settings.clock?.() ?? new Date()).toISOString();
  }

  #newGeneration(): string {
    return this.#settings.generation?.() ?? randomBytes(4).toString('hex');
  }

  #emitter(listener: ProgressListenerV1 | undefined, signal?: AbortSignal): Emit {
    const emit: Emit = (step, status, message) =>
      listener?.({ step, status, message: redact(message), time: this.#now() });
    if (signal) emit.signal = signal;
    return emit;
  }

  /** Runs one named step with started/succeeded/failed events; failures carry the step. */
  async #step<T>(emit: Emit, step: string, message: string, action: () => Promise<T>): Promise<T> {
    try {
      emit.signal?.throwIfAborted();
      emit(step, 'started', message);
      const result = await action();
      emit(step, 'succeeded', message);
      return result;
    } catch (error) {
      emit(step, 'failed', `${message}: ${(error as Error).message}`);
      throw error instanceof StepError ? error : new StepError(step, error);
    }
  }

  // ---------------------------------------------------------------- reading state

  async #instanceContainers(docker: Docker, name: string): Promise<Docker.ContainerInfo[]> {
    const filter = instanceFilter(name, this.id);
    return (await docker.listContainers({ all: true, filters: filter })).filter((summary) =>
      matchesAllLabels(summary.Labels, filter),
    );
  }

  #findAgent(containers: Docker.ContainerInfo[]): Docker.ContainerInfo | undefined {
    return containers.find(
      (summary) =>
        summary.Labels[labelKeys.component] === AGENT_CONTAINER_NAME && summary.Labels[localLabelKeys.record],
    );
  }

  async #record(
    docker: Docker,
    name: string,
  ): Promise<{ record: InstanceRecord; containers: Docker.ContainerInfo[] }> {
    const containers = await this.#instanceContainers(docker, name);
    const agent = this.#findAgent(containers);
    if (!agent) throw this.#notFound(name);
    return { record: decodeRecord(agent.Labels[localLabelKeys.record], name), containers };
  }

  #notFound(name: string): KeywardError {
    return new KeywardError({
      code: 'INSTANCE_NOT_FOUND',
      providerId: this.id,
      message: `No instance "${name}" on the local runtime; \`list\` shows the instances that exist.`,
    });
  }

  #summarize(record: InstanceRecord, containers: Docker.ContainerInfo[]): InstanceSummaryV1 {
    const plan = record.plan;
    const byName = new Map(containers.map((summary) => [containerSummaryName(summary), summary]));
    const statuses: ContainerStatusV1[] = plan.containers.map((container) => {
      const summary = byName.get(container.runtimeName);
      return {
        name: container.name,
        providerId: container.providerId,
        image: container.image,
        ...summaryState(summary),
      };
    });
    const helper = byName.get(helperRuntimeName(plan.instance.name));
    const all = [...statuses.map((status) => status.running), summaryState(helper).running];
    const agentPresent = statuses.some(
      (status) => status.name === AGENT_CONTAINER_NAME && status.state !== 'missing',
    );
    let state: InstanceStateV1;
    if (!agentPresent) state = 'failed';
    else if (all.every(Boolean)) state = 'running';
    else if (!all.some(Boolean)) state = 'stopped';
    else state = 'partial';
    const agentPort = plan.publish[0]?.containerPort;
    const published =
      agentPort === undefined ? undefined : publishedHostPortFromSummary(helper?.Ports, agentPort);
    const agent = byName.get(
      plan.containers.find((container) => container.role === 'agent')?.runtimeName ?? '',
    );
    return {
      name: plan.instance.name,
      target: plan.instance.target,
      state,
      networkMode: plan.network.mode,
      containers: statuses,
      ...(published ? { agentUrl: `http://${published.hostAddress}:${published.hostPort}` } : {}),
      ...(agent?.Created ? { createdAt: new Date(agent.Created * 1000).toISOString() } : {}),
    };
  }

  #detail(record: InstanceRecord, containers: Docker.ContainerInfo[]): InstanceDetailV1 {
    return {
      ...this.#summarize(record, containers),
      redactedSpec: record.plan.redactedSpec,
      sidecars: record.plan.sidecars.map((sidecar) => ({
        providerId: sidecar.providerId,
        metadata: sidecar.metadata,
      })),
    };
  }

  async list(): Promise<InstanceSummaryV1[]> {
    const { docker } = await this.#getRuntime();
    // One runtime call, whatever the number of instances: everything comes from labels.
    const filter = { label: [`${labelKeys.managedBy}=keyward`, `${labelKeys.target}=${this.id}`] };
    const containers = (await docker.listContainers({ all: true, filters: filter })).filter((summary) =>
      matchesAllLabels(summary.Labels, filter),
    );
    const byInstance = new Map<string, Docker.ContainerInfo[]>();
    for (const summary of containers) {
      const instance = summary.Labels[labelKeys.instance];
      if (!instance) continue;
      const list = byInstance.get(instance) ?? [];
      list.push(summary);
      byInstance.set(instance, list);
    }
    const summaries: InstanceSummaryV1[] = [];
    for (const [instance, list] of byInstance) {
      const agent = this.#findAgent(list);
      if (!agent) {
        summaries.push({
          name: instance,
          target: this.id,
          state: 'failed',
          networkMode: 'proxy-only',
          containers: list.map((summary) => ({
            name: summary.Labels[labelKeys.component] ?? containerSummaryName(summary),
            providerId: summary.Labels[labelKeys.provider] ?? 'unknown',
            image: summary.Image,
            ...summaryState(summary),
          })),
        });
        continue;
      }
      summaries.push(this.#summarize(decodeRecord(agent.Labels[localLabelKeys.record], instance), list));
    }
    return summaries.sort((a, b) => a.name.localeCompare(b.name));
  }

  async get(name: string): Promise<InstanceDetailV1> {
    const { docker } = await this.#getRuntime();
    const { record, containers } = await this.#record(docker, name);
    return this.#detail(record, containers);
  }

  // ---------------------------------------------------------------- apply

  async apply(plan: DeploymentPlanV1, options: OperationOptionsV1 = {}): Promise<InstanceDetailV1> {
    const runtime = await this.#getRuntime();
    const { docker } = runtime;
    const emit = this.#emitter(options.onProgress, options.signal);
    const name = plan.instance.name;
    if (plan.instance.target !== this.id) {
      throw new KeywardError({
        code: 'INVALID_INPUT',
        providerId: this.id,
        message: `The plan targets "${plan.instance.target}", but this provider is "${this.id}"; compose the plan for target "${this.id}".`,
      });
    }
    for (const secret of plan.secrets) registerSecret(secret.value);
    const stored = storePlan(plan);
    const secretValues = new Map(plan.secrets.map((secret) => [secret.name, secret.value]));
    const digest = planDigest(stored, secretValues, this.#helperImage);

    const existing = await this.#instanceContainers(docker, name);
    if (existing.length > 0) {
      const agent = this.#findAgent(existing);
      const sameDigest = existing.every((summary) => summary.Labels[localLabelKeys.planDigest] === digest);
      if (agent && sameDigest && existing.length === plan.containers.length + 1) {
        if (existing.every((summary) => summary.State === 'running')) {
          emit('apply', 'info', `Instance "${name}" already matches the plan; nothing changed.`);
        } else {
          emit('apply', 'info', `Instance "${name}" matches the plan but is not running; starting it.`);
          await this.start(name, options);
        }
        return this.get(name);
      }
      if (agent) {
        throw new KeywardError({
          code: 'INSTANCE_EXISTS',
          providerId: this.id,
          message: `Instance "${name}" already exists with a different plan; delete it first, or change its credentials with rotateSecrets.`,
        });
      }
      emit('cleanup', 'info', `Removing leftovers of an earlier failed apply of "${name}".`);
      await this.#sweep(docker, name, false);
    }

    const generation = this.#newGeneration();
    const created: CreatedResources = { containers: [], volumes: [], networks: [] };
    const record: InstanceRecord = { version: 1, plan: stored, generation, helperImage: this.#helperImage };
    try {
      const images = await this.#checkImages(runtime, emit, [
        ...new Set([this.#helperImage, ...plan.containers.map((container) => container.image)]),
      ]);
      if (plan.network.mode === 'proxy-only') {
        const internal = plan.network.internalNetwork as string;
        await this.#step(
          emit,
          'network.create:internal',
          `Creating internal network ${internal} (no route out)`,
          async () => {
            await docker.createNetwork({
              Name: internal,
              Internal: true,
              Labels: { ...plan.labels },
              CheckDuplicate: true,
            });
            created.networks.push(internal);
          },
        );
      }
      const egress = egressNetworkName(stored);
      await this.#step(emit, 'network.create:egress', `Creating egress network ${egress}`, async () => {
        await docker.createNetwork({ Name: egress, Labels: { ...plan.labels }, CheckDuplicate: true });
        created.networks.push(egress);
      });
      await this.#createHelper(runtime, emit, stored, digest, generation, created);
      const sidecars = plan.containers.filter((container) => container.role !== 'agent');
      for (const container of sidecars) {
        await this.#deployContainer(runtime, emit, {
          stored,
          container,
          secretValues,
          digest,
          generation,
          images,
          created,
        });
      }
      const agent = plan.containers.find((container) => container.role === 'agent');
      if (!agent) throw new StepError('plan', new Error('the plan has no agent container'));
      await this.#deployContainer(runtime, emit, {
        stored,
        container: agent,
        secretValues,
        digest,
        generation,
        images,
        created,
        record,
      });
    } catch (error) {
      const step = error instanceof StepError ? error.step : 'apply';
      const original = error instanceof StepError ? error.original : error;
      emit('rollback', 'started', `Step ${step} failed; removing everything created for "${name}"`);
      await this.#rollback(docker, created);
      // Volumes this apply created are gone with `created`; a kept data volume stays.
      await this.#sweep(docker, name, false);
      emit('rollback', 'succeeded', `Removed everything created for "${name}"`);
      throw new KeywardError({
        code: KeywardError.isInstance(original) ? original.code : 'DEPLOY_FAILED',
        providerId: this.id,
        message: redact(
          `Applying instance "${name}" failed at step "${step}": ${(original as Error).message}. Everything created for it was removed.`,
        ),
        details: { step },
        cause: original,
      });
    }
    emit('apply', 'succeeded', `Instance "${name}" is running`);
    return this.get(name);
  }

  async #checkImages(
    { docker }: Runtime,
    emit: Emit,
    images: string[],
  ): Promise<Map<string, Docker.ImageInspectInfo>> {
    const found = new Map<string, Docker.ImageInspectInfo>();
    for (const image of images) {
      await this.#step(emit, `image.check:${image}`, `Checking image ${image}`, async () => {
        try {
          found.set(image, await docker.getImage(image).inspect());
          return;
        } catch (error) {
          if (!isNotFound(error)) throw error;
        }
        if (image.startsWith('localhost/')) {
          throw new Error(
            `image ${image} is not present and cannot be pulled (it is built locally); build it with \`pnpm images\` or set another image`,
          );
        }
        const stream = await docker.pull(image);
        await new Promise<void>((resolve, reject) =>
          docker.modem.followProgress(stream, (problem: Error | null) =>
            problem ? reject(problem) : resolve(),
          ),
        );
        found.set(image, await docker.getImage(image).inspect());
      });
    }
    return found;
  }

  async #createHelper(
    runtime: Runtime,
    emit: Emit,
    stored: StoredPlan,
    digest: string,
    generation: string,
    created: CreatedResources,
  ): Promise<void> {
    const options = helperCreateOptions({
      plan: stored,
      image: this.#helperImage,
      kind: runtime.kind,
      labels: helperLabels(stored),
      extraLabels: { [localLabelKeys.planDigest]: digest, [localLabelKeys.generation]: generation },
    });
    await this.#step(
      emit,
      `container.create:${helperComponent}`,
      'Creating the network helper (publishes the agent port)',
      async () => {
        await this.#createContainer(runtime, options);
        created.containers.push(options.name as string);
      },
    );
    await this.#step(emit, `container.start:${helperComponent}`, 'Starting the network helper', async () => {
      await runtime.docker.getContainer(options.name as string).start();
    });
  }

  async #deployContainer(
    runtime: Runtime,
    emit: Emit,
    input: {
      stored: StoredPlan;
      container: PlannedContainerV1;
      secretValues: ReadonlyMap<string, string>;
      digest: string;
      generation: string;
      images: Map<string, Docker.ImageInspectInfo>;
      created: CreatedResources;
      record?: InstanceRecord;
      /** `false`: create and fill only, so a stopped instance stays stopped. Default `true`. */
      start?: boolean;
      /** Where readiness probes run from (the helper, which sees every container). */
    },
  ): Promise<void> {
    const { docker } = runtime;
    const { stored, container, secretValues, created } = input;
    const volumes = plannedVolumes(stored, container, secretValues, input.generation);
    for (const volume of volumes) {
      await this.#step(
        emit,
        `volume.create:${container.name}`,
        `Creating volume ${volume.volumeName} for ${volume.directory}`,
        async () => {
          await docker.createVolume({ Name: volume.volumeName, Labels: volume.labels });
          created.volumes.push(volume.volumeName);
        },
      );
    }
    const dataVolume = container.role === 'agent' ? this.#agentDataVolume(stored) : undefined;
    if (dataVolume) {
      await this.#step(
        emit,
        'volume.ensure:agent-data',
        `Ensuring data volume ${dataVolume.volumeName}`,
        async () => {
          try {
            const existing = await docker.getVolume(dataVolume.volumeName).inspect();
            if (existing.Labels?.[labelKeys.instance] !== stored.instance.name) {
              throw new Error(
                `volume ${dataVolume.volumeName} exists but does not belong to instance "${stored.instance.name}"; remove or rename it`,
              );
            }
          } catch (error) {
            if (!isNotFound(error)) throw error;
            await docker.createVolume({ Name: dataVolume.volumeName, Labels: dataVolume.labels });
            created.volumes.push(dataVolume.volumeName);
          }
        },
      );
    }
    const secretEnv: Record<string, string> = {};
    for (const mount of container.secretMounts) {
      if (mount.delivery.type !== 'env') continue;
      const value = secretValues.get(mount.secret);
      if (value === undefined)
        throw new StepError(`secrets:${container.name}`, new Error(`no value for ${mount.secret}`));
      secretEnv[mount.delivery.variable] = value;
    }
    const options = containerCreateOptions({
      plan: stored,
      container,
      volumes,
      ...(dataVolume ? { dataVolume } : {}),
      secretEnv,
      kind: runtime.kind,
      extraLabels: {
        [localLabelKeys.planDigest]: input.digest,
        [localLabelKeys.generation]: input.generation,
        [localLabelKeys.role]: container.role,
        ...(input.record ? { [localLabelKeys.record]: encodeRecord({ ...input.record, plan: stored }) } : {}),
      },
    });
    await this.#step(
      emit,
      `container.create:${container.name}`,
      `Creating container ${container.runtimeName}`,
      async () => {
        await this.#createContainer(runtime, options);
        created.containers.push(container.runtimeName);
      },
    );
    if (volumes.length > 0) {
      const owner = this.#fileOwner(container, input.images.get(container.image));
      await this.#step(
        emit,
        `files.write:${container.name}`,
        `Writing ${volumes.reduce((count, volume) => count + volume.files.length, 0)} file(s) for ${container.name}`,
        async () => {
          for (const volume of volumes)
            await this.#writeVolume(runtime, stored, container, volume, owner, created);
        },
      );
    }
    if (input.start === false) return;
    await this.#step(
      emit,
      `container.start:${container.name}`,
      `Starting ${container.runtimeName}`,
      async () => {
        await docker.getContainer(container.runtimeName).start();
      },
    );
    const probe = readinessProbe(stored, container);
    if (probe) {
      await this.#step(
        emit,
        `container.ready:${container.name}`,
        `Waiting until ${container.name} is ready`,
        () => this.#waitReady(docker, stored, container, probe),
      );
    }
  }

  #agentDataVolume(
    stored: StoredPlan,
  ): { volumeName: string; directory: string; labels: Record<string, string> } | undefined {
    const setting = this.#settings.agentDataPath;
    if (setting === false) return undefined;
    const skills = (stored.redactedSpec['agent'] as { skillsDirectory?: unknown } | undefined)
      ?.skillsDirectory;
    const directory = setting ?? (typeof skills === 'string' ? posix.dirname(skills) : undefined);
    if (!directory || directory === '/') return undefined;
    return {
      volumeName: runtimeName(stored.instance.name, 'agent-data'),
      directory,
      labels: {
        ...objectLabels(
          stored.instance.name,
          stored.instance.target,
          AGENT_CONTAINER_NAME,
          AGENT_CONTAINER_NAME,
        ),
        [localLabelKeys.volumeKind]: 'data',
      },
    };
  }

  /** Creates a container and joins its networks the way the runtime supports. */
  async #createContainer(runtime: Runtime, options: Docker.ContainerCreateOptions): Promise<void> {
    const strategy = this.#settings.networkAttachStrategy ?? networkAttachStrategy(runtime.kind);
    if (strategy === 'at-create') {
      await runtime.docker.createContainer(options);
      return;
    }
    const { create, connect } = splitNetworks(options);
    await runtime.docker.createContainer(create);
    for (const { network, endpoint } of connect) {
      await runtime.docker.getNetwork(network).connect({ Container: create.name, EndpointConfig: endpoint });
    }
  }

  #fileOwner(
    container: PlannedContainerV1,
    image: Docker.ImageInspectInfo | undefined,
  ): { uid: number; gid: number } {
    const [userPart, groupPart] = (image?.Config?.User ?? '').split(':');
    const imageUid = /^\d+$/.test(userPart ?? '') ? Number(userPart) : 0;
    const imageGid = /^\d+$/.test(groupPart ?? '') ? Number(groupPart) : imageUid;
    const uid = container.security?.runAsUser ?? imageUid;
    return {
      uid,
      gid: container.security?.runAsGroup ?? (container.security?.runAsUser !== undefined ? uid : imageGid),
    };
  }

  async #writeVolume(
    runtime: Runtime,
    stored: StoredPlan,
    container: PlannedContainerV1,
    volume: PlannedVolume,
    owner: { uid: number; gid: number },
    created: CreatedResources,
  ): Promise<void> {
    const { docker } = runtime;
    const strategy = this.#settings.volumeWriteStrategy ?? volumeWriteStrategy(runtime.kind);
    if (strategy === 'archive-into-consumer') {
      await docker
        .getContainer(container.runtimeName)
        .putArchive(packVolumeFiles(volume.files, owner) as unknown as NodeJS.ReadableStream, {
          path: volume.directory,
        });
      return;
    }
    // A never-started container that mounts the volume read-write, only to receive the archive.
    const writerName = `${volume.volumeName}-writer`;
    await docker.createContainer({
      name: writerName,
      Image: this.#helperImage,
      Labels: { ...volume.labels, [localLabelKeys.role]: 'volume-writer' },
      HostConfig: { Binds: [`${volume.volumeName}:/keyward-volume`], NetworkMode: 'none' },
      NetworkDisabled: true,
    });
    created.containers.push(writerName);
    try {
      await docker
        .getContainer(writerName)
        .putArchive(packVolumeFiles(volume.files, owner) as unknown as NodeJS.ReadableStream, {
          path: '/keyward-volume',
        });
    } finally {
      await docker.getContainer(writerName).remove({ force: true });
      created.containers.splice(created.containers.indexOf(writerName), 1);
    }
    void stored;
  }

  async #waitReady(
    docker: Docker,
    stored: StoredPlan,
    container: PlannedContainerV1,
    probe: ProbeV1,
  ): Promise<void> {
    const host = stored.network.mode === 'proxy-only' ? container.name : '127.0.0.1';
    const command = ['node', '/app/main.mjs', 'probe', probe.type, host, String(probe.port)];
    if (probe.type === 'http') command.push(probe.path);
    const attempts = Math.max(probe.retries ?? 30, 1) * 2;
    const interval = this.#settings.readinessIntervalMs ?? 250;
    let last = '';
    for (let attempt = 0; attempt < attempts; attempt += 1) {
      // A slow probe on a loaded machine is one failed attempt, not a failed deploy.
      const result = await execInContainer(docker, helperRuntimeName(stored.instance.name), command, {
        timeoutMs: 15_000,
      }).catch((error: Error) => {
        if (!/timed out/.test(error.message)) throw error;
        return { exitCode: null, stdout: '', stderr: error.message };
      });
      if (result.exitCode === 0) return;
      last = (result.stderr || result.stdout).trim();
      const state = (await docker.getContainer(container.runtimeName).inspect()).State;
      if (!state.Running) {
        const logs = await docker
          .getContainer(container.runtimeName)
          .logs({ stdout: true, stderr: true, tail: 20 });
        const lines: string[] = [];
        for await (const line of demultiplexLines(
          (async function* () {
            yield Buffer.isBuffer(logs) ? logs : Buffer.from(String(logs));
          })(),
          container.name,
        )) {
          lines.push(line.line);
        }
        throw new Error(
          `container ${container.runtimeName} exited with code ${state.ExitCode} before it was ready; last log lines: ${lines.slice(-5).join(' | ') || '(none)'}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, interval));
    }
    throw new Error(
      `${container.name} was not ready after ${attempts} probes (${probe.type} ${host}:${probe.port}): ${last}`,
    );
  }

  async #rollback(docker: Docker, created: CreatedResources): Promise<void> {
    for (const name of [...created.containers].reverse()) {
      await docker
        .getContainer(name)
        .remove({ force: true, v: true })
        .catch(() => undefined);
    }
    for (const name of [...created.volumes].reverse()) {
      await docker
        .getVolume(name)
        .remove()
        .catch(() => undefined);
    }
    for (const name of [...created.networks].reverse()) {
      await docker
        .getNetwork(name)
        .remove()
        .catch(() => undefined);
    }
  }

  /** Removes every labelled object of an instance: containers, networks, then volumes. */
  async #sweep(docker: Docker, name: string, removeVolumes: boolean): Promise<number> {
    const filters = instanceFilter(name, this.id);
    let removed = 0;
    const containers = (await docker.listContainers({ all: true, filters })).filter((summary) =>
      matchesAllLabels(summary.Labels, filters),
    );
    // Containers that join the helper's namespace go first, then the helper.
    const ordered = [
      ...containers.filter((summary) => summary.Labels[labelKeys.component] !== helperComponent),
      ...containers.filter((summary) => summary.Labels[labelKeys.component] === helperComponent),
    ];
    for (const summary of ordered) {
      await docker
        .getContainer(summary.Id)
        .remove({ force: true, v: true })
        .catch((error) => {
          if (!isNotFound(error)) throw error;
        });
      removed += 1;
    }
    const networks = (await docker.listNetworks({ filters })).filter((network) =>
      matchesAllLabels(network.Labels, filters),
    );
    for (const network of networks) {
      const handle = docker.getNetwork(network.Id ?? network.Name);
      // A container that is not the instance's may still be attached (a test upstream, a
      // debugging container): disconnected first, or the network goes while the runtime still
      // holds its port forwards for that container, and they outlive it.
      const attached = await handle.inspect().then(
        (info: { Containers?: Record<string, unknown> | null }) => Object.keys(info.Containers ?? {}),
        () => [] as string[],
      );
      for (const container of attached) {
        await handle.disconnect({ Container: container, Force: true }).catch(() => undefined);
      }
      await handle.remove().catch((error) => {
        if (!isNotFound(error)) throw error;
      });
      removed += 1;
    }
    const { Volumes: volumes } = await docker.listVolumes({ filters });
    for (const volume of (volumes ?? []).filter((candidate) => matchesAllLabels(candidate.Labels, filters))) {
      // File volumes are derived from the plan and hold secrets: always removed.
      if (!removeVolumes && volume.Labels?.[localLabelKeys.volumeKind] !== 'files') continue;
      await docker
        .getVolume(volume.Name)
        .remove()
        .catch((error) => {
          if (!isNotFound(error)) throw error;
        });
      removed += 1;
    }
    return removed;
  }

  // ---------------------------------------------------------------- lifecycle

  #startOrder(record: InstanceRecord): string[] {
    const plan = record.plan;
    return [
      helperRuntimeName(plan.instance.name),
      ...plan.containers
        .filter((container) => container.role !== 'agent')
        .map((container) => container.runtimeName),
      ...plan.containers
        .filter((container) => container.role === 'agent')
        .map((container) => container.runtimeName),
    ];
  }

  async start(name: string, options: OperationOptionsV1 = {}): Promise<void> {
    const { docker } = await this.#getRuntime();
    const emit = this.#emitter(options.onProgress);
    const { record } = await this.#record(docker, name);
    for (const runtimeName of this.#startOrder(record)) {
      await this.#step(emit, `container.start:${runtimeName}`, `Starting ${runtimeName}`, async () => {
        await docker
          .getContainer(runtimeName)
          .start()
          .catch((error) => {
            if (!isNotModified(error)) throw error;
          });
      });
      const container = record.plan.containers.find((candidate) => candidate.runtimeName === runtimeName);
      const probe = container && readinessProbe(record.plan, container);
      if (container && probe) {
        await this.#step(
          emit,
          `container.ready:${container.name}`,
          `Waiting until ${container.name} is ready`,
          () => this.#waitReady(docker, record.plan, container, probe),
        );
      }
    }
  }

  async stop(name: string, options: OperationOptionsV1 = {}): Promise<void> {
    const { docker } = await this.#getRuntime();
    const emit = this.#emitter(options.onProgress);
    const { record } = await this.#record(docker, name);
    for (const runtimeName of this.#startOrder(record).reverse()) {
      await this.#step(emit, `container.stop:${runtimeName}`, `Stopping ${runtimeName}`, async () => {
        await docker
          .getContainer(runtimeName)
          .stop({ t: this.#settings.stopTimeoutSeconds ?? 5 })
          .catch((error) => {
            if (!isNotModified(error) && !isNotFound(error)) throw error;
          });
      });
    }
  }

  async restart(name: string, options: OperationOptionsV1 = {}): Promise<void> {
    await this.stop(name, options);
    await this.start(name, options);
  }

  async *logs(name: string, options: LogOptionsV1 = {}): AsyncIterable<LogLineV1> {
    const { docker } = await this.#getRuntime();
    const { record } = await this.#record(docker, name);
    const containers = record.plan.containers.filter(
      (container) => options.container === undefined || container.name === options.container,
    );
    if (containers.length === 0) {
      throw new KeywardError({
        code: 'UNKNOWN_CONTAINER',
        providerId: this.id,
        message: `Instance "${name}" has no container "${options.container}"; it has: ${record.plan.containers.map((container) => container.name).join(', ')}.`,
      });
    }
    const streams = await Promise.all(
      containers.map(async (container) => {
        const raw = await containerLogStream(docker, container.runtimeName, {
          follow: options.follow ?? false,
          ...(options.tail === undefined ? {} : { tail: options.tail }),
        });
        options.signal?.addEventListener('abort', () =>
          (raw as unknown as { destroy?: () => void }).destroy?.(),
        );
        return demultiplexLines(raw, container.name);
      }),
    );
    try {
      for await (const line of mergeIterables(streams)) {
        if (options.signal?.aborted) return;
        yield { ...line, line: redact(line.line) };
      }
    } catch (error) {
      if (options.signal?.aborted) return;
      throw error;
    }
  }

  async delete(name: string, options: OperationOptionsV1 & { removeVolumes?: boolean } = {}): Promise<void> {
    const { docker } = await this.#getRuntime();
    const emit = this.#emitter(options.onProgress);
    const removed = await this.#step(
      emit,
      'delete',
      `Removing every object labelled with instance "${name}"`,
      () => this.#sweep(docker, name, options.removeVolumes ?? false),
    );
    if (removed === 0) throw this.#notFound(name);
  }

  // ---------------------------------------------------------------- secrets

  /** Reads the current value of every secret of a plan's providers, from where the runtime holds it. */
  async #readSecretValues(
    docker: Docker,
    plan: StoredPlan,
    wanted: (secret: StoredPlan['secrets'][number]) => boolean,
  ): Promise<Map<string, string>> {
    const values = new Map<string, string>();
    const envCache = new Map<string, string[]>();
    for (const secret of plan.secrets.filter(wanted)) {
      const consumers = plan.containers.filter((container) =>
        container.secretMounts.some((mount) => mount.secret === secret.name),
      );
      const consumer = consumers[0];
      if (!consumer) continue;
      let value: string | undefined;
      if (secret.delivery.type === 'env') {
        const variable = secret.delivery.variable;
        let env = envCache.get(consumer.runtimeName);
        if (!env) {
          env = (await docker.getContainer(consumer.runtimeName).inspect()).Config.Env ?? [];
          envCache.set(consumer.runtimeName, env);
        }
        value = env.find((entry) => entry.startsWith(`${variable}=`))?.slice(variable.length + 1);
      } else {
        try {
          const archive = await docker
            .getContainer(consumer.runtimeName)
            .getArchive({ path: secret.delivery.path });
          value = [...(await readArchive(archive)).values()][0];
        } catch (error) {
          if (!isNotFound(error)) throw error;
        }
      }
      if (value !== undefined) {
        registerSecret(value);
        values.set(secret.name, value);
      }
    }
    return values;
  }

  async readSidecarState(name: string, providerId: string): Promise<SidecarRotationStateV1> {
    const { docker } = await this.#getRuntime();
    const { record } = await this.#record(docker, name);
    const sidecar = record.plan.sidecars.find((candidate) => candidate.providerId === providerId);
    if (!sidecar) {
      throw new KeywardError({
        code: 'INVALID_INPUT',
        providerId,
        message: `Instance "${name}" has no sidecar "${providerId}".`,
      });
    }
    const values = await this.#readSecretValues(
      docker,
      record.plan,
      (secret) => secret.providerId === providerId,
    );
    return {
      metadata: sidecar.metadata,
      secrets: Object.fromEntries(
        sidecar.secretNames.map((secretName) => [secretName, values.get(secretName)]),
      ),
    };
  }

  async rotateSecrets(
    name: string,
    request: SidecarRotationRequestV1,
    options: OperationOptionsV1 = {},
  ): Promise<InstanceDetailV1> {
    const runtime = await this.#getRuntime();
    const { docker } = runtime;
    const emit = this.#emitter(options.onProgress);
    for (const secret of request.secrets) registerSecret(secret.value);
    const release = await acquireInstanceLock(name, 'rotateSecrets', {
      directory: this.#settings.lockDirectory ?? join(tmpdir(), 'keyward-locks'),
      waitMs: this.#settings.lockWaitMs ?? 60_000,
    });
    try {
      const { record, containers: summaries } = await this.#record(docker, name);
      const current = record.plan;
      const next = rotatedPlan(current, request);
      const providerId = request.providerId;
      // Values of secrets the rotation keeps (other sidecars' agent-visible tokens) come from the runtime.
      const keptValues = await this.#readSecretValues(
        docker,
        current,
        (secret) => secret.providerId !== providerId,
      );
      const secretValues = new Map([
        ...keptValues,
        ...request.secrets.map((secret) => [secret.name, secret.value] as const),
      ]);
      const affectedNew = next.containers.filter(
        (container) => container.role === 'agent' || container.providerId === providerId,
      );
      const affectedOld = current.containers.filter(
        (container) => container.role === 'agent' || container.providerId === providerId,
      );
      const generation = this.#newGeneration();
      const digest = planDigest(next, secretValues, this.#helperImage);
      const parked = affectedOld.map((container) => ({
        container,
        parkedName: `${container.runtimeName}-previous-${generation}`,
        wasRunning: summaries.some(
          (summary) => containerSummaryName(summary) === container.runtimeName && summary.State === 'running',
        ),
      }));
      // A container new to the plan follows the agent: it runs only if the instance did.
      const agentWasRunning = parked.some((entry) => entry.container.role === 'agent' && entry.wasRunning);
      const startAfterRotation = (container: PlannedContainerV1) =>
        parked.find((entry) => entry.container.name === container.name)?.wasRunning ?? agentWasRunning;
      const created: CreatedResources = { containers: [], volumes: [], networks: [] };
      let parkedCount = 0;
      try {
        // Keep the old containers, stopped and renamed, until the new ones are ready.
        for (const entry of [...parked].sort((a, b) => agentFirst(a.container, b.container))) {
          await this.#step(
            emit,
            `container.park:${entry.container.name}`,
            `Stopping ${entry.container.runtimeName} (kept until the new one is ready)`,
            async () => {
              const handle = docker.getContainer(entry.container.runtimeName);
              await handle.stop({ t: this.#settings.stopTimeoutSeconds ?? 5 }).catch((error) => {
                if (!isNotModified(error)) throw error;
              });
              await handle.rename({ name: entry.parkedName });
              parkedCount += 1;
            },
          );
        }
        // Other containers of the instance keep their plan digest label; the agent's record holds the new plan.
        const images = await this.#checkImages(runtime, emit, [
          ...new Set(affectedNew.map((container) => container.image)),
        ]);
        const ordered = [
          ...affectedNew.filter((container) => container.role !== 'agent'),
          ...affectedNew.filter((container) => container.role === 'agent'),
        ];
        for (const container of ordered) {
          await this.#deployContainer(runtime, emit, {
            stored: next,
            container,
            secretValues,
            digest,
            generation,
            images,
            created,
            start: startAfterRotation(container),
            ...(container.role === 'agent' ? { record: { ...record, plan: next, generation } } : {}),
          });
        }
      } catch (error) {
        const step = error instanceof StepError ? error.step : 'rotate';
        const original = error instanceof StepError ? error.original : error;
        emit('rollback', 'started', `Step ${step} failed; restoring the previous containers of "${name}"`);
        await this.#rollback(docker, created);
        for (const entry of parked.slice(0, parkedCount)) {
          await docker
            .getContainer(entry.parkedName)
            .rename({ name: entry.container.runtimeName })
            .catch(() => undefined);
        }
        for (const entry of [...parked.slice(0, parkedCount)].sort((a, b) =>
          agentFirst(b.container, a.container),
        )) {
          if (entry.wasRunning) {
            await docker
              .getContainer(entry.container.runtimeName)
              .start()
              .catch(() => undefined);
            // Best effort: the old credentials should answer again before we report.
            const probe = readinessProbe(current, entry.container);
            if (probe) await this.#waitReady(docker, current, entry.container, probe).catch(() => undefined);
          }
        }
        emit(
          'rollback',
          'succeeded',
          parked.some((entry) => entry.wasRunning)
            ? `The previous containers of "${name}" run again with the old credentials`
            : `The previous containers of "${name}" are back, stopped, with the old credentials`,
        );
        throw new KeywardError({
          code: 'ROTATION_FAILED',
          providerId: this.id,
          message: redact(
            `Rotating secrets of "${name}" failed at step "${step}": ${(original as Error).message}. The previous credentials are still in place.`,
          ),
          details: { step },
          cause: original,
        });
      }
      // The new containers are ready (or created, if stopped): the old ones and their volumes can go.
      await this.#step(
        emit,
        'cleanup:previous',
        'Removing the previous containers and their volumes',
        async () => {
          for (const entry of parked) {
            await docker
              .getContainer(entry.parkedName)
              .remove({ force: true })
              .catch((error) => {
                if (!isNotFound(error) && !isConflict(error)) throw error;
              });
          }
          const affectedNames = new Set([...affectedOld, ...affectedNew].map((container) => container.name));
          const filter = instanceFilter(name, this.id);
          const { Volumes: volumes } = await docker.listVolumes({ filters: filter });
          for (const volume of (volumes ?? []).filter((candidate) =>
            matchesAllLabels(candidate.Labels, filter),
          )) {
            const labels = volume.Labels ?? {};
            if (
              labels[localLabelKeys.volumeKind] === 'files' &&
              affectedNames.has(labels[labelKeys.component] ?? '') &&
              labels[localLabelKeys.generation] !== generation
            ) {
              await docker
                .getVolume(volume.Name)
                .remove()
                .catch(() => undefined);
            }
          }
        },
      );
      const leftStopped = affectedNew.filter((container) => !startAfterRotation(container));
      if (leftStopped.length > 0) {
        emit(
          'rotate',
          'info',
          `Left ${leftStopped.map((container) => container.runtimeName).join(', ')} stopped, as before the rotation; the next start of "${name}" uses the new secrets`,
        );
      }
      emit('rotate', 'succeeded', `Secrets of sidecar "${providerId}" rotated on "${name}"`);
      return this.get(name);
    } finally {
      await release();
    }
  }

  // ---------------------------------------------------------------- self-test

  async verify(name: string, options: VerifyOptionsV1 = {}): Promise<VerifyResultV1> {
    const { docker } = await this.#getRuntime();
    const { record } = await this.#record(docker, name);
    const agent = record.plan.containers.find((container) => container.role === 'agent');
    if (!agent) throw this.#notFound(name);
    const config = {
      mode: record.plan.network.mode,
      ...(options.allowedUrl ? { allowedUrl: options.allowedUrl } : {}),
      ...(options.unboundUrl ? { unboundUrl: options.unboundUrl } : {}),
      ...(options.directUrl ? { directUrl: options.directUrl } : {}),
      ...(options.credential ? { credentialKey: credentialKey(options.credential) } : {}),
      ...(options.selfSealedToken ? { selfSealedToken: options.selfSealedToken } : {}),
    };
    const result = await execInContainer(docker, agent.runtimeName, ['node', '-'], {
      stdin: verifyScript,
      env: [`KEYWARD_VERIFY=${JSON.stringify(config)}`],
      timeoutMs: 60_000,
    });
    const lastLine = result.stdout.trim().split('\n').pop() ?? '';
    let checks: VerifyCheckV1[];
    try {
      checks = (JSON.parse(lastLine) as { checks: VerifyCheckV1[] }).checks;
    } catch {
      throw new KeywardError({
        code: 'VERIFY_FAILED',
        providerId: this.id,
        message: redact(
          `The self-test could not run inside ${agent.runtimeName} (exit code ${result.exitCode}): ${(result.stderr || result.stdout).trim().slice(0, 400)}. The agent image needs \`node\` on its PATH.`,
        ),
      });
    }
    const redacted = checks.map((check) => ({ ...check, evidence: redact(check.evidence) }));
    return { passed: redacted.every((check) => check.passed), checks: redacted };
  }
}

export function createLocalProvider(settings: LocalProviderSettings = {}): LocalProvider {
  return new LocalProvider(settings);
}
