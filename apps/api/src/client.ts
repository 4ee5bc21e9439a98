import { hc } from 'hono/client';
import type { KeywardApp } from './app.js';

/** The Hono RPC type of the keyward API, for `hc<KeywardAppType>()`. */
export type KeywardAppType = KeywardApp;

export interface ClientOptions {
  /** Server origin, for example `http://127.0.0.1:7878`. */
  baseUrl: string;
  token: string;
  /** Injectable transport; an in-process client passes `(input, init) => app.request(input, init)`. */
  fetch?: typeof fetch;
}

/** The typed Hono RPC client: `client.api.instances.$get()`, with request and response types from the routes. */
export function createRpcClient(options: ClientOptions) {
  return hc<KeywardAppType>(options.baseUrl, {
    headers: { authorization: `Bearer ${options.token}` },
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
}

export interface ServerSentEvent {
  event: string;
  data: string;
  id?: string;
}

/** Parses a `text/event-stream` body into events, without EventSource (which cannot send the token). */
export async function* readServerSentEvents(
  body: ReadableStream<Uint8Array>,
): AsyncGenerator<ServerSentEvent> {
  const decoder = new TextDecoder();
  let buffer = '';
  let current: { event: string; data: string[]; id?: string } = { event: 'message', data: [] };
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
      let newline = buffer.search(/\r?\n/);
      while (newline >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(buffer[newline] === '\r' ? newline + 2 : newline + 1);
        if (line === '') {
          if (current.data.length > 0) {
            yield {
              event: current.event,
              data: current.data.join('\n'),
              ...(current.id === undefined ? {} : { id: current.id }),
            };
          }
          current = { event: 'message', data: [] };
        } else if (!line.startsWith(':')) {
          const colon = line.indexOf(':');
          const field = colon < 0 ? line : line.slice(0, colon);
          const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
          if (field === 'event') current.event = value;
          else if (field === 'data') current.data.push(value);
          else if (field === 'id') current.id = value;
        }
        newline = buffer.search(/\r?\n/);
      }
      if (done) return;
    }
  } finally {
    reader.releaseLock();
  }
}

/** An error answer of the API: its code, HTTP status and message. */
export class KeywardApiError extends Error {
  readonly code: string;
  readonly status: number;
  readonly details: Record<string, unknown> | undefined;
  constructor(status: number, code: string, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = 'KeywardApiError';
    this.status = status;
    this.code = code;
    this.details = details;
  }

  static async fromResponse(response: Response): Promise<KeywardApiError> {
    const text = await response.text();
    try {
      const body = JSON.parse(text) as {
        error?: { code?: string; message?: string; details?: Record<string, unknown> };
      };
      if (body.error?.code) {
        return new KeywardApiError(
          response.status,
          body.error.code,
          body.error.message ?? '',
          body.error.details,
        );
      }
    } catch {
      // Not JSON: a proxy or something else answered.
    }
    return new KeywardApiError(
      response.status,
      response.status === 404 ? 'NOT_FOUND' : 'INTERNAL_ERROR',
      text.slice(0, 200) || response.statusText,
    );
  }
}

export type JobEvent =
  | { type: 'progress'; sequence: number; time: string; step: string; status: string; message: string }
  | { type: 'log'; sequence: number; time: string; message: string }
  | { type: 'result'; sequence: number; time: string; result: unknown }
  | { type: 'error'; sequence: number; time: string; error: { code: string; message: string; step?: string } }
  | { type: 'gap'; sequence: number; time: string; dropped: number };

/**
 * A small untyped-path client over fetch, used by the CLI. The same code talks
 * to a server over HTTP or to an app in the same process.
 */
export class KeywardClient {
  readonly #baseUrl: string;
  readonly #token: string;
  readonly #fetch: typeof fetch;

  constructor(options: ClientOptions) {
    this.#baseUrl = options.baseUrl.replace(/\/$/, '');
    this.#token = options.token;
    this.#fetch = options.fetch ?? fetch;
  }

  async request(method: string, path: string, body?: unknown, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    headers.set('authorization', `Bearer ${this.#token}`);
    if (body !== undefined) headers.set('content-type', 'application/json');
    const response = await this.#fetch(`${this.#baseUrl}${path}`, {
      ...init,
      method,
      headers,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    if (!response.ok) throw await KeywardApiError.fromResponse(response);
    return response;
  }

  async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    return (await (await this.request(method, path, body)).json()) as T;
  }

  /** Every event of a job from the first, ending with its result or error. */
  async *jobEvents(jobId: string, signal?: AbortSignal): AsyncGenerator<JobEvent> {
    const response = await this.request('GET', `/api/jobs/${encodeURIComponent(jobId)}/events`, undefined, {
      headers: { accept: 'text/event-stream' },
      ...(signal ? { signal } : {}),
    });
    if (!response.body) return;
    for await (const event of readServerSentEvents(response.body)) {
      yield JSON.parse(event.data) as JobEvent;
    }
  }

  /** Log lines; with `follow`, until the server ends the stream or `signal` aborts. */
  async *logs(
    name: string,
    options: { follow?: boolean; container?: string; tail?: number; signal?: AbortSignal } = {},
  ): AsyncGenerator<{ container: string; stream: string; line: string }> {
    const query = new URLSearchParams();
    if (options.follow) query.set('follow', 'true');
    if (options.container) query.set('container', options.container);
    if (options.tail !== undefined) query.set('tail', String(options.tail));
    const path = `/api/instances/${encodeURIComponent(name)}/logs${query.size > 0 ? `?${query}` : ''}`;
    const response = await this.request(
      'GET',
      path,
      undefined,
      options.signal ? { signal: options.signal } : {},
    );
    if (!options.follow) {
      yield* ((await response.json()) as { lines: { container: string; stream: string; line: string }[] })
        .lines;
      return;
    }
    if (!response.body) return;
    for await (const event of readServerSentEvents(response.body)) {
      if (event.event === 'log') yield JSON.parse(event.data);
      else if (event.event === 'error') {
        const { error } = JSON.parse(event.data) as { error: { code: string; message: string } };
        throw new KeywardApiError(502, error.code, error.message);
      } else if (event.event === 'end') return;
    }
  }
}
