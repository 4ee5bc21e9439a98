import {
  createRpcClient,
  type JobEvent,
  KeywardApiError,
  KeywardClient,
  readServerSentEvents,
} from '@keyward/api/client';
import type { InferRequestType, InferResponseType } from 'hono/client';

type Rpc = ReturnType<typeof createRpcClient>;

export type Providers = InferResponseType<Rpc['api']['providers']['$get'], 200>;
export type SidecarDescription = Providers['sidecars'][number];
export type Target = InferResponseType<Rpc['api']['targets']['$get'], 200>['targets'][number];
export type InstanceList = InferResponseType<Rpc['api']['instances']['$get'], 200>;
export type InstanceSummary = InstanceList['instances'][number];
export type InstanceDetail = InferResponseType<Rpc['api']['instances'][':id']['$get'], 200>;
export type InstanceSpecInput = InferRequestType<Rpc['api']['instances']['$post']>['json'];
export type JobAccepted = InferResponseType<Rpc['api']['instances']['$post'], 202>;
export type VerifyReport = InferResponseType<Rpc['api']['instances'][':id']['verify']['$post'], 200>;
export type LifecycleAction = 'start' | 'stop' | 'restart';
export type { JobEvent };
export { KeywardApiError };

async function ok<T>(response: Response): Promise<T> {
  if (!response.ok) throw await KeywardApiError.fromResponse(response);
  return (await response.json()) as T;
}

/**
 * Every call the page makes, typed by the API's own client (`@keyward/api/client`): the Hono RPC
 * client for JSON routes, the fetch client for streams. Each request carries the bearer token.
 */
export class Api {
  readonly rpc: Rpc;
  readonly streams: KeywardClient;
  readonly #token: string;
  readonly #baseUrl: string;

  constructor(baseUrl: string, token: string, transport: typeof fetch = fetch.bind(globalThis)) {
    this.#token = token;
    this.#baseUrl = baseUrl;
    this.rpc = createRpcClient({ baseUrl, token, fetch: transport });
    this.streams = new KeywardClient({ baseUrl, token, fetch: transport });
  }

  /** Whether the token is accepted (401 → false); other failures throw. */
  async checkToken(): Promise<boolean> {
    // A route that asks no runtime: the answer is quick even when podman is slow.
    const response = await this.rpc.api.jobs.$get();
    if (response.status === 401) return false;
    if (!response.ok) throw await KeywardApiError.fromResponse(response);
    return true;
  }

  providers(): Promise<Providers> {
    return this.rpc.api.providers.$get().then((response) => ok<Providers>(response));
  }

  targets(): Promise<Target[]> {
    return this.rpc.api.targets
      .$get()
      .then((response) => ok<{ targets: Target[] }>(response))
      .then((body) => body.targets);
  }

  instances(): Promise<InstanceList> {
    return this.rpc.api.instances.$get().then((response) => ok<InstanceList>(response));
  }

  instance(name: string, target?: string): Promise<InstanceDetail> {
    return this.rpc.api.instances[':id']
      .$get({ param: { id: name }, query: target ? { target } : {} })
      .then((response) => ok<InstanceDetail>(response));
  }

  deploy(spec: InstanceSpecInput): Promise<JobAccepted> {
    return this.rpc.api.instances
      .$post({ json: spec, query: {} })
      .then((response) => ok<JobAccepted>(response));
  }

  lifecycle(name: string, action: LifecycleAction, target?: string): Promise<unknown> {
    const query = target ? { target } : {};
    const route = this.rpc.api.instances[':id'][action];
    return route.$post({ param: { id: name }, query }).then((response) => ok<unknown>(response));
  }

  remove(name: string, target?: string): Promise<unknown> {
    return this.rpc.api.instances[':id']
      .$delete({ param: { id: name }, query: target ? { target } : {} })
      .then((response) => ok<unknown>(response));
  }

  verify(name: string, target?: string): Promise<VerifyReport> {
    return this.rpc.api.instances[':id'].verify
      .$post({ param: { id: name }, query: target ? { target } : {}, json: {} })
      .then((response) => ok<VerifyReport>(response));
  }

  sidecarView(name: string, providerId: string, target?: string): Promise<Record<string, unknown>> {
    return this.rpc.api.instances[':id'].sidecars[':providerId']
      .$get({ param: { id: name, providerId }, query: target ? { target } : {} })
      .then((response) => ok<Record<string, unknown>>(response));
  }

  changeSidecar(name: string, providerId: string, change: Record<string, unknown>, target?: string) {
    return this.rpc.api.instances[':id'].sidecars[':providerId']
      .$put({ param: { id: name, providerId }, query: target ? { target } : {}, json: change })
      .then((response) => ok<JobAccepted>(response));
  }

  jobEvents(jobId: string, signal?: AbortSignal): AsyncGenerator<JobEvent> {
    return this.streams.jobEvents(jobId, signal);
  }

  logs(name: string, options: { container?: string; tail?: number; signal?: AbortSignal }) {
    return this.streams.logs(name, { follow: true, ...options });
  }

  /** Raw SSE reader, exported for callers that need the event names. */
  static readEvents = readServerSentEvents;

  get baseUrl(): string {
    return this.#baseUrl;
  }

  /** For tests only: whether this session holds `token`. */
  holds(token: string): boolean {
    return this.#token === token;
  }
}

/** "code: message" of any thrown value, for a status line. */
export function describeError(error: unknown): string {
  if (error instanceof KeywardApiError) return `${error.message} (${error.code})`;
  return error instanceof Error ? error.message : String(error);
}

/** The API's field problems (`error.details.problems`), when it sent them. */
export function problemsOf(error: unknown): string[] {
  if (!(error instanceof KeywardApiError)) return [];
  const problems = error.details?.['problems'];
  return Array.isArray(problems) ? problems.map(String) : [];
}
