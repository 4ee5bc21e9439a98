// The podman adaptation changes only what podman 4.3 cannot run as rendered: what runs on
// `podman kube play` is the pod spec `render` prints (security contexts, env, commands, probes,
// resources), with every rendered file at its rendered path holding its rendered content.
import { posix } from 'node:path';
import type { DeploymentPlanV2 } from '@keyward/core';
import type { V1Container } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { createKubernetesProvider } from '../src/index.js';
import { type AnyObject, byKind, named, parseYaml, podContainers } from './support/object-queries.js';
import { fixturePlan, tokenizerPlan } from './support/plan-fixtures.js';
import {
  adaptForPodmanKubePlay,
  type PodmanKubePlayManifests,
} from './support/podman-kube-play-adaptation.js';

const provider = createKubernetesProvider();
const serviceAddresses = { '10.0.0.50': '10.89.7.200', '10.0.0.60': '10.89.7.200' };

/** What the adaptation may change in a container: the rest must be byte for byte the render's. */
function withoutAdaptedFields(container: AnyObject): AnyObject {
  const { restartPolicy: _restart, ports: _ports, volumeMounts: _mounts, ...rest } = container;
  return rest;
}

/** Every file a container sees through a ConfigMap or Secret: path → content. */
function renderedFiles(objects: AnyObject[], pod: AnyObject, container: AnyObject): Map<string, string> {
  const files = new Map<string, string>();
  for (const mount of container.volumeMounts ?? []) {
    const volume = pod.volumes.find((item: AnyObject) => item.name === mount.name);
    const source = volume.configMap ?? volume.secret;
    if (!source) continue;
    const key = source.items.find((item: AnyObject) => item.path === mount.subPath).key;
    files.set(
      mount.mountPath,
      volume.configMap
        ? named(objects, 'ConfigMap', volume.configMap.name).data[key]
        : Buffer.from(named(objects, 'Secret', volume.secret.secretName).data[key], 'base64').toString(),
    );
  }
  return files;
}

/** The same, as podman 4.3 fills the adapted volumes: files named after the item path in each mounted directory. */
function playedFiles(
  played: PodmanKubePlayManifests,
  pod: AnyObject,
  container: AnyObject,
): Map<string, string> {
  const files = new Map<string, string>();
  for (const mount of container.volumeMounts ?? []) {
    expect(mount.subPath, `${container.name} ${mount.mountPath}`).toBeUndefined();
    const volume = pod.volumes.find((item: AnyObject) => item.name === mount.name);
    if (volume.configMap) {
      const configMap = named(played.objects, 'ConfigMap', volume.configMap.name);
      for (const item of volume.configMap.items) {
        files.set(posix.join(mount.mountPath, item.path), configMap.data[item.key]);
      }
    } else if (volume.secret) {
      expect(volume.secret.optional).toBe(false);
      const secret = played.secrets.find((item) => item.name === volume.secret.secretName);
      // podman 4.3 writes the `data` values verbatim (no base64 decoding), file per key.
      for (const [file, value] of Object.entries(JSON.parse(secret?.content ?? '{}').data)) {
        files.set(posix.join(mount.mountPath, file), value as string);
      }
    }
  }
  return files;
}

const cases: [string, () => Promise<DeploymentPlanV2>][] = [
  ['fixture proxy + gateway, open', () => fixturePlan(provider, { mode: 'open' })],
  ['fixture proxy + gateway, proxy-only', () => fixturePlan(provider)],
  ['real tokenizer provider, open', () => tokenizerPlan(provider, 'open')],
  ['real tokenizer provider, proxy-only', () => tokenizerPlan(provider, 'proxy-only')],
];

describe.each(cases)('the podman adaptation of %s', (_label, makePlan) => {
  it('keeps every container as rendered but for native-sidecar restartPolicy, ports and mounts', async () => {
    const rendered = parseYaml(provider.render(await makePlan(), { secretValues: 'include' }));
    const played = adaptForPodmanKubePlay(rendered, { serviceAddresses });
    const deployments = byKind(rendered, 'Deployment');
    expect(byKind(played.objects, 'Deployment').map((item) => item.metadata.name)).toEqual(
      deployments.map((item) => item.metadata.name),
    );
    for (const deployment of deployments) {
      const pod = deployment.spec.template.spec;
      const adapted = named(played.objects, 'Deployment', deployment.metadata.name).spec.template.spec;
      expect(adapted.initContainers).toBeUndefined();
      expect(adapted.containers.map(withoutAdaptedFields)).toEqual(
        podContainers(pod).map(withoutAdaptedFields),
      );
      expect(adapted.containers.filter((container: V1Container) => container.ports)).toEqual([]);
      // The pod's own fields too, but for its volumes and the Service address it reaches.
      const {
        initContainers: _init,
        containers: _containers,
        volumes: _volumes,
        hostAliases,
        ...podFields
      } = pod;
      const {
        containers: _adapted,
        volumes: _adaptedVolumes,
        hostAliases: adaptedAliases,
        ...adaptedFields
      } = adapted;
      expect(adaptedFields).toEqual(podFields);
      expect(adaptedAliases?.map((alias: AnyObject) => alias.hostnames)).toEqual(
        hostAliases?.map((alias: AnyObject) => alias.hostnames),
      );
      expect(adaptedAliases?.every((alias: AnyObject) => alias.ip === '10.89.7.200') ?? true).toBe(true);
      expect(deployment.metadata.labels).toEqual(
        named(played.objects, 'Deployment', deployment.metadata.name).metadata.labels,
      );
    }
  });

  it('puts every rendered file at its rendered path with its rendered content, and names volumes per pod', async () => {
    const rendered = parseYaml(provider.render(await makePlan(), { secretValues: 'include' }));
    const played = adaptForPodmanKubePlay(rendered, { serviceAddresses });
    let files = 0;
    for (const deployment of byKind(rendered, 'Deployment')) {
      const pod = deployment.spec.template.spec;
      const adapted = named(played.objects, 'Deployment', deployment.metadata.name).spec.template.spec;
      for (const container of podContainers(pod)) {
        const adaptedContainer = adapted.containers.find((item: AnyObject) => item.name === container.name);
        const expected = renderedFiles(rendered, pod, container);
        files += expected.size;
        expect(playedFiles(played, adapted, adaptedContainer), container.name).toEqual(expected);
        // Scratch and state mounts keep their paths.
        const otherPaths = (mounts: AnyObject[], volumes: AnyObject[]) =>
          mounts
            .filter((mount) => {
              const volume = volumes.find((item) => item.name === mount.name);
              return volume.emptyDir || volume.persistentVolumeClaim;
            })
            .map((mount) => mount.mountPath)
            .sort();
        expect(otherPaths(adaptedContainer.volumeMounts, adapted.volumes)).toEqual(
          otherPaths(container.volumeMounts, pod.volumes),
        );
      }
      // podman names emptyDir volumes machine-wide: each carries its pod's name.
      for (const volume of adapted.volumes.filter((item: AnyObject) => item.emptyDir)) {
        expect(volume.name.startsWith(`${deployment.metadata.name}-pod-0-`)).toBe(true);
      }
      const mounted = new Set(
        adapted.containers.flatMap((container: AnyObject) =>
          (container.volumeMounts ?? []).map((mount: AnyObject) => mount.name),
        ),
      );
      expect(adapted.volumes.filter((volume: AnyObject) => !mounted.has(volume.name))).toEqual([]);
    }
    expect(files).toBeGreaterThan(2);
  });

  it('turns each Secret read through env into a podman secret holding its data, and plays no Secret, Service, NetworkPolicy or Namespace', async () => {
    const rendered = parseYaml(provider.render(await makePlan(), { secretValues: 'include' }));
    const played = adaptForPodmanKubePlay(rendered, { serviceAddresses });
    for (const deployment of byKind(rendered, 'Deployment')) {
      for (const container of podContainers(deployment.spec.template.spec)) {
        for (const variable of container.env ?? []) {
          const reference = variable.valueFrom?.secretKeyRef;
          if (!reference) continue;
          const secret = played.secrets.find((item) => item.name === reference.name);
          expect(JSON.parse(secret?.content ?? '{}')).toEqual(named(rendered, 'Secret', reference.name).data);
        }
      }
    }
    const playedKinds = [...new Set(played.objects.map((object) => object.kind))].sort();
    expect(playedKinds).toEqual(
      ['ConfigMap', 'Deployment', 'PersistentVolumeClaim'].filter(
        (kind) => kind !== 'PersistentVolumeClaim' || byKind(rendered, kind).length > 0,
      ),
    );
    const skippedKinds = new Set(played.skipped.map((object) => object.kind));
    for (const kind of ['Secret', 'NetworkPolicy', 'Service', 'ServiceAccount', 'Namespace']) {
      if (byKind(rendered, kind).length > 0) expect(skippedKinds.has(kind), kind).toBe(true);
    }
    // Every named volume podman will make is listed, so a test can remove what `kube down` keeps.
    const claims = byKind(played.objects, 'PersistentVolumeClaim').map((claim) => claim.metadata.name);
    const configMaps = byKind(played.objects, 'ConfigMap').map((configMap) => configMap.metadata.name);
    const secretVolumes = played.secrets
      .filter((secret) => JSON.parse(secret.content).data !== undefined)
      .map((secret) => secret.name);
    expect(played.volumes).toEqual([...claims, ...configMaps, ...secretVolumes].sort());
  });
});

describe('what the podman adaptation refuses', () => {
  it('a proxy-only agent pod without the egress pod address: podman has no Service IPs', async () => {
    const rendered = parseYaml(
      provider.render(await tokenizerPlan(provider, 'proxy-only'), { secretValues: 'include' }),
    );
    expect(() => adaptForPodmanKubePlay(rendered)).toThrow(
      /at the Service address 10\.0\.0\.60, which podman does not have/,
    );
  });

  it('an init container that is not a native sidecar (podman would run it to completion first)', async () => {
    const rendered = parseYaml(
      provider.render(await tokenizerPlan(provider, 'open'), { secretValues: 'include' }),
    );
    const pod = byKind(rendered, 'Deployment')[0].spec.template.spec;
    delete pod.initContainers[0].restartPolicy;
    expect(() => adaptForPodmanKubePlay(rendered)).toThrow(/is not a native sidecar/);
  });
});
