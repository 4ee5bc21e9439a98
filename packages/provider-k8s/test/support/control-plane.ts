import { KubeConfig } from '@kubernetes/client-node';

export interface ControlPlane {
  kubeconfigPath: string;
  server: string;
  stop(): Promise<void>;
}

interface ControlPlaneModule {
  startControlPlane(options?: { signal?: AbortSignal; timeoutMilliseconds?: number }): Promise<ControlPlane>;
}

/**
 * The repository's real control plane (scripts/k8s: etcd, kube-apiserver and
 * kube-controller-manager built from Go modules, no kubelet). Fails with the build command
 * when the binaries are not built; never skips.
 */
export async function startControlPlane(): Promise<ControlPlane> {
  const location = new URL('../../../../scripts/k8s/control-plane.mjs', import.meta.url).href;
  const module = (await import(location)) as ControlPlaneModule;
  return module.startControlPlane({ timeoutMilliseconds: 120_000 });
}

export function kubeConfigOf(controlPlane: ControlPlane): KubeConfig {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(controlPlane.kubeconfigPath);
  return kubeConfig;
}

/** A kubeconfig for the same server whose user impersonates a ServiceAccount (RBAC tests). */
export function impersonating(kubeConfig: KubeConfig, namespace: string, name: string): KubeConfig {
  const impersonated = new KubeConfig();
  impersonated.loadFromOptions({
    clusters: kubeConfig.getClusters(),
    contexts: kubeConfig.getContexts(),
    currentContext: kubeConfig.getCurrentContext(),
    users: kubeConfig
      .getUsers()
      .map((user) => ({ ...user, impersonateUser: `system:serviceaccount:${namespace}:${name}` })),
  });
  return impersonated;
}

/** Counts API requests, by method and path, for the call counts the README reports. */
export function requestCounter() {
  const requests: { method: string; path: string }[] = [];
  return {
    onRequest: (request: { method: string; path: string }) => {
      requests.push(request);
    },
    requests,
    reset() {
      requests.length = 0;
    },
    get count() {
      return requests.length;
    },
    summary() {
      const counts = new Map<string, number>();
      for (const { method, path } of requests) {
        const shape = `${method} ${path.replace(/\?.*$/, '').replace(/\/namespaces\/[^/]+/, '/namespaces/*')}`;
        counts.set(shape, (counts.get(shape) ?? 0) + 1);
      }
      return Object.fromEntries([...counts].sort(([a], [b]) => a.localeCompare(b)));
    },
  };
}
