import { type LogLineV2, ProviderRegistry } from '@keyward/core';
import {
  createMemoryTargetProvider,
  createMockSidecarProvider,
  createSeededRandomBytes,
  type MemoryTargetProviderOptions,
} from '@keyward/core/testing';
import { type CreateAppOptions, createApp } from '../src/app.js';
import type { JobEvent } from '../src/jobs/job-manager.js';
import type { Logger } from '../src/logger.js';

export const testToken = 'kw_test-token-for-route-tests-0123456789';

export interface TestHarness {
  app: ReturnType<typeof createApp>;
  registry: ProviderRegistry;
  target: ReturnType<typeof createMemoryTargetProvider>;
  logLines: string[];
  request(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<Response>;
}

/** A log sink that keeps every finished line, so tests can scan them. */
export function captureLogger(lines: string[]): Logger {
  return {
    log(level, message, fields = {}) {
      // Same path as the JSON logger, minus the sink.
      lines.push(JSON.stringify({ level, message, ...fields }));
    },
  };
}

export function createHarness(
  options: {
    target?: MemoryTargetProviderOptions;
    app?: Partial<CreateAppOptions>;
    registry?: ProviderRegistry;
  } = {},
): TestHarness {
  const registry = options.registry ?? new ProviderRegistry();
  // The in-memory target runs no process: its exec answers what a passing check would see.
  const target = createMemoryTargetProvider({
    exec: () => ({ exitCode: 0, stdout: 'ok', stderr: '', timedOut: false }),
    ...options.target,
  });
  if (!options.registry) {
    registry.registerTarget(target);
    registry.registerSidecar(createMockSidecarProvider());
  }
  const logLines: string[] = [];
  const app = createApp({
    registry,
    token: testToken,
    logger: options.app?.logger ?? captureLogger(logLines),
    randomBytes: createSeededRandomBytes(7),
    ...options.app,
  });
  return {
    app,
    registry,
    target,
    logLines,
    request: (method, path, body, headers = {}) =>
      Promise.resolve(
        app.request(path, {
          method,
          headers: {
            authorization: `Bearer ${testToken}`,
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
            ...headers,
          },
          ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
        }),
      ),
  };
}

export function mockSpec(name = 'demo', extra: Record<string, unknown> = {}) {
  return {
    name,
    target: 'memory',
    agent: { image: 'localhost/agent:test', port: 18789, skillsDirectory: '/skills' },
    sidecars: { mock: { secret: 'mock-secret-value-123' } },
    ...extra,
  };
}

type MemberKeys<Union> = Union extends unknown ? keyof Union : never;
/** Every member of every type of a union, each optional, typed as the types that have it say. */
type AnyMemberOf<Union> = {
  [Key in MemberKeys<Union>]?: Union extends Record<Key, infer Value> ? Value : never;
};

/**
 * An event's `data`: a job event (`/api/jobs/{id}/events`), or a log line, `{}` (`end`) or
 * an `error` (`/logs?follow=true`). Which one depends on the stream a test reads.
 */
export type StreamEventData = AnyMemberOf<
  JobEvent | LogLineV2 | { error: { code: string; message: string } }
>;

export interface StreamEvent {
  event: string;
  data: StreamEventData;
  id?: string;
}

/** Reads a whole SSE body into `{ event, data }` records. */
export async function readEvents(response: Response): Promise<StreamEvent[]> {
  const text = await response.text();
  return text
    .split(/\n\n/)
    .filter((block) => block.trim().length > 0)
    .map((block) => {
      const record: StreamEvent = { event: 'message', data: {} };
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) record.event = line.slice(6).trim();
        else if (line.startsWith('data:')) record.data = JSON.parse(line.slice(5).trim()) as StreamEventData;
        else if (line.startsWith('id:')) record.id = line.slice(3).trim();
      }
      return record;
    });
}
