import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { PassThrough, Writable } from 'node:stream';
import {
  type AddressRequestV2,
  AGENT_CONTAINER_NAME,
  type ContainerStatusV2,
  type DeploymentPlanV2,
  type DetectionResultV2,
  type ExecRequestV2,
  type ExecResultV2,
  type InstanceDetailV2,
  type InstanceStateV2,
  type InstanceSummaryV2,
  KeywardError,
  type LogLineV2,
  type LogOptionsV2,
  labelKeys,
  managedByValue,
  type OperationOptionsV2,
  type ProgressListenerV2,
  type RenderedSecretV2,
  type RenderOptionsV2,
  type RenderSecretValuesV2,
  redact,
  registerSecret,
  type SidecarRotationRequestV2,
  type SidecarStateV2,
  type TargetCapabilitiesV2,
  type TargetProviderV2,
} from '@keyward/core';
import {
  Exec,
  KubeConfig,
  type KubernetesObject,
  Log,
  type Middleware,
  type V1ConfigMap,
  type V1Deployment,
  type V1Pod,
  type V1Secret,
  type V1Service,
  type V1Status,
  VersionApi,
} from '@kubernetes/client-node';
import {
  decodeRecord,
  type InstanceRecord,
  recordDataKey,
  restorePlan,
  type StoredPlanV2,
} from './instance-record.js';
import {
  apiErrorMessage,
  isConflict,
  KubernetesApi,
  type KubernetesRequest,
  statusOf,
} from './kubernetes-api.js';
import {
  audienceSecrets,
  buildManifests,
  type InstanceManifests,
  kubernetesLabelKeys,
  podOf,
} from './manifests.js';
import { agentHostName, instanceNamespace, instanceObjectName } from './object-names.js';
import { objectsToYaml } from './render-yaml.js';
import { objectsForSecretValues, renderedSecretsOf, secretValuesChoice } from './rendered-secrets.js';
import { deploymentSettled, waitForRollout } from './rollout.js';
import { rotatedPlan } from './rotated-plan.js';
import { acquireLease } from './rotation-lease.js';
import { type KubernetesTargetOptions, kubernetesTargetOptionsSchema } from './target-options.js';
import { kubernetesVerificationChecks } from './verification-checks.js';

export const VERSION = '0.1.0';

export interface KubernetesProviderSettings {
  /** The kubeconfig to use; default `KubeConfig.loadFromDefault()` (KUBECONFIG, ~/.kube/config, in-cluster). */
  kubeConfig?: KubeConfig;
  /**
   * Contexts instances may name in `targetOptions.context`; `list` and `get` look in each.
   * Default: the kubeconfig's current context only.
   */
  contexts?: readonly string[];
  /**
   * Namespaces keyward may use. When given, `list` and lookups read only these (one call per
   * namespace and kind) and instances must name one of them; RBAC can then be namespaced.
   * Default: any namespace (cluster-wide lists).
   */
  namespaces?: readonly string[];
  /** Target id; instances carry it in their `keyward.dev/target` label. Default `k8s`. */
  id?: string;
  /** Sees every API request (counting, tracing). */
  onRequest?: (request: KubernetesRequest) => void;
  /** Extra client-node middleware for every request (tests impersonate with it). */
  middleware?: readonly Middleware[];
  clock?: () => Date;
  /** This process's name in rotation Leases. Default: host, pid and a random suffix. */
  identity?: string;
  /** How long a rotation Lease outlives a holder that stopped renewing. Default 30 s. */
  leaseDurationSeconds?: number;
  /** How long a rotation waits for another one on the same instance. Default 60 s. */
  lockWaitMs?: number;
  /** How long apply, start and rotations wait for a Deployment to become available. Default 300 s. */
  rolloutTimeoutMs?: number;
  /** Pause between status reads while waiting. Default 1 s. */
  pollIntervalMs?: number;
  /**
   * Runs between two apply steps (the step id is given); tests inject failures with it.
   * A throw fails the apply at that step, which then rolls back.
   */
  beforeStep?: (step: string) => void | Promise<void>;
}

type Emit = (step: string, status: 'started' | 'succeeded' | 'failed' | 'info', message: string) => void;

class StepError extends Error {
  constructor(
    readonly step: string,
    readonly original: unknown,
  ) {
    super(original instanceof Error ? original.message : String(original));
  }
}

interface Located {
  api: KubernetesApi;
  namespace: string;
  record: InstanceRecord;
  context: string | undefined;
}

/** What one apply changed, so a failure can take it back. */
interface Change {
  object: KubernetesObject;
  /** The object as it was before, when it existed; absent: this apply created it. */
  previous?: KubernetesObject;
}

const deploymentSelector = (instance: string, pod: 'agent' | 'egress') =>
  `${labelKeys.instance}=${instance},${labelKeys.managedBy}=${managedByValue},${kubernetesLabelKeys.pod}=${pod}`;

/** Kinds an instance owns, deleted in this order (what runs first, what it needs after). */
const ownedKinds: readonly [apiVersion: string, kind: string][] = [
  ['apps/v1', 'Deployment'],
  ['v1', 'Service'],
  ['networking.k8s.io/v1', 'NetworkPolicy'],
  ['v1', 'Secret'],
  ['v1', 'ConfigMap'],
  ['v1', 'ServiceAccount'],
  ['coordination.k8s.io/v1', 'Lease'],
];

function identityOf(object: KubernetesObject): string {
  return `${object.kind}/${object.metadata?.namespace ?? ''}/${object.metadata?.name ?? ''}`;
}

/** The parts of a read object that a replace may send back. */
function restorable(previous: KubernetesObject, resourceVersion: string | undefined): KubernetesObject {
  const { status: _status, metadata, ...rest } = previous as KubernetesObject & { status?: unknown };
  return {
    ...rest,
    metadata: {
      name: metadata?.name,
      namespace: metadata?.namespace,
      labels: metadata?.labels,
      annotations: metadata?.annotations,
      ...(resourceVersion ? { resourceVersion } : {}),
    },
  } as KubernetesObject;
}

function versionAtLeast(
  major: string | undefined,
  minor: string | undefined,
  wanted: [number, number],
): boolean {
  const majorNumber = Number.parseInt(major ?? '', 10);
  const minorNumber = Number.parseInt((minor ?? '').replace(/\D.*$/, ''), 10);
  if (Number.isNaN(majorNumber) || Number.isNaN(minorNumber)) return false;
  return majorNumber > wanted[0] || (majorNumber === wanted[0] && minorNumber >= wanted[1]);
}

export class KubernetesProvider implements TargetProviderV2<KubernetesTargetOptions> {
  readonly specificationVersion = 'v2' as const;
  readonly id: string;
  readonly displayName = 'Kubernetes';
  readonly capabilities: TargetCapabilitiesV2 = {
    networkModes: ['proxy-only', 'open'],
    egress: ['none', 'internet', 'destinations'],
    rotation: true,
    render: true,
    exec: true,
    logsFollow: true,
  };
  readonly configSchema = kubernetesTargetOptionsSchema;

  readonly #settings: KubernetesProviderSettings;
  readonly #identity: string;
  #kubeConfig: KubeConfig | undefined;
  readonly #apis = new Map<string, KubernetesApi>();
  readonly #nativeSidecarSupport = new Map<string, Promise<boolean>>();

  constructor(settings: KubernetesProviderSettings = {}) {
    this.#settings = settings;
    this.id = settings.id ?? 'k8s';
    this.#identity = settings.identity ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  }

  // ---------------------------------------------------------------- addressing and render

  addressOf(request: AddressRequestV2): string {
    const { from, to, port } = request;
    const options = this.configSchema.parse(request.targetOptions ?? {});
    if (to.role === 'agent') {
      if (from.role === 'agent') return `localhost:${port}`;
      const namespace = options.namespace ?? instanceNamespace(request.instanceName);
      return `${instanceObjectName(request.instanceName, 'agent')}.${namespace}.svc:${port}`;
    }
    // `open`: one pod. `proxy-only`: sidecars share the egress pod.
    if (request.networkMode === 'open' || from.role === 'sidecar') return `localhost:${port}`;
    // The agent has no DNS: this name is in its /etc/hosts (hostAliases → the egress Service IP).
    return `${agentHostName(to.container)}:${port}`;
  }

  #options(plan: Pick<DeploymentPlanV2, 'targetOptions'>): KubernetesTargetOptions {
    const result = this.configSchema.safeParse(plan.targetOptions ?? {});
    if (!result.success) {
      throw new KeywardError({
        code: 'INVALID_INSTANCE_SPEC',
        providerId: this.id,
        message: `Invalid options for target "${this.id}": ${result.error.issues.map((issue) => `targetOptions.${issue.path.join('.')}: ${issue.message}`).join('; ')}`,
      });
    }
    return result.data;
  }

  #manifests(plan: DeploymentPlanV2): InstanceManifests {
    const options = this.#options(plan);
    return buildManifests({
      plan,
      options,
      egressServiceIP: options.egressServiceIP,
      nativeSidecars: options.nativeSidecars !== 'never',
      context: options.context,
    });
  }

  /**
   * Deterministic manifests: native sidecars unless the options say `never`. By default the
   * Secrets come without their values, so the output can be committed; the values of the same
   * plan come with `include` (everything) or `only` (just the Secrets).
   */
  render(plan: DeploymentPlanV2, renderOptions: RenderOptionsV2 = {}): string {
    const secretValues = secretValuesChoice(renderOptions.secretValues);
    const manifests = this.#manifests(plan);
    const title = `keyward ${VERSION}: instance "${plan.instance.name}" (${plan.networkMode}) for Kubernetes.`;
    const notes: Record<RenderSecretValuesV2, string[]> = {
      omit: [
        'Secrets are printed without their values (keyward.dev/values: omitted); their pods wait until they hold',
        'the keys in keyward.dev/keys. The values must come from the same render: keyward render --secrets-file.',
      ],
      include: [
        "The Secrets below hold credentials (the proxy's open key, sealed tokens): never commit this file unencrypted.",
      ],
      only: [
        "The Secrets of this instance, with their values (the proxy's open key, sealed tokens), for the manifests",
        'rendered from the same plan: apply or seal them apart; never commit this file unencrypted.',
      ],
    };
    return objectsToYaml(
      objectsForSecretValues(manifests.objects, secretValues),
      [title, ...notes[secretValues]].join('\n'),
    );
  }

  renderedSecrets(plan: DeploymentPlanV2): RenderedSecretV2[] {
    const manifests = this.#manifests(plan);
    return renderedSecretsOf(audienceSecrets(plan), manifests.namespace);
  }

  // ---------------------------------------------------------------- clients

  #baseKubeConfig(): KubeConfig {
    if (!this.#kubeConfig) {
      if (this.#settings.kubeConfig) this.#kubeConfig = this.#settings.kubeConfig;
      else {
        const loaded = new KubeConfig();
        try {
          loaded.loadFromDefault();
        } catch (error) {
          // client-node reports a missing or broken file with the bare fs/YAML error.
          throw new KeywardError({
            code: 'RUNTIME_UNAVAILABLE',
            providerId: this.id,
            message: `The kubeconfig could not be read (${error instanceof Error ? error.message : String(error)}): point KUBECONFIG at a readable kubeconfig, or unset it to use ~/.kube/config.`,
            cause: error,
          });
        }
        // With no kubeconfig and no in-cluster account, client-node falls back to
        // http://localhost:8080 (and refuses plain HTTP): say what is missing instead.
        const cluster = loaded.getCurrentCluster();
        if (
          loaded.getClusters().length === 1 &&
          cluster?.name === 'cluster' &&
          cluster.server === 'http://localhost:8080'
        ) {
          throw new KeywardError({
            code: 'RUNTIME_UNAVAILABLE',
            providerId: this.id,
            message:
              'No kubeconfig: KUBECONFIG is not set, ~/.kube/config does not exist and keyward is not running in a cluster.',
          });
        }
        this.#kubeConfig = loaded;
      }
    }
    return this.#kubeConfig;
  }

  #contexts(): (string | undefined)[] {
    return this.#settings.contexts && this.#settings.contexts.length > 0
      ? [...this.#settings.contexts]
      : [undefined];
  }

  #api(context: string | undefined): KubernetesApi {
    const key = context ?? '';
    let api = this.#apis.get(key);
    if (!api) {
      const base = this.#baseKubeConfig();
      let kubeConfig = base;
      if (context && context !== base.getCurrentContext()) {
        if (!base.getContextObject(context)) {
          throw new KeywardError({
            code: 'INVALID_INPUT',
            providerId: this.id,
            message: `The kubeconfig has no context "${context}"; it has: ${base
              .getContexts()
              .map((item) => item.name)
              .join(', ')}.`,
          });
        }
        kubeConfig = new KubeConfig();
        kubeConfig.loadFromOptions({
          clusters: base.getClusters(),
          users: base.getUsers(),
          contexts: base.getContexts(),
          currentContext: context,
        });
      }
      api = new KubernetesApi({
        kubeConfig,
        ...(this.#settings.onRequest ? { onRequest: this.#settings.onRequest } : {}),
        ...(this.#settings.middleware ? { middleware: this.#settings.middleware } : {}),
      });
      this.#apis.set(key, api);
    }
    return api;
  }

  #checkScope(options: KubernetesTargetOptions, namespace: string): void {
    const contexts = this.#settings.contexts;
    if (options.context && contexts && contexts.length > 0 && !contexts.includes(options.context)) {
      throw new KeywardError({
        code: 'INVALID_INPUT',
        providerId: this.id,
        message: `Context "${options.context}" is not one this keyward manages (${contexts.join(', ')}); add it to the provider's contexts or leave it out.`,
      });
    }
    const namespaces = this.#settings.namespaces;
    if (namespaces && namespaces.length > 0 && !namespaces.includes(namespace)) {
      throw new KeywardError({
        code: 'INVALID_INPUT',
        providerId: this.id,
        message: `Namespace "${namespace}" is not one this keyward manages (${namespaces.join(', ')}); set targetOptions.namespace to one of them.`,
      });
    }
  }

  /** Where lists look: each managed namespace, or everywhere. */
  #scopes(): (string | undefined)[] {
    const namespaces = this.#settings.namespaces;
    return namespaces && namespaces.length > 0 ? [...namespaces] : [undefined];
  }

  #now(): Date {
    return this.#settings.clock?.() ?? new Date();
  }

  #emitter(listener: ProgressListenerV2 | undefined): Emit {
    return (step, status, message) =>
      listener?.({ step, status, message: redact(message), time: this.#now().toISOString() });
  }

  async #step<T>(
    emit: Emit,
    signal: AbortSignal | undefined,
    step: string,
    message: string,
    action: () => Promise<T>,
  ): Promise<T> {
    try {
      signal?.throwIfAborted();
      await this.#settings.beforeStep?.(step);
      emit(step, 'started', message);
      const result = await action();
      emit(step, 'succeeded', message);
      return result;
    } catch (error) {
      const text = statusOf(error) === undefined ? (error as Error).message : apiErrorMessage(error);
      emit(step, 'failed', `${message}: ${text}`);
      throw error instanceof StepError ? error : new StepError(step, error);
    }
  }

  async #nativeSidecars(api: KubernetesApi, context: string | undefined, options: KubernetesTargetOptions) {
    if (options.nativeSidecars !== 'auto') return options.nativeSidecars === 'always';
    const key = context ?? '';
    let support = this.#nativeSidecarSupport.get(key);
    if (!support) {
      support = (async () => {
        api.noteRequest({ method: 'GET', path: '/version' });
        const version = await new VersionApi(api.configuration).getCode();
        return versionAtLeast(version.major, version.minor, [1, 29]);
      })();
      support.catch(() => this.#nativeSidecarSupport.delete(key));
      this.#nativeSidecarSupport.set(key, support);
    }
    return support;
  }

  // ---------------------------------------------------------------- detect, list, get

  async detect(): Promise<DetectionResultV2> {
    let strategy = 'injected kubeconfig';
    try {
      if (!this.#settings.kubeConfig) {
        strategy = process.env['KUBERNETES_SERVICE_HOST']
          ? 'in-cluster service account'
          : 'kubeconfig (KUBECONFIG or ~/.kube/config)';
      }
      const api = this.#api(this.#contexts()[0]);
      api.noteRequest({ method: 'GET', path: '/version' });
      const version = await new VersionApi(api.configuration).getCode();
      return {
        available: true,
        strategy,
        runtime: {
          name: 'kubernetes',
          version: version.gitVersion,
          endpoint: api.kubeConfig.getCurrentCluster()?.server ?? '',
        },
      };
    } catch (error) {
      return {
        available: false,
        strategy,
        reason:
          error instanceof KeywardError && error.code === 'RUNTIME_UNAVAILABLE'
            ? error.message
            : `The Kubernetes API server did not answer: ${redact(apiErrorMessage(error))}`,
        hint: 'Point KUBECONFIG at a cluster (for example `kind create cluster`), or run keyward in a cluster with the ServiceAccount from packages/provider-k8s/deploy.',
      };
    }
  }

  #notFound(name: string): KeywardError {
    return new KeywardError({
      code: 'INSTANCE_NOT_FOUND',
      providerId: this.id,
      message: `No instance "${name}" on Kubernetes target "${this.id}"; \`list\` shows the instances that exist.`,
    });
  }

  /** Finds an instance by its record ConfigMap: one list per context and scope. */
  async #locate(name: string): Promise<Located> {
    const selector = `${labelKeys.instance}=${name},${labelKeys.managedBy}=${managedByValue},${labelKeys.target}=${this.id},${labelKeys.component}=record`;
    for (const context of this.#contexts()) {
      const api = this.#api(context);
      for (const scope of this.#scopes()) {
        const found = await api.list<V1ConfigMap>('v1', 'ConfigMap', scope, selector);
        const configMap = found[0];
        if (configMap) {
          const record = decodeRecord(configMap.data?.[recordDataKey], name);
          return { api, namespace: configMap.metadata?.namespace as string, record, context };
        }
      }
    }
    throw this.#notFound(name);
  }

  #containerStatuses(plan: StoredPlanV2, pods: V1Pod[]): ContainerStatusV2[] {
    return plan.containers.map((container) => {
      const pod = podOf(plan, container);
      const candidates = pods
        .filter(
          (item) =>
            item.metadata?.labels?.[kubernetesLabelKeys.pod] === pod && !item.metadata?.deletionTimestamp,
        )
        .sort((a, b) =>
          String(b.metadata?.creationTimestamp ?? '').localeCompare(
            String(a.metadata?.creationTimestamp ?? ''),
          ),
        );
      const statuses = candidates.flatMap((item) => [
        ...(item.status?.initContainerStatuses ?? []),
        ...(item.status?.containerStatuses ?? []),
      ]);
      const status = statuses.find((item) => item.name === container.name);
      let state = candidates.length === 0 ? 'no pod' : 'pending';
      if (status?.state?.running) state = status.ready ? 'running' : 'started';
      else if (status?.state?.waiting) state = `waiting: ${status.state.waiting.reason ?? 'unknown'}`;
      else if (status?.state?.terminated)
        state = `terminated: ${status.state.terminated.reason ?? 'unknown'}`;
      return {
        name: container.name,
        providerId: container.providerId,
        image: container.image,
        state,
        running: Boolean(status?.state?.running),
      };
    });
  }

  #instanceState(deployments: V1Deployment[], expected: number): InstanceStateV2 {
    if (
      deployments.length < expected ||
      !deployments.some((item) => item.metadata?.labels?.[kubernetesLabelKeys.pod] === 'agent')
    ) {
      return 'failed';
    }
    if (deployments.every((item) => (item.spec?.replicas ?? 1) === 0)) return 'stopped';
    if (deployments.every((item) => deploymentSettled(item))) return 'running';
    if (
      deployments.some((item) =>
        (item.status?.conditions ?? []).some(
          (condition) =>
            (condition.type === 'ReplicaFailure' && condition.status === 'True') ||
            (condition.type === 'Progressing' && condition.reason === 'ProgressDeadlineExceeded'),
        ),
      )
    ) {
      return 'failed';
    }
    return 'partial';
  }

  #summary(
    plan: StoredPlanV2,
    namespace: string,
    deployments: V1Deployment[],
    pods: V1Pod[],
  ): InstanceSummaryV2 {
    const expected =
      plan.networkMode === 'proxy-only' && plan.containers.some((item) => item.role !== 'agent') ? 2 : 1;
    const agentDeployment = deployments.find(
      (item) => item.metadata?.labels?.[kubernetesLabelKeys.pod] === 'agent',
    );
    const ingress = plan.ingress[0];
    const created = agentDeployment?.metadata?.creationTimestamp;
    return {
      name: plan.instance.name,
      target: plan.instance.target,
      state: this.#instanceState(deployments, expected),
      networkMode: plan.networkMode,
      containers: this.#containerStatuses(plan, pods),
      ...(ingress
        ? {
            agentUrl: `http://${instanceObjectName(plan.instance.name, 'agent')}.${namespace}.svc:${ingress.port}`,
          }
        : {}),
      ...(created ? { createdAt: new Date(created).toISOString() } : {}),
    };
  }

  async #readInstance(located: Located): Promise<{ deployments: V1Deployment[]; pods: V1Pod[] }> {
    const selector = `${labelKeys.instance}=${located.record.plan.instance.name},${labelKeys.managedBy}=${managedByValue}`;
    const [deployments, pods] = await Promise.all([
      located.api.list<V1Deployment>('apps/v1', 'Deployment', located.namespace, selector),
      located.api.list<V1Pod>('v1', 'Pod', located.namespace, selector),
    ]);
    return { deployments, pods };
  }

  #detail(located: Located, deployments: V1Deployment[], pods: V1Pod[]): InstanceDetailV2 {
    const plan = located.record.plan;
    return {
      ...this.#summary(plan, located.namespace, deployments, pods),
      redactedSpec: plan.redactedSpec,
      sidecars: plan.sidecars.map((sidecar) => ({
        providerId: sidecar.providerId,
        metadata: sidecar.metadata,
        exports: sidecar.exports,
      })),
    };
  }

  async get(name: string): Promise<InstanceDetailV2> {
    const located = await this.#locate(name);
    const { deployments, pods } = await this.#readInstance(located);
    return this.#detail(located, deployments, pods);
  }

  /**
   * Two calls per context and namespace scope (Deployments, Pods), whatever the number of
   * instances: the summary comes from the Deployments' annotations and the pods' statuses.
   */
  async list(): Promise<InstanceSummaryV2[]> {
    const selector = `${labelKeys.managedBy}=${managedByValue},${labelKeys.target}=${this.id}`;
    const summaries: InstanceSummaryV2[] = [];
    for (const context of this.#contexts()) {
      const api = this.#api(context);
      for (const scope of this.#scopes()) {
        const [deployments, pods] = await Promise.all([
          api.list<V1Deployment>('apps/v1', 'Deployment', scope, `${selector},${kubernetesLabelKeys.pod}`),
          api.list<V1Pod>('v1', 'Pod', scope, `${selector},${kubernetesLabelKeys.pod}`),
        ]);
        const byInstance = new Map<string, V1Deployment[]>();
        for (const deployment of deployments) {
          const key = `${deployment.metadata?.namespace}/${deployment.metadata?.labels?.[labelKeys.instance]}`;
          byInstance.set(key, [...(byInstance.get(key) ?? []), deployment]);
        }
        for (const [key, group] of byInstance) {
          const [namespace, instance] = key.split('/') as [string, string];
          const agent = group.find((item) => item.metadata?.labels?.[kubernetesLabelKeys.pod] === 'agent');
          const annotations = agent?.metadata?.annotations ?? {};
          const containers = group.flatMap((item) => {
            try {
              return JSON.parse(item.metadata?.annotations?.[kubernetesLabelKeys.containers] ?? '[]') as {
                name: string;
                providerId: string;
                image: string;
              }[];
            } catch {
              return [];
            }
          });
          const networkMode = annotations[kubernetesLabelKeys.networkMode] === 'open' ? 'open' : 'proxy-only';
          // A plan shape just rich enough for the summary.
          const plan = {
            instance: { name: instance, target: this.id },
            networkMode,
            containers: containers.map((container) => ({
              ...container,
              role: container.name === AGENT_CONTAINER_NAME ? 'agent' : 'sidecar',
            })),
            ingress: (agent?.spec?.template.spec?.containers ?? [])
              .filter((container) => container.name === AGENT_CONTAINER_NAME)
              .flatMap((container) => (container.ports ?? []).slice(0, 1))
              .map((port) => ({ container: AGENT_CONTAINER_NAME, port: port.containerPort })),
          } as unknown as StoredPlanV2;
          const instancePods = pods.filter(
            (pod) =>
              pod.metadata?.namespace === namespace &&
              pod.metadata?.labels?.[labelKeys.instance] === instance,
          );
          summaries.push(this.#summary(plan, namespace, group, instancePods));
        }
      }
    }
    return summaries.sort((a, b) => a.name.localeCompare(b.name));
  }

  // ---------------------------------------------------------------- apply

  async apply(plan: DeploymentPlanV2, options: OperationOptionsV2 = {}): Promise<InstanceDetailV2> {
    const emit = this.#emitter(options.onProgress);
    const name = plan.instance.name;
    if (plan.instance.target !== this.id) {
      throw new KeywardError({
        code: 'INVALID_INPUT',
        providerId: this.id,
        message: `The plan targets "${plan.instance.target}", but this provider is "${this.id}"; compose the plan for target "${this.id}".`,
      });
    }
    for (const secret of plan.secrets) registerSecret(secret.value);
    const targetOptions = this.#options(plan);
    const namespace = targetOptions.namespace ?? instanceNamespace(name);
    this.#checkScope(targetOptions, namespace);
    const api = this.#api(targetOptions.context);
    const native = await this.#nativeSidecars(api, targetOptions.context, targetOptions);
    const changes: Change[] = [];
    try {
      const result = await this.#applyPlan(api, plan, targetOptions, native, emit, options.signal, changes);
      if (result === 'unchanged') {
        emit('apply', 'info', `Instance "${name}" already matches the plan; nothing changed.`);
      }
    } catch (error) {
      const step = error instanceof StepError ? error.step : 'apply';
      const original = error instanceof StepError ? error.original : error;
      emit('rollback', 'started', `Step ${step} failed; undoing what this apply changed on "${name}"`);
      const problems = await this.#undo(api, changes);
      emit(
        'rollback',
        problems.length === 0 ? 'succeeded' : 'failed',
        problems.length === 0
          ? `Removed what this apply created and restored what it changed on "${name}"`
          : `Rollback incomplete: ${problems.join('; ')}`,
      );
      const text = statusOf(original) === undefined ? (original as Error).message : apiErrorMessage(original);
      throw new KeywardError({
        code: KeywardError.isInstance(original) ? original.code : 'DEPLOY_FAILED',
        providerId: this.id,
        message: redact(
          `Applying instance "${name}" failed at step "${step}": ${text}. ${problems.length === 0 ? 'What this apply created was removed and what it changed was restored.' : `The rollback did not finish: ${problems.join('; ')}.`}`,
        ),
        details: { step },
        cause: original,
      });
    }
    emit('apply', 'succeeded', `Instance "${name}" is running`);
    return this.get(name);
  }

  /**
   * Applies the plan's objects in order, recording each change; waits for the egress pod before
   * the agent's. Returns `unchanged` when the cluster already holds exactly this plan.
   */
  async #applyPlan(
    api: KubernetesApi,
    plan: DeploymentPlanV2,
    targetOptions: KubernetesTargetOptions,
    native: boolean,
    emit: Emit,
    signal: AbortSignal | undefined,
    changes: Change[],
  ): Promise<'applied' | 'unchanged'> {
    const name = plan.instance.name;
    const build = (egressServiceIP: string | undefined, pending: boolean) =>
      buildManifests({
        plan,
        options: targetOptions,
        // A stand-in address until the Service has one; replaced before the agent's Deployment.
        egressServiceIP: egressServiceIP ?? (pending ? '0.0.0.0' : undefined),
        nativeSidecars: native,
        context: targetOptions.context,
      });
    const draft = build(targetOptions.egressServiceIP, true);
    const { existingAgent, existingIp } = await this.#step(
      emit,
      signal,
      'inspect',
      `Reading what exists of "${name}" in namespace ${draft.namespace}`,
      async () => {
        const agent = await api.read<V1Deployment>(
          'apps/v1',
          'Deployment',
          draft.namespace,
          draft.agentDeployment.metadata?.name as string,
        );
        let ip = targetOptions.egressServiceIP;
        if (agent && draft.egressService && !ip) {
          const service = await api.read<V1Service>(
            'v1',
            'Service',
            draft.namespace,
            draft.egressService.metadata?.name as string,
          );
          ip = service?.spec?.clusterIP;
        }
        return { existingAgent: agent, existingIp: ip };
      },
    );
    let manifests: InstanceManifests = build(existingIp, true);
    if (
      existingAgent &&
      existingAgent.metadata?.annotations?.[kubernetesLabelKeys.planDigest] === manifests.planDigest &&
      (!manifests.egressService || existingIp)
    ) {
      const stopped = (existingAgent.spec?.replicas ?? 1) === 0;
      if (stopped) {
        emit('apply', 'info', `Instance "${name}" matches the plan but is stopped; starting it.`);
        await this.start(name);
      }
      return 'unchanged';
    }
    const applyOne = async (object: KubernetesObject, step: string, message: string) => {
      await this.#step(emit, signal, step, message, async () => {
        const previous = await api.read(
          object.apiVersion as string,
          object.kind as string,
          object.metadata?.namespace,
          object.metadata?.name as string,
        );
        if (previous && object.kind === 'Namespace' && !previous.metadata?.labels?.[labelKeys.instance]) {
          throw new Error(
            `namespace ${object.metadata?.name} exists and is not keyward's; set targetOptions.namespace to use it`,
          );
        }
        const applied = await api.apply(object);
        changes.push({ object: applied, ...(previous ? { previous } : {}) });
        return applied;
      });
    };
    const stepOf = (object: KubernetesObject) =>
      `${String(object.kind).toLowerCase()}.apply:${object.metadata?.name ?? ''}`;
    const deployments = new Set<KubernetesObject>(
      [manifests.agentDeployment, manifests.egressDeployment].filter(Boolean) as KubernetesObject[],
    );
    // The record first (an interrupted apply stays findable), after its namespace.
    const ordered = [
      ...manifests.objects.filter((object) => object.kind === 'Namespace'),
      ...manifests.objects.filter(
        (object) =>
          object.kind === 'ConfigMap' && object.metadata?.labels?.[labelKeys.component] === 'record',
      ),
      ...manifests.objects.filter(
        (object) =>
          object.kind !== 'Namespace' &&
          !(object.kind === 'ConfigMap' && object.metadata?.labels?.[labelKeys.component] === 'record') &&
          !deployments.has(object),
      ),
    ];
    for (const object of ordered) {
      await applyOne(object, stepOf(object), `Applying ${object.kind} ${object.metadata?.name}`);
    }
    if (manifests.egressService && !existingIp) {
      const applied = changes.find(
        (change) => identityOf(change.object) === identityOf(manifests.egressService as KubernetesObject),
      );
      const ip = (applied?.object as V1Service | undefined)?.spec?.clusterIP;
      if (!ip || ip === 'None')
        throw new StepError('service.address', new Error('the egress Service got no ClusterIP'));
      manifests = build(ip, false);
    }
    const rolloutOf = async (deployment: V1Deployment, pod: 'agent' | 'egress') => {
      await applyOne(
        deployment,
        `deployment.apply:${pod}`,
        `Applying Deployment ${deployment.metadata?.name}`,
      );
      await this.#step(emit, signal, `rollout:${pod}`, `Waiting for the ${pod} pod to become available`, () =>
        waitForRollout({
          api,
          namespace: manifests.namespace,
          name: deployment.metadata?.name as string,
          labelSelector: deploymentSelector(name, pod),
          timeoutMs: this.#settings.rolloutTimeoutMs ?? 300_000,
          pollMs: this.#settings.pollIntervalMs ?? 1000,
          signal,
          onObservation: (message) => emit(`rollout:${pod}`, 'info', message),
        }),
      );
    };
    if (manifests.egressDeployment) await rolloutOf(manifests.egressDeployment, 'egress');
    await rolloutOf(manifests.agentDeployment, 'agent');
    if (existingAgent) await this.#prune(api, manifests, emit);
    return 'applied';
  }

  /** Removes objects of the instance that the new manifests no longer have. */
  async #prune(api: KubernetesApi, manifests: InstanceManifests, emit: Emit): Promise<void> {
    const keep = new Set(manifests.objects.map(identityOf));
    const instance = manifests.agentDeployment.metadata?.labels?.[labelKeys.instance] as string;
    const selector = `${labelKeys.instance}=${instance},${labelKeys.managedBy}=${managedByValue}`;
    for (const [apiVersion, kind] of ownedKinds) {
      if (kind === 'Lease') continue;
      for (const object of await api.list(apiVersion, kind, manifests.namespace, selector)) {
        const full = { ...object, apiVersion, kind } as KubernetesObject;
        if (keep.has(identityOf(full))) continue;
        emit('prune', 'info', `Removing ${kind} ${object.metadata?.name}, which the plan no longer has`);
        await api.delete(full);
      }
    }
  }

  /** Takes changes back, newest first: deletes what was created, restores what was changed. */
  async #undo(api: KubernetesApi, changes: Change[]): Promise<string[]> {
    const problems: string[] = [];
    for (const change of [...changes].reverse()) {
      const object = change.object;
      try {
        if (!change.previous) {
          await api.delete(object);
          continue;
        }
        // Re-read the resourceVersion: the apply moved it on since the snapshot, and controllers
        // keep moving it (a Deployment's status during a rollout), so a conflict is read again.
        for (let attempt = 1; ; attempt += 1) {
          const current = await api.read(
            object.apiVersion as string,
            object.kind as string,
            object.metadata?.namespace,
            object.metadata?.name as string,
          );
          try {
            if (!current) await api.create(restorable(change.previous, undefined));
            else await api.replace(restorable(change.previous, current.metadata?.resourceVersion));
            break;
          } catch (error) {
            if (!isConflict(error) || attempt >= 8) throw error;
          }
        }
      } catch (error) {
        problems.push(`${identityOf(object)}: ${apiErrorMessage(error)}`);
      }
    }
    return problems;
  }

  // ---------------------------------------------------------------- lifecycle

  async #deploymentsOf(located: Located): Promise<{ agent?: V1Deployment; egress?: V1Deployment }> {
    const { deployments } = await this.#readInstance(located);
    const find = (pod: string) =>
      deployments.find((item) => item.metadata?.labels?.[kubernetesLabelKeys.pod] === pod);
    const agent = find('agent');
    const egress = find('egress');
    return { ...(agent ? { agent } : {}), ...(egress ? { egress } : {}) };
  }

  async #scale(
    located: Located,
    deployment: V1Deployment,
    replicas: number,
    emit: Emit,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const pod = deployment.metadata?.labels?.[kubernetesLabelKeys.pod] as 'agent' | 'egress';
    await this.#step(
      emit,
      signal,
      `deployment.scale:${pod}`,
      `Scaling ${deployment.metadata?.name} to ${replicas}`,
      () =>
        located.api.mergePatch({
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          metadata: { name: deployment.metadata?.name, namespace: located.namespace },
          spec: { replicas },
        } as KubernetesObject),
    );
    await this.#step(emit, signal, `rollout:${pod}`, `Waiting for ${deployment.metadata?.name}`, () =>
      this.#wait(located, deployment, pod, emit, signal),
    );
  }

  #wait(
    located: Located,
    deployment: V1Deployment,
    pod: 'agent' | 'egress',
    emit: Emit,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    return waitForRollout({
      api: located.api,
      namespace: located.namespace,
      name: deployment.metadata?.name as string,
      labelSelector: deploymentSelector(located.record.plan.instance.name, pod),
      timeoutMs: this.#settings.rolloutTimeoutMs ?? 300_000,
      pollMs: this.#settings.pollIntervalMs ?? 1000,
      signal,
      onObservation: (message) => emit(`rollout:${pod}`, 'info', message),
    });
  }

  async start(name: string, options: OperationOptionsV2 = {}): Promise<void> {
    const located = await this.#locate(name);
    const emit = this.#emitter(options.onProgress);
    const { agent, egress } = await this.#deploymentsOf(located);
    if (!agent) throw this.#notFound(name);
    if (egress) await this.#scale(located, egress, 1, emit, options.signal);
    await this.#scale(located, agent, 1, emit, options.signal);
  }

  async stop(name: string, options: OperationOptionsV2 = {}): Promise<void> {
    const located = await this.#locate(name);
    const emit = this.#emitter(options.onProgress);
    const { agent, egress } = await this.#deploymentsOf(located);
    if (!agent) throw this.#notFound(name);
    await this.#scale(located, agent, 0, emit, options.signal);
    if (egress) await this.#scale(located, egress, 0, emit, options.signal);
  }

  /** A new pod-template annotation rolls every pod of the instance (`kubectl rollout restart`). */
  async restart(name: string, options: OperationOptionsV2 = {}): Promise<void> {
    const located = await this.#locate(name);
    const emit = this.#emitter(options.onProgress);
    const { agent, egress } = await this.#deploymentsOf(located);
    if (!agent) throw this.#notFound(name);
    const at = this.#now().toISOString();
    for (const deployment of [egress, agent].filter(Boolean) as V1Deployment[]) {
      const pod = deployment.metadata?.labels?.[kubernetesLabelKeys.pod] as 'agent' | 'egress';
      await this.#step(
        emit,
        options.signal,
        `deployment.restart:${pod}`,
        `Restarting ${deployment.metadata?.name}`,
        () =>
          located.api.mergePatch({
            apiVersion: 'apps/v1',
            kind: 'Deployment',
            metadata: { name: deployment.metadata?.name, namespace: located.namespace },
            spec: { template: { metadata: { annotations: { [kubernetesLabelKeys.restartedAt]: at } } } },
          } as KubernetesObject),
      );
      if ((deployment.spec?.replicas ?? 1) > 0) {
        await this.#step(
          emit,
          options.signal,
          `rollout:${pod}`,
          `Waiting for ${deployment.metadata?.name}`,
          () => this.#wait(located, deployment, pod, emit, options.signal),
        );
      }
    }
  }

  async #podFor(located: Located, container: string): Promise<V1Pod> {
    const plan = located.record.plan;
    const planned = plan.containers.find((item) => item.name === container);
    if (!planned) {
      throw new KeywardError({
        code: 'UNKNOWN_CONTAINER',
        providerId: this.id,
        message: `Instance "${plan.instance.name}" has no container "${container}"; it has: ${plan.containers.map((item) => item.name).join(', ')}.`,
      });
    }
    const pods = await located.api.list<V1Pod>(
      'v1',
      'Pod',
      located.namespace,
      deploymentSelector(plan.instance.name, podOf(plan, planned)),
    );
    const running = pods
      .filter((pod) => !pod.metadata?.deletionTimestamp)
      .sort((a, b) => (a.status?.phase === 'Running' ? -1 : 0) - (b.status?.phase === 'Running' ? -1 : 0));
    const pod = running[0];
    if (!pod) {
      throw new KeywardError({
        code: 'RUNTIME_ERROR',
        providerId: this.id,
        message: `Instance "${plan.instance.name}" has no pod for container "${container}"; start it first.`,
      });
    }
    return pod;
  }

  async *logs(name: string, options: LogOptionsV2 = {}): AsyncIterable<LogLineV2> {
    const located = await this.#locate(name);
    const plan = located.record.plan;
    const containers = plan.containers.filter(
      (container) => options.container === undefined || container.name === options.container,
    );
    if (containers.length === 0) {
      throw new KeywardError({
        code: 'UNKNOWN_CONTAINER',
        providerId: this.id,
        message: `Instance "${name}" has no container "${options.container}"; it has: ${plan.containers.map((container) => container.name).join(', ')}.`,
      });
    }
    const lines = new PassThrough({ objectMode: true });
    const controllers: AbortController[] = [];
    let open = containers.length;
    const finish = () => {
      open -= 1;
      if (open === 0) lines.end();
    };
    const log = new Log(located.api.kubeConfig);
    for (const container of containers) {
      let pod: V1Pod;
      try {
        pod = await this.#podFor(located, container.name);
      } catch {
        finish();
        continue;
      }
      let buffered = '';
      const sink = new Writable({
        write(chunk: Buffer, _encoding, callback) {
          buffered += chunk.toString('utf8');
          const parts = buffered.split('\n');
          buffered = parts.pop() ?? '';
          for (const line of parts) lines.write({ container: container.name, stream: 'stdout', line });
          callback();
        },
        final(callback) {
          if (buffered) lines.write({ container: container.name, stream: 'stdout', line: buffered });
          callback();
          finish();
        },
      });
      located.api.noteRequest({
        method: 'GET',
        path: `/api/v1/namespaces/${located.namespace}/pods/${pod.metadata?.name}/log`,
      });
      try {
        controllers.push(
          await log.log(located.namespace, pod.metadata?.name as string, container.name, sink, {
            follow: options.follow ?? false,
            ...(options.tail === undefined ? {} : { tailLines: options.tail }),
          }),
        );
      } catch {
        // No log yet (the container never ran): nothing to show for it.
        finish();
      }
    }
    const abort = () => {
      for (const controller of controllers) controller.abort();
      lines.end();
    };
    options.signal?.addEventListener('abort', abort);
    try {
      for await (const line of lines as AsyncIterable<LogLineV2>) {
        if (options.signal?.aborted) return;
        yield { ...line, line: redact(line.line) };
      }
    } finally {
      options.signal?.removeEventListener('abort', abort);
      for (const controller of controllers) controller.abort();
    }
  }

  async delete(name: string, options: OperationOptionsV2 & { removeVolumes?: boolean } = {}): Promise<void> {
    const located = await this.#locate(name);
    const emit = this.#emitter(options.onProgress);
    const selector = `${labelKeys.instance}=${name},${labelKeys.managedBy}=${managedByValue}`;
    const kinds: (readonly [string, string])[] = [...ownedKinds];
    if (options.removeVolumes) kinds.push(['v1', 'PersistentVolumeClaim']);
    for (const [apiVersion, kind] of kinds) {
      await this.#step(
        emit,
        options.signal,
        `delete:${kind}`,
        `Removing the instance's ${kind} objects`,
        async () => {
          for (const object of await located.api.list(apiVersion, kind, located.namespace, selector)) {
            await located.api.delete({ ...object, apiVersion, kind } as KubernetesObject);
          }
        },
      );
    }
    if (options.removeVolumes && located.record.ownsNamespace) {
      await this.#step(
        emit,
        options.signal,
        'delete:Namespace',
        `Removing namespace ${located.namespace}`,
        () =>
          located.api.delete({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: located.namespace } }),
      );
    }
  }

  // ---------------------------------------------------------------- secrets and rotation

  /** Every secret value of the instance, by secret name, from its audience Secrets: one call. */
  async #secretValues(located: Located): Promise<Map<string, string>> {
    const selector = `${labelKeys.instance}=${located.record.plan.instance.name},${labelKeys.managedBy}=${managedByValue},${labelKeys.component}=secrets`;
    const values = new Map<string, string>();
    for (const secret of await located.api.list<V1Secret>('v1', 'Secret', located.namespace, selector)) {
      for (const [key, encoded] of Object.entries(secret.data ?? {})) {
        const value = Buffer.from(encoded, 'base64').toString('utf8');
        registerSecret(value);
        values.set(key, value);
      }
    }
    return values;
  }

  async readSidecarState(name: string, providerId: string): Promise<SidecarStateV2> {
    const located = await this.#locate(name);
    const sidecar = located.record.plan.sidecars.find((candidate) => candidate.providerId === providerId);
    if (!sidecar) {
      throw new KeywardError({
        code: 'INVALID_INPUT',
        providerId,
        message: `Instance "${name}" has no sidecar "${providerId}".`,
      });
    }
    const values = await this.#secretValues(located);
    return {
      metadata: sidecar.metadata,
      exports: sidecar.exports,
      secrets: Object.fromEntries(
        sidecar.secretNames.map((secretName) => [secretName, values.get(secretName)]),
      ),
      // What others asked of this provider: its answers stay visible to the askers after a rotation.
      requests: located.record.plan.sidecars.flatMap((other) =>
        other.requests
          .filter((request) => request.provider === providerId)
          .map((request) => ({ ...request, from: other.providerId })),
      ),
    };
  }

  /**
   * Under the instance's rotation Lease: new Secrets, ConfigMaps and Deployments by server-side
   * apply, then the rollout. If anything fails, the previous objects come back (re-read
   * `resourceVersion`s first) and the previous pods roll back in.
   */
  async rotateSecrets(
    name: string,
    request: SidecarRotationRequestV2,
    options: OperationOptionsV2 = {},
  ): Promise<InstanceDetailV2> {
    const emit = this.#emitter(options.onProgress);
    for (const part of request.parts) for (const secret of part.secrets) registerSecret(secret.value);
    const located = await this.#locate(name);
    const { api, namespace } = located;
    const lease = await this.#step(
      emit,
      options.signal,
      'lease.acquire',
      `Taking the rotation lease of "${name}"`,
      () =>
        acquireLease(api, {
          namespace,
          name: instanceObjectName(name, 'rotation'),
          labels: {
            ...located.record.plan.labels,
            [labelKeys.component]: 'rotation-lease',
          },
          identity: this.#identity,
          durationSeconds: this.#settings.leaseDurationSeconds ?? 30,
          waitMs: this.#settings.lockWaitMs ?? 60_000,
          pollMs: Math.min(1000, this.#settings.pollIntervalMs ?? 1000),
          clock: () => this.#now(),
          purpose: 'rotation',
        }),
    ).catch((error) => {
      throw error instanceof StepError ? error.original : error;
    });
    const changes: Change[] = [];
    try {
      // Read again under the lease: another replica may have rotated while we waited.
      const current = await this.#locate(name);
      const values = await this.#secretValues(current);
      const rotated = rotatedPlan(current.record.plan, request);
      const replaced = new Set(request.parts.map((part) => part.providerId));
      const nextValues = new Map(
        [...values].filter(([secretName]) =>
          current.record.plan.secrets.some(
            (secret) => secret.name === secretName && !replaced.has(secret.providerId),
          ),
        ),
      );
      for (const part of request.parts)
        for (const secret of part.secrets) nextValues.set(secret.name, secret.value);
      const nextPlan = restorePlan(rotated, nextValues);
      const targetOptions = this.#options(nextPlan);
      const native = await this.#nativeSidecars(api, current.context, targetOptions);
      try {
        await this.#applyPlan(api, nextPlan, targetOptions, native, emit, options.signal, changes);
      } catch (error) {
        const step = error instanceof StepError ? error.step : 'rotate';
        const original = error instanceof StepError ? error.original : error;
        emit(
          'rollback',
          'started',
          `Step ${step} failed; restoring the previous Secrets and pods of "${name}"`,
        );
        const problems = await this.#undo(api, changes);
        // The restored Deployments roll the previous pods back in; wait for them, best effort.
        for (const change of changes.filter((item) => item.object.kind === 'Deployment' && item.previous)) {
          const pod = change.object.metadata?.labels?.[kubernetesLabelKeys.pod] as 'agent' | 'egress';
          await this.#wait(current, change.object as V1Deployment, pod, emit, undefined).catch((problem) =>
            emit(
              'rollback',
              'info',
              `The previous ${pod} pod is not available yet: ${(problem as Error).message}`,
            ),
          );
        }
        emit(
          'rollback',
          problems.length === 0 ? 'succeeded' : 'failed',
          problems.length === 0
            ? `The previous Secrets of "${name}" are back and its previous pods roll back in`
            : `Rollback incomplete: ${problems.join('; ')}`,
        );
        const text =
          statusOf(original) === undefined ? (original as Error).message : apiErrorMessage(original);
        throw new KeywardError({
          code: 'ROTATION_FAILED',
          providerId: this.id,
          message: redact(
            `Rotating secrets of "${name}" failed at step "${step}": ${text}. ${problems.length === 0 ? 'The previous Secrets were restored; the previous credentials are still in place.' : `Restoring the previous Secrets did not finish: ${problems.join('; ')}.`}`,
          ),
          details: { step, restored: problems.length === 0 },
          cause: original,
        });
      }
      emit('rotate', 'succeeded', `Secrets of sidecar "${request.providerId}" rotated on "${name}"`);
    } finally {
      await lease.release();
    }
    return this.get(name);
  }

  // ---------------------------------------------------------------- exec

  /** Isolation checks of this target (API server, internet, DNS, token), run in the agent. */
  verificationChecks(instance: InstanceDetailV2) {
    return kubernetesVerificationChecks(instance);
  }

  async exec(
    name: string,
    request: ExecRequestV2,
    options: { signal?: AbortSignal } = {},
  ): Promise<ExecResultV2> {
    const located = await this.#locate(name);
    const pod = await this.#podFor(located, request.container);
    const exec = new Exec(located.api.kubeConfig);
    let stdout = '';
    let stderr = '';
    const sink = (append: (text: string) => void) =>
      new Writable({
        write(chunk: Buffer, _encoding, callback) {
          append(chunk.toString('utf8'));
          callback();
        },
      });
    const stdin = request.stdin === undefined ? null : new PassThrough();
    located.api.noteRequest({
      method: 'GET',
      path: `/api/v1/namespaces/${located.namespace}/pods/${pod.metadata?.name}/exec`,
    });
    return await new Promise<ExecResultV2>((resolve, reject) => {
      let socket: { close(): void } | undefined;
      const timeout = setTimeout(
        () => {
          socket?.close();
          resolve({ exitCode: -1, stdout: redact(stdout), stderr: redact(stderr), timedOut: true });
        },
        (request.timeoutSeconds ?? 60) * 1000,
      );
      options.signal?.addEventListener('abort', () => {
        clearTimeout(timeout);
        socket?.close();
        reject(options.signal?.reason);
      });
      exec
        .exec(
          located.namespace,
          pod.metadata?.name as string,
          request.container,
          request.command,
          sink((text) => {
            stdout += text;
          }),
          sink((text) => {
            stderr += text;
          }),
          stdin,
          false,
          (status: V1Status) => {
            clearTimeout(timeout);
            const cause = status.details?.causes?.find((item) => item.reason === 'ExitCode');
            const exitCode = status.status === 'Success' ? 0 : Number.parseInt(cause?.message ?? '1', 10);
            resolve({ exitCode, stdout: redact(stdout), stderr: redact(stderr), timedOut: false });
          },
        )
        .then((opened) => {
          socket = opened;
          if (stdin) stdin.end(request.stdin);
        })
        .catch((error: unknown) => {
          clearTimeout(timeout);
          reject(
            new KeywardError({
              code: 'RUNTIME_ERROR',
              providerId: this.id,
              message: redact(
                `Could not run a command in ${request.container} of "${name}": ${apiErrorMessage(error)}`,
              ),
              cause: error,
            }),
          );
        });
    });
  }
}

export function createKubernetesProvider(settings: KubernetesProviderSettings = {}): KubernetesProvider {
  return new KubernetesProvider(settings);
}
