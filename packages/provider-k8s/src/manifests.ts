import { isIP } from 'node:net';
import { posix } from 'node:path';
import {
  AGENT_CONTAINER_NAME,
  type DeploymentPlanV2,
  KeywardError,
  labelKeys,
  type PlannedContainerV2,
  type PlannedSecretV2,
  type ProbeV2,
} from '@keyward/core';
import type {
  KubernetesObject,
  V1ConfigMap,
  V1Container,
  V1Deployment,
  V1EnvVar,
  V1Namespace,
  V1NetworkPolicy,
  V1NetworkPolicyEgressRule,
  V1NetworkPolicyPort,
  V1PersistentVolumeClaim,
  V1PodSpec,
  V1Probe,
  V1Secret,
  V1Service,
  V1ServiceAccount,
  V1Volume,
  V1VolumeMount,
} from '@kubernetes/client-node';
import { digestOf, encodeRecord, type InstanceRecord, recordDataKey, storePlan } from './instance-record.js';
import {
  agentHostName,
  boundedName,
  fileKey,
  instanceNamespace,
  instanceObjectName,
  portName,
} from './object-names.js';
import type { KubernetesTargetOptions } from './target-options.js';

/** Label and annotation keys of the Kubernetes target (beside core's `labelKeys`). */
export const kubernetesLabelKeys = {
  /** Which pod of the instance a Deployment runs: `agent` or `egress`. */
  pod: 'keyward.dev/pod',
  planDigest: 'keyward.dev/plan-digest',
  configDigest: 'keyward.dev/config-digest',
  networkMode: 'keyward.dev/network-mode',
  containers: 'keyward.dev/containers',
  audience: 'keyward.dev/audience',
  restartedAt: 'keyward.dev/restarted-at',
  /** On a rendered Secret printed without its values: `omitted`. */
  values: 'keyward.dev/values',
  /** On a rendered Secret printed without its values: the keys it must hold, comma-separated. */
  keys: 'keyward.dev/keys',
} as const;

export type PodRole = 'agent' | 'egress';

export interface ManifestInput {
  plan: DeploymentPlanV2;
  options: KubernetesTargetOptions;
  /** The egress Service's ClusterIP, for the agent's `hostAliases` (`proxy-only` with sidecars). */
  egressServiceIP?: string | undefined;
  /** Sidecars others start after become init containers with `restartPolicy: Always`. */
  nativeSidecars: boolean;
  /** The kubeconfig context, kept in the record. */
  context?: string | undefined;
}

export interface InstanceManifests {
  namespace: string;
  ownsNamespace: boolean;
  /** In apply order: what a pod needs exists before the pod, policies before everything that runs. */
  objects: KubernetesObject[];
  agentDeployment: V1Deployment;
  egressDeployment?: V1Deployment;
  egressService?: V1Service;
  /** Digest of everything applied; the agent Deployment carries it. */
  planDigest: string;
}

function sortedRecord<T>(record: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function invalid(message: string, providerId?: string): never {
  throw new KeywardError({
    code: 'INVALID_INPUT',
    ...(providerId ? { providerId } : {}),
    message,
  });
}

/** Which pod a container runs in: all in one pod in `open`; sidecars apart in `proxy-only`. */
export function podOf(plan: Pick<DeploymentPlanV2, 'networkMode'>, container: PlannedContainerV2): PodRole {
  return plan.networkMode === 'open' || container.role === 'agent' ? 'agent' : 'egress';
}

/** Without a pod `fsGroup` the container's user is unknown: files must be readable by others too. */
function readableMode(mode: number | undefined, hasFsGroup: boolean): number {
  const base = mode ?? 0o444;
  if (hasFsGroup) return base | 0o040;
  return base | 0o044;
}

function probeOf(probe: ProbeV2, failureDefault: number): V1Probe {
  const handler =
    probe.type === 'http'
      ? { httpGet: { path: probe.path, port: probe.port } }
      : { tcpSocket: { port: probe.port } };
  return {
    ...handler,
    periodSeconds: 2,
    timeoutSeconds: probe.timeoutSeconds ?? 1,
    failureThreshold: probe.retries ?? failureDefault,
  } as V1Probe;
}

/** One Secret per audience: the set of containers allowed to read what it holds. */
export interface AudienceSecret {
  name: string;
  audience: string[];
  secrets: PlannedSecretV2[];
}

export function audienceSecrets(plan: DeploymentPlanV2): AudienceSecret[] {
  const groups = new Map<string, PlannedSecretV2[]>();
  for (const secret of plan.secrets) {
    const audience = [...new Set(secret.visibleTo)].sort();
    // The composer refuses this already; the target refuses it again rather than leak.
    if (audience.includes(AGENT_CONTAINER_NAME) && !secret.agentSafe) {
      throw new KeywardError({
        code: 'SECRET_NOT_AGENT_SAFE',
        providerId: secret.providerId,
        message: `Secret "${secret.name}" is visible to the agent but not declared agent-safe; the Kubernetes target will not mount it there.`,
      });
    }
    const key = audience.join(',');
    groups.set(key, [...(groups.get(key) ?? []), secret]);
  }
  return [...groups.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([key, secrets]) => ({
      name: instanceObjectName(plan.instance.name, `secrets-${key.split(',').join('-')}`),
      audience: key.split(','),
      secrets: [...secrets].sort((a, b) => a.name.localeCompare(b.name)),
    }));
}

function resourcesOf(container: PlannedContainerV2, options: KubernetesTargetOptions) {
  const chosen = container.resources ?? options.resources;
  if (!chosen) return undefined;
  return {
    ...(chosen.requests ? { requests: sortedRecord({ ...chosen.requests }) } : {}),
    ...(chosen.limits ? { limits: sortedRecord({ ...chosen.limits }) } : {}),
  };
}

/**
 * Kubernetes objects for a v2 plan, deterministic: the same plan and input give the same
 * objects, key for key. `render` prints them; `apply` sends them.
 */
export function buildManifests(input: ManifestInput): InstanceManifests {
  const { plan, options } = input;
  const instance = plan.instance.name;
  const namespace = options.namespace ?? instanceNamespace(instance);
  const ownsNamespace = options.namespace === undefined;
  const baseLabels = sortedRecord({ ...plan.labels });
  const labelsFor = (component: string, extra: Record<string, string> = {}) =>
    sortedRecord({ ...baseLabels, [labelKeys.component]: component, ...extra });
  const metadata = (name: string, component: string, extra: Record<string, string> = {}) => ({
    name,
    namespace,
    labels: labelsFor(component, extra),
  });
  const podLabels = (pod: PodRole) =>
    sortedRecord({ ...baseLabels, [labelKeys.component]: `${pod}-pod`, [kubernetesLabelKeys.pod]: pod });
  const podSelector = (pod: PodRole) => ({
    [labelKeys.instance]: instance,
    [labelKeys.managedBy]: baseLabels[labelKeys.managedBy] ?? 'keyward',
    [kubernetesLabelKeys.pod]: pod,
  });

  const agent = plan.containers.find((container) => container.role === 'agent');
  if (!agent) invalid(`The plan of "${instance}" has no agent container; compose it with composePlanV2.`);
  const sidecars = plan.containers.filter((container) => container.role !== 'agent');
  const proxyOnly = plan.networkMode === 'proxy-only';
  const hasEgressPod = proxyOnly && sidecars.length > 0;
  const names = {
    agentServiceAccount: instanceObjectName(instance, 'agent'),
    egressServiceAccount: instanceObjectName(instance, 'egress'),
    agentDeployment: instanceObjectName(instance, 'agent'),
    egressDeployment: instanceObjectName(instance, 'egress'),
    agentService: instanceObjectName(instance, 'agent'),
    egressService: instanceObjectName(instance, 'egress'),
    agentPolicy: instanceObjectName(instance, 'agent'),
    egressPolicy: instanceObjectName(instance, 'egress'),
    state: instanceObjectName(instance, 'state'),
    record: instanceObjectName(instance, 'record'),
    files: (container: string) => instanceObjectName(instance, `files-${container}`),
  };

  const objects: KubernetesObject[] = [];
  if (ownsNamespace) {
    const namespaceObject: V1Namespace = {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: {
        name: namespace,
        labels: sortedRecord({
          ...labelsFor('namespace'),
          // Pod Security Admission: the instance's pods meet the restricted profile.
          'pod-security.kubernetes.io/enforce': 'restricted',
        }),
      },
    };
    objects.push(namespaceObject);
  }

  // ServiceAccounts without RBAC and without tokens: the pods get no API credentials at all.
  const serviceAccount = (name: string, component: string): V1ServiceAccount => ({
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: metadata(name, component),
    automountServiceAccountToken: false,
  });
  objects.push(serviceAccount(names.agentServiceAccount, 'agent-service-account'));
  if (hasEgressPod) objects.push(serviceAccount(names.egressServiceAccount, 'egress-service-account'));

  // Port names are per pod; the Services and policies reuse them.
  const portNames = new Map<string, string>();
  const portKey = (container: string, port: number) => `${container}:${port}`;
  for (const pod of ['agent', 'egress'] as const) {
    const taken = new Set<string>();
    for (const container of plan.containers.filter((item) => podOf(plan, item) === pod)) {
      for (const port of container.ports) {
        portNames.set(
          portKey(container.name, port.containerPort),
          portName(port.name, port.containerPort, taken),
        );
      }
    }
  }
  const containerByName = new Map(plan.containers.map((container) => [container.name, container]));
  const protocolOf = (container: string, port: number) =>
    containerByName.get(container)?.ports.find((item) => item.containerPort === port)?.protocol === 'udp'
      ? 'UDP'
      : 'TCP';

  // What the agent may reach: the ports the plan's connections name, in the egress pod.
  const agentConnections = plan.connections.filter(
    (connection) =>
      connection.from === AGENT_CONTAINER_NAME &&
      containerByName.has(connection.to) &&
      connection.to !== AGENT_CONTAINER_NAME,
  );
  const agentEgressPorts: V1NetworkPolicyPort[] = [];
  const servicePorts: NonNullable<V1Service['spec']>['ports'] = [];
  const seenPorts = new Set<number>();
  for (const connection of agentConnections) {
    if (seenPorts.has(connection.port)) continue;
    seenPorts.add(connection.port);
    const protocol = protocolOf(connection.to, connection.port);
    agentEgressPorts.push({ protocol, port: connection.port });
    servicePorts.push({
      name: portNames.get(portKey(connection.to, connection.port)) ?? `p${connection.port}`,
      port: connection.port,
      protocol,
      targetPort: connection.port,
    });
  }
  const ingressPorts: V1NetworkPolicyPort[] = plan.ingress.map((entry) => ({
    protocol: protocolOf(entry.container, entry.port),
    port: entry.port,
  }));

  // Policies come before anything that runs: a pod started before its policy would run unprotected.
  const agentPolicy: V1NetworkPolicy = {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: metadata(names.agentPolicy, 'agent-network-policy'),
    spec: {
      podSelector: { matchLabels: podSelector('agent') },
      // `open`: the agent may go anywhere (that is what open means); only ingress is limited.
      policyTypes: proxyOnly ? ['Ingress', 'Egress'] : ['Ingress'],
      ingress: ingressPorts.length > 0 ? [{ ports: ingressPorts }] : [],
      ...(proxyOnly
        ? {
            // No DNS, no API server, no other pod: only the egress pod, on the connected ports.
            egress:
              hasEgressPod && agentEgressPorts.length > 0
                ? [{ to: [{ podSelector: { matchLabels: podSelector('egress') } }], ports: agentEgressPorts }]
                : [],
          }
        : {}),
    },
  };
  objects.push(agentPolicy);
  if (hasEgressPod) {
    // Wire format: client-node's model calls the rule's `from` `_from`.
    const egressPolicy = {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: metadata(names.egressPolicy, 'egress-network-policy'),
      spec: {
        podSelector: { matchLabels: podSelector('egress') },
        policyTypes: ['Ingress', 'Egress'],
        ingress:
          agentEgressPorts.length > 0
            ? [{ from: [{ podSelector: { matchLabels: podSelector('agent') } }], ports: agentEgressPorts }]
            : [],
        egress: egressRules(sidecars),
      },
    };
    objects.push(egressPolicy as KubernetesObject);
  }

  // Secrets, one per audience, mounted only into the containers of that audience.
  const secretGroups = audienceSecrets(plan);
  const secretObjects: V1Secret[] = secretGroups.map((group) => ({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      ...metadata(group.name, 'secrets'),
      annotations: { [kubernetesLabelKeys.audience]: group.audience.join(',') },
    },
    type: 'Opaque',
    data: Object.fromEntries(
      group.secrets.map((secret) => [secret.name, Buffer.from(secret.value, 'utf8').toString('base64')]),
    ),
  }));
  objects.push(...secretObjects);
  const groupOfSecret = new Map(
    secretGroups.flatMap((group) => group.secrets.map((secret) => [secret.name, group] as const)),
  );

  // Files, one ConfigMap per container that receives any.
  const fileMaps = new Map<string, { configMap: V1ConfigMap; keys: Map<string, string> }>();
  for (const container of plan.containers) {
    if (container.files.length === 0) continue;
    const taken = new Set<string>();
    const keys = new Map<string, string>();
    const data: Record<string, string> = {};
    for (const file of [...container.files].sort((a, b) => a.path.localeCompare(b.path))) {
      const key = fileKey(file.path, taken);
      keys.set(file.path, key);
      data[key] = file.content;
    }
    fileMaps.set(container.name, {
      keys,
      configMap: {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: metadata(names.files(container.name), 'files', {
          [labelKeys.provider]: container.providerId,
        }),
        data: sortedRecord(data),
      },
    });
  }
  objects.push(...[...fileMaps.values()].map((entry) => entry.configMap));

  const stateVolumes = agent.volumes;
  if (stateVolumes.length > 0) {
    const claim: V1PersistentVolumeClaim = {
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: metadata(names.state, 'state'),
      spec: {
        accessModes: ['ReadWriteOnce'],
        ...(options.storageClassName ? { storageClassName: options.storageClassName } : {}),
        resources: { requests: { storage: options.storageSize } },
      },
    };
    objects.push(claim);
  }

  // The record: the plan without secret values, for get, list and rotations.
  const record: InstanceRecord = {
    version: 1,
    plan: storePlan(plan),
    namespace,
    ownsNamespace,
    ...(input.context ? { context: input.context } : {}),
  };
  const recordMap: V1ConfigMap = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: metadata(names.record, 'record'),
    data: { [recordDataKey]: encodeRecord(record) },
  };
  objects.push(recordMap);

  let egressService: V1Service | undefined;
  if (hasEgressPod && servicePorts.length > 0) {
    const fixedIp = options.egressServiceIP;
    egressService = {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: metadata(names.egressService, 'egress-service'),
      spec: {
        type: 'ClusterIP',
        ...(fixedIp ? { clusterIP: fixedIp } : {}),
        selector: podSelector('egress'),
        ports: servicePorts,
      },
    };
    objects.push(egressService);
  }
  const agentService: V1Service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: metadata(names.agentService, 'agent-service'),
    spec: {
      type: 'ClusterIP',
      selector: podSelector('agent'),
      ports: plan.ingress.map((entry) => ({
        name: portNames.get(portKey(entry.container, entry.port)) ?? `p${entry.port}`,
        port: entry.port,
        protocol: protocolOf(entry.container, entry.port),
        targetPort: entry.port,
      })),
    },
  };
  if (plan.ingress.length > 0) objects.push(agentService);

  // ---------------------------------------------------------------- pods

  const podContainers = (pod: PodRole) =>
    plan.containers.filter((container) => podOf(plan, container) === pod);
  const buildPod = (pod: PodRole): { spec: V1PodSpec; configDigest: string } => {
    const members = podContainers(pod);
    const memberNames = new Set(members.map((container) => container.name));
    const dependedOn = new Set(
      members.flatMap((container) => container.startAfter.filter((name) => memberNames.has(name))),
    );
    const groups = new Set<number>();
    for (const container of members) {
      if (container.security?.runAsGroup !== undefined) groups.add(container.security.runAsGroup);
      else if (container.security?.runAsUser !== undefined) groups.add(container.security.runAsUser);
    }
    const fsGroup = groups.size === 1 ? [...groups][0] : undefined;
    const hasFsGroup = fsGroup !== undefined;
    const volumes: V1Volume[] = [];
    const volumeNames = new Set<string>();
    const addVolume = (volume: V1Volume) => {
      if (volumeNames.has(volume.name)) return;
      volumeNames.add(volume.name);
      volumes.push(volume);
    };
    const digestInputs: unknown[] = [];
    const containerSpec = (container: PlannedContainerV2, native: boolean): V1Container => {
      const mounts: V1VolumeMount[] = [];
      const secretEnv: V1EnvVar[] = [];
      for (const mount of container.secretMounts) {
        const group = groupOfSecret.get(mount.secret);
        if (!group)
          invalid(`Container "${container.name}" mounts secret "${mount.secret}", which the plan lacks.`);
        if (!group.audience.includes(container.name)) {
          invalid(
            `Container "${container.name}" mounts secret "${mount.secret}", which is not visible to it; the plan is inconsistent.`,
            container.providerId,
          );
        }
        const secret = group.secrets.find((item) => item.name === mount.secret);
        digestInputs.push([group.name, mount.secret, secret?.value]);
        if (mount.delivery.type === 'env') {
          secretEnv.push({
            name: mount.delivery.variable,
            valueFrom: { secretKeyRef: { name: group.name, key: mount.secret } },
          });
          continue;
        }
        const volumeName = `secrets-${secretGroups.indexOf(group)}`;
        addVolume({
          name: volumeName,
          secret: {
            secretName: group.name,
            defaultMode: readableMode(0o400, hasFsGroup),
          },
        });
        mounts.push({
          name: volumeName,
          mountPath: mount.delivery.path,
          subPath: mount.secret,
          readOnly: true,
        });
        // A key's own mode: Kubernetes sets it per item.
        const volume = volumes.find((item) => item.name === volumeName);
        const items = volume?.secret?.items ?? [];
        if (!items.some((item) => item.key === mount.secret)) {
          items.push({
            key: mount.secret,
            path: mount.secret,
            mode: readableMode(mount.delivery.mode ?? 0o400, hasFsGroup),
          });
          items.sort((a, b) => a.key.localeCompare(b.key));
        }
        if (volume?.secret) volume.secret.items = items;
      }
      const files = fileMaps.get(container.name);
      if (files) {
        const volumeName = `files-${container.name}`;
        addVolume({
          name: volumeName,
          configMap: {
            name: files.configMap.metadata?.name as string,
            items: container.files
              .map((file) => ({
                key: files.keys.get(file.path) as string,
                path: files.keys.get(file.path) as string,
                mode: readableMode(file.mode, hasFsGroup),
              }))
              .sort((a, b) => a.key.localeCompare(b.key)),
          },
        });
        for (const file of container.files) {
          mounts.push({
            name: volumeName,
            mountPath: file.path,
            subPath: files.keys.get(file.path) as string,
            readOnly: true,
          });
        }
        digestInputs.push(files.configMap.data);
      }
      for (const volume of container.volumes) {
        addVolume({ name: 'state', persistentVolumeClaim: { claimName: names.state } });
        mounts.push({ name: 'state', mountPath: volume.path, subPath: volume.name });
      }
      const readOnlyRoot = container.security?.readOnlyRootFilesystem ?? true;
      const scratch = [...(container.tmpfs ?? [])];
      if (readOnlyRoot && !scratch.some((path) => posix.normalize(path) === '/tmp')) scratch.push('/tmp');
      scratch.forEach((path, index) => {
        const volumeName = boundedName(`scratch-${container.name}-${index}`);
        addVolume({ name: volumeName, emptyDir: { medium: 'Memory', sizeLimit: '64Mi' } });
        mounts.push({ name: volumeName, mountPath: path });
      });
      const isAgent = container.role === 'agent';
      const readiness =
        container.readiness ??
        (isAgent && plan.ingress[0] ? ({ type: 'tcp', port: plan.ingress[0].port } as const) : undefined);
      const resources = resourcesOf(container, options);
      const security = container.security ?? {};
      const spec: V1Container = {
        name: container.name,
        image: container.image,
        ...(options.imagePullPolicy ? { imagePullPolicy: options.imagePullPolicy } : {}),
        // The plan's command is the full argv: it replaces the image's entrypoint.
        ...(container.command ? { command: [...container.command] } : {}),
        ...(Object.keys(container.env).length + secretEnv.length > 0
          ? {
              env: [
                ...Object.entries(sortedRecord(container.env)).map(([name, value]) => ({ name, value })),
                ...secretEnv.sort((a, b) => a.name.localeCompare(b.name)),
              ],
            }
          : {}),
        ...(container.ports.length > 0
          ? {
              ports: container.ports.map((port) => ({
                name: portNames.get(portKey(container.name, port.containerPort)) as string,
                containerPort: port.containerPort,
                protocol: port.protocol === 'udp' ? 'UDP' : 'TCP',
              })),
            }
          : {}),
        ...(readiness ? { readinessProbe: probeOf(readiness, 3) } : {}),
        // A native sidecar's dependents start once this probe passes.
        ...(native && readiness ? { startupProbe: probeOf(readiness, 60) } : {}),
        ...(resources ? { resources } : {}),
        ...(native ? { restartPolicy: 'Always' } : {}),
        securityContext: {
          allowPrivilegeEscalation: security.noNewPrivileges === false,
          capabilities: security.dropAllCapabilities === false ? {} : { drop: ['ALL'] },
          readOnlyRootFilesystem: readOnlyRoot,
          runAsNonRoot: true,
          // No fixed user unless the plan's container needs one (OpenShift assigns its own).
          ...(security.runAsUser !== undefined ? { runAsUser: security.runAsUser } : {}),
          ...(security.runAsGroup !== undefined ? { runAsGroup: security.runAsGroup } : {}),
          seccompProfile: { type: 'RuntimeDefault' },
        },
        ...(mounts.length > 0
          ? { volumeMounts: mounts.sort((a, b) => a.mountPath.localeCompare(b.mountPath)) }
          : {}),
      };
      return spec;
    };
    const native = input.nativeSidecars;
    const initContainers = native
      ? members.filter((container) => dependedOn.has(container.name)).map((item) => containerSpec(item, true))
      : [];
    const regular = members
      .filter((container) => !native || !dependedOn.has(container.name))
      .map((item) => containerSpec(item, false));
    const spec: V1PodSpec = {
      serviceAccountName: pod === 'agent' ? names.agentServiceAccount : names.egressServiceAccount,
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      securityContext: {
        runAsNonRoot: true,
        seccompProfile: { type: 'RuntimeDefault' },
        ...(hasFsGroup ? { fsGroup } : {}),
      },
      ...(initContainers.length > 0 ? { initContainers } : {}),
      containers: regular,
      ...(volumes.length > 0 ? { volumes: volumes.sort((a, b) => a.name.localeCompare(b.name)) } : {}),
    };
    if (pod === 'agent' && proxyOnly) {
      // No cluster DNS: lookups are an exfiltration channel. The agent knows the proxy by IP.
      spec.dnsPolicy = 'None';
      spec.dnsConfig = { nameservers: ['127.0.0.1'] };
      if (hasEgressPod && agentConnections.length > 0) {
        const ip = input.egressServiceIP;
        if (!ip || isIP(ip) === 0) {
          invalid(
            `Instance "${instance}" runs in proxy-only mode: the agent reaches its sidecars by the egress Service's IP, which is not known yet; set targetOptions.egressServiceIP to a free address in the cluster's service range to render it.`,
          );
        }
        spec.hostAliases = [
          {
            ip,
            hostnames: [
              ...new Set(agentConnections.map((connection) => agentHostName(connection.to))),
            ].sort(),
          },
        ];
      }
    }
    return { spec, configDigest: digestOf(digestInputs) };
  };

  const deployment = (pod: PodRole): V1Deployment => {
    const { spec, configDigest } = buildPod(pod);
    const members = podContainers(pod);
    return {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: {
        ...metadata(pod === 'agent' ? names.agentDeployment : names.egressDeployment, `${pod}-deployment`, {
          [kubernetesLabelKeys.pod]: pod,
        }),
        annotations: sortedRecord({
          [kubernetesLabelKeys.networkMode]: plan.networkMode,
          [kubernetesLabelKeys.containers]: JSON.stringify(
            members.map((container) => ({
              name: container.name,
              providerId: container.providerId,
              image: container.image,
            })),
          ),
        }),
      },
      spec: {
        replicas: 1,
        revisionHistoryLimit: 2,
        selector: { matchLabels: podSelector(pod) },
        // The agent's state volume is ReadWriteOnce: the old pod goes before the new one comes.
        strategy:
          pod === 'agent'
            ? { type: 'Recreate' }
            : { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
        template: {
          metadata: {
            labels: podLabels(pod),
            annotations: sortedRecord({
              [kubernetesLabelKeys.configDigest]: configDigest,
              ...(pod === 'agent' ? { 'kubectl.kubernetes.io/default-container': AGENT_CONTAINER_NAME } : {}),
            }),
          },
          spec,
        },
      },
    };
  };

  const egressDeployment = hasEgressPod ? deployment('egress') : undefined;
  const agentDeployment = deployment('agent');
  if (egressDeployment) objects.push(egressDeployment);
  objects.push(agentDeployment);
  const planDigest = digestOf(objects);
  agentDeployment.metadata = {
    ...agentDeployment.metadata,
    annotations: sortedRecord({
      ...(agentDeployment.metadata?.annotations ?? {}),
      [kubernetesLabelKeys.planDigest]: planDigest,
    }),
  };
  return {
    namespace,
    ownsNamespace,
    objects,
    agentDeployment,
    ...(egressDeployment ? { egressDeployment } : {}),
    ...(egressService ? { egressService } : {}),
    planDigest,
  };
}

/**
 * The egress pod's outbound rules, from its containers' `egress`: they share one network
 * identity, so the pod gets the union. Host names cannot be enforced by a NetworkPolicy.
 */
function egressRules(sidecars: readonly PlannedContainerV2[]): V1NetworkPolicyEgressRule[] {
  if (sidecars.some((container) => container.egress.type === 'internet')) return [{}];
  const blocks = new Set<string>();
  for (const container of sidecars) {
    if (container.egress.type !== 'destinations') continue;
    for (const destination of container.egress.destinations) {
      const [address, prefix] = destination.split('/');
      const family = isIP(address ?? '');
      if (family === 0) {
        throw new KeywardError({
          code: 'UNSUPPORTED_CAPABILITY',
          providerId: container.providerId,
          message: `Container "${container.name}" may only reach "${destination}", a host name; Kubernetes NetworkPolicies match addresses, not names. Give its destinations as IP addresses or CIDRs, or use egress "internet".`,
        });
      }
      blocks.add(prefix === undefined ? `${address}/${family === 4 ? 32 : 128}` : destination);
    }
  }
  if (blocks.size === 0) return [];
  return [{ to: [...blocks].sort().map((cidr) => ({ ipBlock: { cidr } })) }];
}
