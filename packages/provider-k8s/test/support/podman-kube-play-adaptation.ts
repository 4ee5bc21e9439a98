// The podman adaptation: what `podman kube play` (podman 4.3, the version Debian 12 ships)
// needs to run the pods `render` prints, and nothing more. Security contexts, env, commands,
// resources, probes and mount paths pass through untouched; each change below names the podman
// 4.3 behaviour it works around (read in podman v4.3.1's pkg/specgen/generate/kube and
// pkg/domain/infra/abi/play.go, and seen on this machine).
import { posix } from 'node:path';
import type {
  KubernetesObject,
  V1ConfigMap,
  V1Container,
  V1Deployment,
  V1PersistentVolumeClaim,
  V1Secret,
  V1Volume,
  V1VolumeMount,
} from '@kubernetes/client-node';
import { stringify } from 'yaml';

/** `podman secret create <name> -` with `content` on stdin (never argv). */
export interface PodmanSecret {
  name: string;
  content: string;
}

export interface SkippedObject {
  kind: string;
  name: string;
  reason: string;
}

export interface PlayedPod {
  deployment: string;
  /** podman names a Deployment's pod `<deployment>-pod-0` and its containers `<pod>-<container>`. */
  pod: string;
  containers: string[];
}

export interface PodmanKubePlayManifests {
  /** What `podman kube play` gets: the adapted Deployments and the ConfigMaps and PVCs they mount. */
  objects: KubernetesObject[];
  yaml: string;
  /** Create these before `kube play`; remove them after `kube down`. */
  secrets: PodmanSecret[];
  /** Named volumes `kube play` makes for ConfigMaps, Secrets and PVCs: `kube down` keeps them. */
  volumes: string[];
  pods: PlayedPod[];
  /** What was left out or replaced, and why. */
  skipped: SkippedObject[];
}

export function playedPodName(deployment: string): string {
  return `${deployment}-pod-0`;
}

export function playedContainerName(deployment: string, container: string): string {
  return `${playedPodName(deployment)}-${container}`;
}

const skippedKinds: Record<string, string> = {
  Namespace: 'podman has no namespaces',
  ServiceAccount: 'podman has no API server to authenticate to',
  NetworkPolicy: 'podman kube play skips NetworkPolicies: nothing enforces them',
  Service: 'podman kube play skips Services; the containers of a pod share localhost',
};

/** Files of one ConfigMap or Secret that a pod mounts in one directory. */
interface DirectoryGroup {
  index: number;
  volume: string;
  source: V1ConfigMap | V1Secret;
  isSecret: boolean;
  directory: string;
  defaultMode?: number | undefined;
  files: Map<string, { key: string; mode?: number | undefined }>;
}

function nameOf(object: KubernetesObject): string {
  return object.metadata?.name ?? '';
}

function byName<T extends KubernetesObject>(
  objects: readonly KubernetesObject[],
  kind: string,
): Map<string, T> {
  return new Map(
    objects.filter((object) => object.kind === kind).map((object) => [nameOf(object), object as T]),
  );
}

/**
 * podman 4.3 ignores `subPath` (it mounts the whole volume at the path): a `subPath` file mount
 * of a ConfigMap or Secret becomes a mount of its parent directory holding that file under the
 * mount's base name. That hides what the image has in the directory (nothing, in keyward's images).
 */
function directoryAndFiles(volume: V1Volume, mount: V1VolumeMount, keys: string[]) {
  const items = volume.configMap?.items ?? volume.secret?.items;
  if (mount.subPath) {
    const item = items?.find((entry) => entry.path === mount.subPath);
    return {
      directory: posix.dirname(mount.mountPath),
      files: [{ file: posix.basename(mount.mountPath), key: item?.key ?? mount.subPath, mode: item?.mode }],
    };
  }
  return {
    directory: mount.mountPath,
    files: items
      ? items.map((item) => ({ file: item.path, key: item.key, mode: item.mode }))
      : keys.map((key) => ({ file: key, key, mode: undefined })),
  };
}

export interface PodmanKubePlayOptions {
  /**
   * podman kube play has no Services: the address to use for each Service address the pods'
   * `hostAliases` name (`proxy-only`: the egress Service's ClusterIP becomes the egress pod's IP).
   */
  serviceAddresses?: Record<string, string>;
}

/** Adapts the objects `render` printed (parsed from its YAML) for `podman kube play`. */
export function adaptForPodmanKubePlay(
  rendered: readonly KubernetesObject[],
  options: PodmanKubePlayOptions = {},
): PodmanKubePlayManifests {
  const objects = structuredClone(rendered) as KubernetesObject[];
  const secrets = byName<V1Secret>(objects, 'Secret');
  const configMaps = byName<V1ConfigMap>(objects, 'ConfigMap');
  const claims = byName<V1PersistentVolumeClaim>(objects, 'PersistentVolumeClaim');
  const skipped: SkippedObject[] = objects
    .filter((object) => skippedKinds[object.kind ?? ''])
    .map((object) => ({
      kind: object.kind ?? '',
      name: nameOf(object),
      reason: skippedKinds[object.kind ?? ''] ?? '',
    }));
  const podmanSecrets = new Map<string, PodmanSecret>();
  const playedConfigMaps: V1ConfigMap[] = [];
  const playedClaims = new Map<string, V1PersistentVolumeClaim>();
  const mountedSources = new Set<string>();
  const deployments: V1Deployment[] = [];
  const pods: PlayedPod[] = [];

  for (const deployment of byName<V1Deployment>(objects, 'Deployment').values()) {
    const deploymentName = nameOf(deployment);
    const podName = playedPodName(deploymentName);
    const spec = deployment.spec?.template.spec;
    if (!spec) throw new Error(`Deployment ${deploymentName} has no pod template`);
    for (const alias of spec.hostAliases ?? []) {
      const address = options.serviceAddresses?.[alias.ip];
      if (!address) {
        throw new Error(
          `${deploymentName} reaches ${alias.hostnames?.join(', ')} at the Service address ${alias.ip}, which podman does not have: give serviceAddresses["${alias.ip}"]`,
        );
      }
      alias.ip = address;
    }

    // podman 4.3 runs init containers to completion before the others (a native sidecar's
    // `restartPolicy: Always` is ignored, so play would wait forever) and refuses probes on them:
    // native sidecars run as regular containers, started together with the agent.
    const initContainers = spec.initContainers ?? [];
    for (const container of initContainers) {
      if (container.restartPolicy !== 'Always') {
        throw new Error(`Init container ${container.name} of ${deploymentName} is not a native sidecar`);
      }
      delete container.restartPolicy;
    }
    const containers: V1Container[] = [...initContainers, ...spec.containers];
    delete spec.initContainers;
    spec.containers = containers;

    const renderedVolumes = new Map((spec.volumes ?? []).map((volume) => [volume.name, volume]));
    const podVolumes = new Map<string, V1Volume>();
    const groups = new Map<string, DirectoryGroup>();
    for (const container of containers) {
      // podman 4.3 publishes every containerPort on the host's port of the same number
      // (hostPort defaults to containerPort); a kubelet publishes none.
      delete container.ports;

      const mounts: V1VolumeMount[] = [];
      for (const mount of container.volumeMounts ?? []) {
        const volume = renderedVolumes.get(mount.name);
        if (!volume) throw new Error(`${container.name} mounts ${mount.name}, which ${deploymentName} lacks`);
        const { subPath, ...withoutSubPath } = mount;
        if (volume.emptyDir) {
          // podman 4.3 names an emptyDir's volume after it, machine-wide: make it the pod's own.
          const name = `${podName}-${volume.name}`;
          podVolumes.set(name, { name, emptyDir: volume.emptyDir });
          mounts.push({ ...mount, name });
        } else if (volume.persistentVolumeClaim) {
          const claim = claims.get(volume.persistentVolumeClaim.claimName);
          if (!claim) throw new Error(`${deploymentName} mounts a claim render did not print`);
          // No subPath on podman 4.3: one claim (a named volume) per subPath instead.
          const claimName = subPath ? `${nameOf(claim)}-${subPath}` : nameOf(claim);
          playedClaims.set(claimName, { ...claim, metadata: { ...claim.metadata, name: claimName } });
          const name = subPath ? `${volume.name}-${subPath}` : volume.name;
          podVolumes.set(name, { name, persistentVolumeClaim: { claimName } });
          mounts.push({ ...withoutSubPath, name });
        } else {
          const source = volume.configMap
            ? configMaps.get(volume.configMap.name ?? '')
            : secrets.get(volume.secret?.secretName ?? '');
          if (!source)
            throw new Error(`${deploymentName}'s volume ${volume.name} has no ConfigMap or Secret`);
          mountedSources.add(`${source.kind}/${nameOf(source)}`);
          const { directory, files } = directoryAndFiles(volume, mount, Object.keys(source.data ?? {}));
          const groupKey = `${volume.name}\n${directory}`;
          const group = groups.get(groupKey) ?? {
            index: groups.size,
            volume: `${volume.name}-d${groups.size}`,
            source,
            isSecret: volume.secret !== undefined,
            directory,
            defaultMode: volume.secret?.defaultMode ?? volume.configMap?.defaultMode,
            files: new Map(),
          };
          groups.set(groupKey, group);
          for (const { file, key, mode } of files) group.files.set(file, { key, mode });
          if (!mounts.some((item) => item.name === group.volume)) {
            mounts.push({ ...withoutSubPath, name: group.volume, mountPath: directory });
          }
        }
      }
      if (mounts.length > 0) container.volumeMounts = mounts;

      // podman 4.3 resolves `secretKeyRef` against a podman secret holding JSON
      // `{"<key>": "<base64>"}` (a Secret's `data`), not against a `kind: Secret` in the YAML.
      for (const variable of container.env ?? []) {
        const reference = variable.valueFrom?.secretKeyRef;
        if (!reference?.name) continue;
        const secret = secrets.get(reference.name);
        if (!secret)
          throw new Error(`${container.name} reads Secret ${reference.name}, which render did not print`);
        podmanSecrets.set(reference.name, {
          name: reference.name,
          content: JSON.stringify(secret.data ?? {}),
        });
      }
    }

    // podman 4.3 names a ConfigMap's or secret's volume after it, machine-wide: one name per
    // pod and directory.
    for (const group of groups.values()) {
      const sourceName = `${nameOf(group.source)}-d${group.index}`;
      const items = [...group.files].map(([file, { mode }]) => ({
        key: file,
        path: file,
        ...(mode !== undefined ? { mode } : {}),
      }));
      const mode = group.defaultMode !== undefined ? { defaultMode: group.defaultMode } : {};
      if (group.isSecret) {
        // podman 4.3 reads a secret volume's podman secret as a Kubernetes Secret and writes its
        // `data` values to the files verbatim, without base64-decoding them: give it the decoded
        // values. Without `optional` it crashes (podman issue 16636).
        const secret = group.source as V1Secret;
        const data = Object.fromEntries(
          [...group.files].map(([file, { key }]) => [
            file,
            Buffer.from(secret.data?.[key] ?? '', 'base64').toString('utf8'),
          ]),
        );
        podmanSecrets.set(sourceName, { name: sourceName, content: JSON.stringify({ data }) });
        podVolumes.set(group.volume, {
          name: group.volume,
          secret: { secretName: sourceName, optional: false, ...mode, items },
        });
      } else {
        const configMap = group.source as V1ConfigMap;
        playedConfigMaps.push({
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { ...configMap.metadata, name: sourceName },
          data: Object.fromEntries(
            [...group.files].map(([file, { key }]) => [file, configMap.data?.[key] ?? '']),
          ),
        });
        podVolumes.set(group.volume, { name: group.volume, configMap: { name: sourceName, ...mode, items } });
      }
    }
    spec.volumes = [...podVolumes.values()].sort((a, b) => a.name.localeCompare(b.name));
    deployments.push(deployment);
    pods.push({ deployment: deploymentName, pod: podName, containers: containers.map((item) => item.name) });
  }

  for (const [kind, sources] of [
    ['Secret', secrets],
    ['ConfigMap', configMaps],
  ] as const) {
    for (const name of sources.keys()) {
      skipped.push({
        kind,
        name,
        reason:
          kind === 'Secret'
            ? 'played as podman secrets (`podman secret create`): podman 4.3 mishandles a Secret in the YAML'
            : mountedSources.has(`${kind}/${name}`)
              ? 'played as one ConfigMap per mounted directory'
              : 'mounted by no pod (the instance record)',
      });
    }
  }

  const played: KubernetesObject[] = [...playedConfigMaps, ...playedClaims.values(), ...deployments];
  const volumes = [
    ...playedConfigMaps.map(nameOf),
    ...[...podmanSecrets.values()].filter((secret) => !secrets.has(secret.name)).map((secret) => secret.name),
    ...playedClaims.keys(),
  ].sort();
  return {
    objects: played,
    yaml: played
      .map((object) => `---\n${stringify(object, { lineWidth: 0, aliasDuplicateObjects: false })}`)
      .join(''),
    secrets: [...podmanSecrets.values()],
    volumes,
    pods,
    skipped,
  };
}
