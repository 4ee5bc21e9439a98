import {
  ApiException,
  type Configuration,
  createConfiguration,
  HttpMethod,
  type KubeConfig,
  type KubernetesObject,
  type Middleware,
  type RequestContext,
  type ResponseContext,
  ServerConfiguration,
} from '@kubernetes/client-node';

/** The field manager of every server-side apply keyward makes. */
export const fieldManager = 'keyward';

/** One HTTP request to the API server, as the request hook sees it. */
export interface KubernetesRequest {
  method: string;
  /** Path and query, without the server. */
  path: string;
}

/** Kinds keyward uses and where they live, so it never needs the discovery API. */
const knownResources: Record<string, { name: string; namespaced: boolean }> = {
  'v1/Namespace': { name: 'namespaces', namespaced: false },
  'v1/ServiceAccount': { name: 'serviceaccounts', namespaced: true },
  'v1/Secret': { name: 'secrets', namespaced: true },
  'v1/ConfigMap': { name: 'configmaps', namespaced: true },
  'v1/Service': { name: 'services', namespaced: true },
  'v1/PersistentVolumeClaim': { name: 'persistentvolumeclaims', namespaced: true },
  'v1/Pod': { name: 'pods', namespaced: true },
  'v1/Event': { name: 'events', namespaced: true },
  'apps/v1/Deployment': { name: 'deployments', namespaced: true },
  'apps/v1/ReplicaSet': { name: 'replicasets', namespaced: true },
  'networking.k8s.io/v1/NetworkPolicy': { name: 'networkpolicies', namespaced: true },
  'coordination.k8s.io/v1/Lease': { name: 'leases', namespaced: true },
  'rbac.authorization.k8s.io/v1/Role': { name: 'roles', namespaced: true },
  'rbac.authorization.k8s.io/v1/RoleBinding': { name: 'rolebindings', namespaced: true },
  'rbac.authorization.k8s.io/v1/ClusterRole': { name: 'clusterroles', namespaced: false },
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': { name: 'clusterrolebindings', namespaced: false },
  'authorization.k8s.io/v1/SelfSubjectAccessReview': { name: 'selfsubjectaccessreviews', namespaced: false },
  'authorization.k8s.io/v1/SubjectAccessReview': { name: 'subjectaccessreviews', namespaced: false },
};

/** The REST path of a kind, in a namespace or across all, optionally of one object. */
export function resourcePath(apiVersion: string, kind: string, namespace?: string, name?: string): string {
  const known = knownResources[`${apiVersion}/${kind}`];
  if (!known) throw new Error(`keyward does not know where ${apiVersion} ${kind} lives`);
  const root = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  const scope = known.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : '';
  return `${root}${scope}/${known.name}${name ? `/${encodeURIComponent(name)}` : ''}`;
}

export function statusOf(error: unknown): number | undefined {
  const code = (error as ApiException<unknown> | undefined)?.code;
  return typeof code === 'number' ? code : undefined;
}

export const isNotFound = (error: unknown) => statusOf(error) === 404;
export const isConflict = (error: unknown) => statusOf(error) === 409;

/** The API server's own message for a failed call (its Status `message`), never the request body. */
export function apiErrorMessage(error: unknown): string {
  const exception = error as ApiException<unknown>;
  if (typeof exception?.code !== 'number') return (error as Error)?.message ?? String(error);
  let body: unknown = exception.body;
  if (typeof body === 'string') {
    try {
      body = JSON.parse(body);
    } catch {
      // a plain-text body
    }
  }
  const message =
    body && typeof body === 'object' && typeof (body as { message?: unknown }).message === 'string'
      ? (body as { message: string }).message
      : typeof body === 'string'
        ? body.slice(0, 300)
        : '';
  return `HTTP ${exception.code}${message ? `: ${message}` : ''}`;
}

export interface KubernetesApiSettings {
  kubeConfig: KubeConfig;
  /** Sees every request (counting, tracing). */
  onRequest?: (request: KubernetesRequest) => void;
  /** Extra client-node middleware (tests impersonate a ServiceAccount with it). */
  middleware?: readonly Middleware[];
}

/**
 * The calls keyward makes to one API server, in the API's own JSON. Requests go through
 * client-node's configuration (kubeconfig authentication, TLS, middleware, HTTP library);
 * bodies are sent and read as the API server writes them, without client-node's model
 * classes (which rename fields such as a NetworkPolicy rule's `from`).
 */
export class KubernetesApi {
  readonly kubeConfig: KubeConfig;
  readonly configuration: Configuration;
  readonly #onRequest: ((request: KubernetesRequest) => void) | undefined;

  constructor(settings: KubernetesApiSettings) {
    this.kubeConfig = settings.kubeConfig;
    this.#onRequest = settings.onRequest;
    const cluster = settings.kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error('the kubeconfig has no current cluster');
    const counter: Middleware = {
      pre: async (context: RequestContext) => {
        const url = new URL(context.getUrl());
        this.#onRequest?.({ method: context.getHttpMethod(), path: `${url.pathname}${url.search}` });
        return context;
      },
      post: async (context: ResponseContext) => context,
    };
    this.configuration = createConfiguration({
      baseServer: new ServerConfiguration(cluster.server, {}),
      authMethods: { default: settings.kubeConfig },
      promiseMiddleware: [...(settings.middleware ?? []), counter],
    });
  }

  /** Reports a request made outside this class (exec and log streams). */
  noteRequest(request: KubernetesRequest): void {
    this.#onRequest?.(request);
  }

  async request<T>(
    method: HttpMethod,
    path: string,
    options: { query?: Record<string, string>; body?: unknown; contentType?: string } = {},
  ): Promise<T> {
    let context = this.configuration.baseServer.makeRequestContext(path, method);
    context.setHeaderParam('Accept', 'application/json');
    for (const [key, value] of Object.entries(options.query ?? {})) context.setQueryParam(key, value);
    if (options.body !== undefined) {
      context.setHeaderParam('Content-Type', options.contentType ?? 'application/json');
      context.setBody(JSON.stringify(options.body));
    }
    await this.configuration.authMethods.default?.applySecurityAuthentication(context);
    for (const middleware of this.configuration.middleware)
      context = await middleware.pre(context).toPromise();
    let response = await this.configuration.httpApi.send(context).toPromise();
    for (const middleware of this.configuration.middleware)
      response = await middleware.post(response).toPromise();
    const text = (await response.body.text()) ?? '';
    if (response.httpStatusCode >= 400) {
      throw new ApiException<string>(
        response.httpStatusCode,
        `${method} ${path} answered ${response.httpStatusCode}`,
        text,
        {},
      );
    }
    return (text ? JSON.parse(text) : undefined) as T;
  }

  #path(object: KubernetesObject, withName = true): string {
    return resourcePath(
      object.apiVersion as string,
      object.kind as string,
      object.metadata?.namespace,
      withName ? object.metadata?.name : undefined,
    );
  }

  /** Server-side apply as field manager `keyward`, taking over fields another manager set. */
  apply<T extends KubernetesObject>(object: T): Promise<T> {
    return this.request<T>(HttpMethod.PATCH, this.#path(object), {
      query: { fieldManager, force: 'true' },
      body: object,
      contentType: 'application/apply-patch+yaml',
    });
  }

  async read<T extends KubernetesObject>(
    apiVersion: string,
    kind: string,
    namespace: string | undefined,
    name: string,
  ): Promise<T | undefined> {
    try {
      const object = await this.request<T>(HttpMethod.GET, resourcePath(apiVersion, kind, namespace, name));
      return { ...object, apiVersion, kind };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  /** One call; `namespace` undefined lists across all namespaces. Items get their kind back. */
  async list<T extends KubernetesObject>(
    apiVersion: string,
    kind: string,
    namespace: string | undefined,
    labelSelector: string,
  ): Promise<T[]> {
    const result = await this.request<{ items?: T[] }>(
      HttpMethod.GET,
      resourcePath(apiVersion, kind, namespace),
      {
        query: { labelSelector },
      },
    );
    return (result.items ?? []).map((item) => ({ ...item, apiVersion, kind }));
  }

  replace<T extends KubernetesObject>(object: T): Promise<T> {
    return this.request<T>(HttpMethod.PUT, this.#path(object), { query: { fieldManager }, body: object });
  }

  create<T extends KubernetesObject>(object: T): Promise<T> {
    return this.request<T>(HttpMethod.POST, this.#path(object, false), {
      query: { fieldManager },
      body: object,
    });
  }

  /** JSON merge patch. */
  mergePatch<T extends KubernetesObject>(object: T): Promise<T> {
    return this.request<T>(HttpMethod.PATCH, this.#path(object), {
      query: { fieldManager },
      body: object,
      contentType: 'application/merge-patch+json',
    });
  }

  /** Writes a pod's status subresource (the kubelet stand-in of the tests). */
  replaceStatus<T extends KubernetesObject>(object: T): Promise<T> {
    return this.request<T>(HttpMethod.PUT, `${this.#path(object)}/status`, { body: object });
  }

  /** Deletes one object; false when it was already gone. Background propagation (ReplicaSets and Pods follow). */
  async delete(object: KubernetesObject, options: { resourceVersion?: string } = {}): Promise<boolean> {
    try {
      await this.request(HttpMethod.DELETE, this.#path(object), {
        body: {
          apiVersion: 'v1',
          kind: 'DeleteOptions',
          propagationPolicy: 'Background',
          ...(options.resourceVersion ? { preconditions: { resourceVersion: options.resourceVersion } } : {}),
        },
      });
      return true;
    } catch (error) {
      if (isNotFound(error)) return false;
      throw error;
    }
  }
}
