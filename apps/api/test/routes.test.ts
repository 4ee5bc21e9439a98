import { type ExecResultV2, KeywardError, ProviderRegistry, type VerificationContextV2 } from '@keyward/core';
import { createMemoryTargetProvider, createMockSidecarProvider } from '@keyward/core/testing';
import { createKubernetesProvider } from '@keyward/provider-k8s';
import { createTokenizerProvider } from '@keyward/provider-tokenizer';
import { describe, expect, it } from 'vitest';
import * as z from 'zod';
import { createHarness, mockSpec, readEvents, testToken } from './test-app.js';

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((done) => {
    resolve = done;
  });
  return { promise, resolve };
}

async function waitFor(condition: () => boolean, what: string): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    if (condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function deployAndWait(harness: ReturnType<typeof createHarness>, spec: object = mockSpec()) {
  const accepted = await harness.request('POST', '/api/instances', spec);
  expect(accepted.status).toBe(202);
  const { jobId } = (await accepted.json()) as { jobId: string };
  const events = await readEvents(await harness.request('GET', `/api/jobs/${jobId}/events`));
  return { jobId, events };
}

async function errorOf(response: Response): Promise<{ status: number; code: string; message: string }> {
  const body = (await response.json()) as { error: { code: string; message: string } };
  return { status: response.status, code: body.error.code, message: body.error.message };
}

describe('auth', () => {
  it('serves health without a token', async () => {
    const harness = createHarness();
    const response = await harness.app.request('/api/health');
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ok', version: '0.1.0' });
  });

  it.each([
    ['no header', {}],
    ['a wrong token', { authorization: 'Bearer kw_wrong' }],
    ['a non-bearer scheme', { authorization: `Basic ${testToken}` }],
  ])('refuses every other route with %s', async (_label, headers) => {
    const harness = createHarness();
    for (const path of [
      '/api/instances',
      '/api/targets',
      '/api/providers',
      '/api/openapi.json',
      '/api/jobs',
    ]) {
      const response = await harness.app.request(path, { headers });
      expect(response.status, path).toBe(401);
      expect(response.headers.get('www-authenticate')).toContain('Bearer');
      expect((await errorOf(response)).code).toBe('UNAUTHORIZED');
    }
    const deploy = await harness.app.request('/api/instances', {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: JSON.stringify(mockSpec()),
    });
    expect(deploy.status).toBe(401);
    expect(harness.target.inspect('demo')).toBeUndefined();
  });

  it('follows a rotated token without a restart', async () => {
    let current = 'kw_first-token-aaaaaaaa';
    const harness = createHarness({ app: { token: () => current } });
    const ask = (token: string) =>
      harness.app.request('/api/instances', { headers: { authorization: `Bearer ${token}` } });
    expect((await ask('kw_first-token-aaaaaaaa')).status).toBe(200);
    current = 'kw_second-token-bbbbbbb';
    expect((await ask('kw_first-token-aaaaaaaa')).status).toBe(401);
    expect((await ask('kw_second-token-bbbbbbb')).status).toBe(200);
  });
});

describe('system routes', () => {
  it('describes every route in an OpenAPI 3.1 document', async () => {
    const harness = createHarness();
    const document = (await (await harness.request('GET', '/api/openapi.json')).json()) as {
      openapi: string;
      paths: Record<string, Record<string, unknown>>;
    };
    expect(document.openapi).toBe('3.1.0');
    expect(Object.keys(document.paths).sort()).toEqual([
      '/api/health',
      '/api/instances',
      '/api/instances/{id}',
      '/api/instances/{id}/logs',
      '/api/instances/{id}/render',
      '/api/instances/{id}/restart',
      '/api/instances/{id}/sidecars/{providerId}',
      '/api/instances/{id}/start',
      '/api/instances/{id}/stop',
      '/api/instances/{id}/verify',
      '/api/jobs',
      '/api/jobs/{id}',
      '/api/jobs/{id}/events',
      '/api/providers',
      '/api/render',
      '/api/targets',
    ]);
    expect(Object.keys(document.paths['/api/instances/{id}/sidecars/{providerId}']!).sort()).toEqual([
      'get',
      'put',
    ]);
  });

  it('carries every installed sidecar’s config, change, view and verify options schemas, and serves its aliases', async () => {
    const registry = new ProviderRegistry();
    registry.registerTarget(createMemoryTargetProvider());
    registry.registerSidecar(
      createMockSidecarProvider({
        routeAliases: ['mock-page'],
        view: {
          schema: z.object({ port: z.number() }),
          build: (state) => ({ port: state.metadata['port'] as number }),
        },
      }),
    );
    const harness = createHarness({ registry });
    const document = (await (await harness.request('GET', '/api/openapi.json')).json()) as {
      paths: Record<string, Record<string, { requestBody?: unknown }>>;
      components: { schemas: Record<string, { properties?: Record<string, unknown> }> };
    };
    const schemas = document.components.schemas;
    expect(Object.keys(schemas['SidecarConfig_mock']!.properties!).sort()).toEqual([
      'image',
      'port',
      'secret',
    ]);
    expect(Object.keys(schemas['SidecarChange_mock']!.properties!)).toEqual(['token']);
    expect(schemas['SidecarView_mock']).toMatchObject({ properties: { port: { type: 'number' } } });
    expect(Object.keys(document.paths['/api/instances/{id}/mock-page']!).sort()).toEqual(['get', 'put']);
    expect(JSON.stringify(document.paths['/api/instances/{id}/mock-page']!['put']!.requestBody)).toContain(
      '#/components/schemas/SidecarChange_mock',
    );
    await deployAndWait(harness);
    const page = await harness.request('GET', '/api/instances/demo/mock-page');
    expect(await page.json()).toEqual({ port: 4100 });
    expect(await (await harness.request('GET', '/api/instances/demo/sidecars/mock')).json()).toEqual({
      port: 4100,
    });
    expect((await harness.request('PUT', '/api/instances/demo/mock-page', {})).status).toBe(202);
  });

  it('names the installed sidecars in the deploy and render bodies, each with its config schema', async () => {
    const registry = new ProviderRegistry();
    registry.registerTarget(createMemoryTargetProvider());
    registry.registerSidecar(createMockSidecarProvider());
    registry.registerSidecar(createMockSidecarProvider({ id: 'second' }));
    const harness = createHarness({ registry });
    type Operation = { requestBody?: { content: { 'application/json': { schema: JsonSchema } } } };
    type JsonSchema = {
      properties?: Record<string, JsonSchema>;
      $ref?: string;
      additionalProperties?: unknown;
    };
    const document = (await (await harness.request('GET', '/api/openapi.json')).json()) as {
      paths: Record<string, Record<string, Operation>>;
      components: { schemas: Record<string, unknown> };
    };
    for (const path of ['/api/instances', '/api/render']) {
      const body = document.paths[path]!['post']!.requestBody!.content['application/json'].schema;
      const sidecars = body.properties!['sidecars']!;
      expect(sidecars.additionalProperties, path).toBe(false);
      expect(
        Object.fromEntries(Object.entries(sidecars.properties!).map(([id, schema]) => [id, schema.$ref])),
        path,
      ).toEqual({
        mock: '#/components/schemas/SidecarConfig_mock',
        second: '#/components/schemas/SidecarConfig_second',
      });
    }
    expect(Object.keys(document.components.schemas)).toEqual(
      expect.arrayContaining(['SidecarConfig_mock', 'SidecarConfig_second']),
    );
    // What the document says is what the server does: a sidecar it does not list is refused.
    const unknown = await harness.request('POST', '/api/instances', {
      ...mockSpec(),
      sidecars: { mock: {}, third: {} },
    });
    expect(unknown.status).toBe(400);
    expect((await errorOf(unknown)).code).toBe('UNKNOWN_PROVIDER');
  });

  it('links a deploy to the operations on its instance, each to an operation and parameters that exist', async () => {
    const harness = createHarness();
    type Parameter = { name: string; in: string };
    type Operation = {
      parameters?: Parameter[];
      responses: Record<string, { links?: Record<string, Link> }>;
    };
    type Link = { operationRef: string; parameters: Record<string, string> };
    const document = (await (await harness.request('GET', '/api/openapi.json')).json()) as {
      paths: Record<string, Record<string, Operation>>;
    };
    const links = Object.values(document.paths['/api/instances']!['post']!.responses['202']!.links ?? {});
    expect(links.length).toBeGreaterThanOrEqual(8);
    const accepted = await harness.request('POST', '/api/instances', mockSpec());
    const body = (await accepted.json()) as Record<string, unknown>;
    for (const link of links) {
      const [, path, method] = /^#\/paths\/([^/]+)\/([a-z]+)$/.exec(link.operationRef) ?? [];
      const operation = document.paths[path!.replaceAll('~1', '/')]?.[method!];
      expect(operation, link.operationRef).toBeDefined();
      for (const [parameter, expression] of Object.entries(link.parameters)) {
        const [location, name] = parameter.split('.');
        expect(operation!.parameters, `${link.operationRef} ${parameter}`).toContainEqual(
          expect.objectContaining({ in: location, name }),
        );
        // The value comes from a field the deploy's answer has.
        const field = expression.replace('$response.body#/', '');
        expect(typeof body[field], `${link.operationRef} ${expression}`).toBe('string');
      }
    }
    const { jobId } = body as { jobId: string };
    await readEvents(await harness.request('GET', `/api/jobs/${jobId}/events`));
  });

  it('lists the words a boolean query takes, and the server takes each of them', async () => {
    const harness = createHarness();
    const document = (await (await harness.request('GET', '/api/openapi.json')).json()) as {
      paths: Record<string, Record<string, { parameters?: { name: string; schema: { enum?: string[] } }[] }>>;
    };
    const replace = document.paths['/api/instances']!['post']!.parameters!.find(
      (parameter) => parameter.name === 'replace',
    );
    expect(replace?.schema.enum?.length).toBeGreaterThan(0);
    await deployAndWait(harness);
    for (const word of replace!.schema.enum!) {
      const response = await harness.request('POST', `/api/instances?replace=${word}`, mockSpec());
      // Each word is read as a boolean: replace answers 202, no-replace 409, never a 400.
      expect([202, 409], word).toContain(response.status);
      const accepted = response.status === 202;
      expect(accepted, word).toBe(['true', '1', 'yes', 'on', 'y', 'enabled'].includes(word));
      if (accepted) {
        const { jobId } = (await response.json()) as { jobId: string };
        await readEvents(await harness.request('GET', `/api/jobs/${jobId}/events`));
      }
    }
  });

  it('does not serve an alias that would shadow a route of the API', async () => {
    const registry = new ProviderRegistry();
    registry.registerTarget(createMemoryTargetProvider());
    registry.registerSidecar(createMockSidecarProvider({ routeAliases: ['logs'] }));
    const harness = createHarness({ registry });
    expect(harness.logLines.join('\n')).toContain('sidecar route alias not served');
    await deployAndWait(harness);
    const logs = (await (await harness.request('GET', '/api/instances/demo/logs')).json()) as {
      lines: unknown[];
    };
    expect(Array.isArray(logs.lines)).toBe(true);
  });

  it('lists targets with their detection status, a failing detect as unavailable', async () => {
    const registry = new ProviderRegistry();
    registry.registerTarget(createMemoryTargetProvider());
    registry.registerTarget({
      ...createMemoryTargetProvider({ id: 'broken' }),
      detect: async () => {
        throw new Error('socket /run/podman/podman.sock refused the connection');
      },
    });
    registry.registerTarget({
      ...createMemoryTargetProvider({ id: 'slow' }),
      detect: () => new Promise(() => {}),
    });
    const harness = createHarness({ registry, app: { detectTimeoutMilliseconds: 50 } });
    const { targets } = (await (await harness.request('GET', '/api/targets')).json()) as {
      targets: { id: string; detection: { available: boolean; reason?: string } }[];
    };
    const byId = Object.fromEntries(targets.map((target) => [target.id, target.detection]));
    expect(byId['memory']?.available).toBe(true);
    expect(byId['broken']).toEqual({ available: false, reason: expect.stringContaining('refused') });
    expect(byId['slow']).toEqual({ available: false, reason: expect.stringContaining('did not answer') });
  });

  it('lists installed providers and plugin load errors', async () => {
    const harness = createHarness();
    harness.registry.registerPlugin(
      {
        specificationVersion: 'v1',
        name: 'bad-plugin',
        sidecars: [{ specificationVersion: 'v9', id: 'x' } as never],
      },
      'bad-plugin',
    );
    const body = (await (await harness.request('GET', '/api/providers')).json()) as {
      sidecars: { id: string; rotation: boolean; schemas: Record<string, unknown> }[];
      targets: { id: string; schemas: { options: { properties: Record<string, unknown> } } }[];
      loadErrors: { source: string; code: string }[];
    };
    expect(body.sidecars).toEqual([
      {
        id: 'mock',
        displayName: 'Mock sidecar',
        networkModes: ['proxy-only', 'open'],
        requires: [],
        rotation: true,
        verification: true,
        routeAliases: [],
        roles: [],
        errorCodes: {},
        schemas: {
          config: expect.objectContaining({ type: 'object' }),
          change: expect.objectContaining({ type: 'object' }),
        },
      },
    ]);
    expect(body.targets.map((target) => target.id)).toEqual(['memory']);
    expect(Object.keys(body.targets[0]!.schemas.options.properties).sort()).toEqual([
      'hostAddress',
      'hostPort',
    ]);
    expect(body.loadErrors).toEqual([
      expect.objectContaining({ source: 'bad-plugin', code: 'UNSUPPORTED_SPEC_VERSION' }),
    ]);
  });

  it('answers unknown routes and jobs with NOT_FOUND', async () => {
    const harness = createHarness();
    expect(await errorOf(await harness.request('GET', '/api/nothing'))).toMatchObject({
      status: 404,
      code: 'NOT_FOUND',
    });
    expect(await errorOf(await harness.request('GET', '/api/jobs/deploy-none'))).toMatchObject({
      status: 404,
      code: 'NOT_FOUND',
    });
    expect(await errorOf(await harness.request('GET', '/api/jobs/deploy-none/events'))).toMatchObject({
      status: 404,
      code: 'NOT_FOUND',
    });
  });
});

describe('deploy', () => {
  it('accepts with 202 and a job whose events end with the result', async () => {
    const harness = createHarness();
    const response = await harness.request('POST', '/api/instances', mockSpec());
    expect(response.status).toBe(202);
    const accepted = (await response.json()) as {
      jobId: string;
      deployId: string;
      eventsUrl: string;
      instance: string;
    };
    expect(accepted.deployId).toBe(accepted.jobId);
    expect(accepted.eventsUrl).toBe(`/api/jobs/${accepted.jobId}/events`);
    const events = await readEvents(await harness.request('GET', accepted.eventsUrl));
    expect(events.map((event) => event.data.sequence)).toEqual(events.map((_, index) => index + 1));
    expect(events.at(-1)).toMatchObject({
      event: 'result',
      data: { result: { name: 'demo', state: 'running' } },
    });
    expect(events.filter((event) => event.event === 'progress').map((event) => event.data.step)).toContain(
      'container.start:mock',
    );
    expect(harness.target.inspect('demo')?.containers.map((container) => container.name)).toEqual([
      'agent',
      'mock',
    ]);
    const job = (await (await harness.request('GET', `/api/jobs/${accepted.jobId}`)).json()) as {
      status: string;
    };
    expect(job.status).toBe('succeeded');
  });

  it.each([
    ['a spec without agent', { name: 'demo', target: 'memory' }, 'INVALID_INSTANCE_SPEC', /agent/],
    ['a bad name', { ...mockSpec(), name: 'Not A Label' }, 'INVALID_INSTANCE_SPEC', /DNS-1123/],
    ['an unknown field', { ...mockSpec(), colour: 'red' }, 'INVALID_INSTANCE_SPEC', /colour/],
    [
      'a sidecar config its provider rejects',
      { ...mockSpec(), sidecars: { mock: { port: 'eighty' } } },
      'INVALID_PROVIDER_CONFIG',
      /sidecars\.mock\.port/,
    ],
    ['an unknown sidecar', { ...mockSpec(), sidecars: { nope: {} } }, 'UNKNOWN_PROVIDER', /nope/],
    ['an unknown target', { ...mockSpec(), target: 'mars' }, 'UNKNOWN_PROVIDER', /mars/],
    [
      'a port conflict',
      { ...mockSpec(), agent: { image: 'a', port: 4100, skillsDirectory: '/skills' } },
      'PORT_CONFLICT',
      /4100/,
    ],
  ])('answers %s with 400', async (_label, spec, code, message) => {
    const harness = createHarness();
    const error = await errorOf(await harness.request('POST', '/api/instances', spec));
    expect(error).toMatchObject({ status: 400, code });
    expect(error.message).toMatch(message);
    expect(harness.app.operations.jobs.list()).toEqual([]);
  });

  it('answers a body that is not JSON with 400', async () => {
    const harness = createHarness();
    const error = await errorOf(await harness.request('POST', '/api/instances', '{"name":'));
    expect(error.status).toBe(400);
  });

  it('refuses to deploy over an existing instance unless replace=true (409 INSTANCE_EXISTS)', async () => {
    const harness = createHarness();
    await deployAndWait(harness);
    const error = await errorOf(await harness.request('POST', '/api/instances', mockSpec()));
    expect(error).toMatchObject({ status: 409, code: 'INSTANCE_EXISTS' });
    const replaced = await harness.request('POST', '/api/instances?replace=true', mockSpec());
    expect(replaced.status).toBe(202);
  });

  it('answers a network mode the target cannot do with 501 UNSUPPORTED_CAPABILITY', async () => {
    const registry = new ProviderRegistry();
    const memory = createMemoryTargetProvider();
    registry.registerTarget({ ...memory, capabilities: { ...memory.capabilities, networkModes: ['open'] } });
    registry.registerSidecar(createMockSidecarProvider());
    const harness = createHarness({ registry });
    expect(await errorOf(await harness.request('POST', '/api/instances', mockSpec()))).toMatchObject({
      status: 501,
      code: 'UNSUPPORTED_CAPABILITY',
    });
  });

  it('ends a failed deploy with an error event that names the step, and rolls back', async () => {
    const harness = createHarness({
      target: {
        beforeStep: (step) => {
          if (step === 'container.start:mock')
            throw new Error('image localhost/keyward-mock-sidecar:test not found');
        },
      },
    });
    const { jobId, events } = await deployAndWait(harness);
    const last = events.at(-1)!;
    expect(last.event).toBe('error');
    expect(last.data.error).toMatchObject({ code: 'DEPLOY_FAILED', step: 'container.start:mock' });
    expect(last.data.error?.message).toContain('image localhost/keyward-mock-sidecar:test not found');
    const job = (await (await harness.request('GET', `/api/jobs/${jobId}`)).json()) as Record<
      string,
      unknown
    >;
    expect(job).toMatchObject({ status: 'failed', failedStep: 'container.start:mock' });
    expect(harness.target.inspect('demo')).toBeUndefined();
  });

  it('replays every event from the first to a subscriber that arrives mid-job, then streams the rest', async () => {
    const gate = deferred();
    const reached = { value: false };
    const harness = createHarness({
      target: {
        beforeStep: async (step) => {
          if (step === 'container.start:agent') {
            reached.value = true;
            await gate.promise;
          }
        },
      },
    });
    const accepted = (await (await harness.request('POST', '/api/instances', mockSpec())).json()) as {
      jobId: string;
    };
    await waitFor(() => reached.value, 'the deploy to reach the agent step');
    const streaming = harness.request('GET', `/api/jobs/${accepted.jobId}/events`);
    gate.resolve();
    const events = await readEvents(await streaming);
    expect(events[0]?.data).toMatchObject({
      sequence: 1,
      type: 'progress',
      step: 'policy.create',
      status: 'started',
    });
    expect(events.at(-1)?.event).toBe('result');
    // A late subscriber after the end gets exactly the same stream.
    const late = await readEvents(await harness.request('GET', `/api/jobs/${accepted.jobId}/events`));
    expect(late).toEqual(events);
    // And one that reconnects resumes after the last id it saw.
    const resumed = await readEvents(
      await harness.request('GET', `/api/jobs/${accepted.jobId}/events`, undefined, { 'last-event-id': '5' }),
    );
    expect(resumed.map((event) => event.data.sequence)).toEqual(
      events.slice(5).map((event) => event.data.sequence),
    );
  });
});

describe('instances', () => {
  it('lists, gets (redacted), stops, starts, restarts and deletes', async () => {
    const harness = createHarness();
    await deployAndWait(harness);
    const list = (await (await harness.request('GET', '/api/instances')).json()) as {
      instances: { name: string; state: string }[];
      errors: unknown[];
    };
    expect(list).toMatchObject({ instances: [{ name: 'demo', state: 'running' }], errors: [] });

    const getResponse = await harness.request('GET', '/api/instances/demo');
    const text = await getResponse.text();
    expect(getResponse.status).toBe(200);
    expect(text).not.toContain('mock-secret-value-123');
    expect(JSON.parse(text)).toMatchObject({ name: 'demo', sidecars: [{ providerId: 'mock' }] });

    for (const [action, state] of [
      ['stop', 'stopped'],
      ['start', 'running'],
      ['restart', 'running'],
    ] as const) {
      const response = await harness.request('POST', `/api/instances/demo/${action}`);
      expect(await response.json()).toEqual({ name: 'demo', target: 'memory', status: state });
      const detail = (await (await harness.request('GET', '/api/instances/demo')).json()) as {
        state: string;
      };
      expect(detail.state).toBe(state);
    }

    const removed = await harness.request('DELETE', '/api/instances/demo');
    expect(await removed.json()).toEqual({ name: 'demo', target: 'memory', status: 'deleted' });
    expect(harness.target.inspect('demo')).toBeUndefined();
  });

  it.each([
    ['GET', '/api/instances/ghost'],
    ['POST', '/api/instances/ghost/start'],
    ['POST', '/api/instances/ghost/stop'],
    ['POST', '/api/instances/ghost/restart'],
    ['DELETE', '/api/instances/ghost'],
    ['GET', '/api/instances/ghost/logs'],
    ['GET', '/api/instances/ghost/sidecars/mock'],
    ['PUT', '/api/instances/ghost/sidecars/mock'],
    ['POST', '/api/instances/ghost/verify'],
    ['GET', '/api/instances/ghost/render'],
  ])('%s %s of an unknown instance is 404 INSTANCE_NOT_FOUND', async (method, path) => {
    const harness = createHarness();
    const error = await errorOf(await harness.request(method, path, method === 'PUT' ? {} : undefined));
    expect(error).toMatchObject({ status: 404, code: 'INSTANCE_NOT_FOUND' });
  });

  it('returns logs as JSON, and as Server-Sent Events with follow', async () => {
    const harness = createHarness();
    await deployAndWait(harness);
    const json = (await (await harness.request('GET', '/api/instances/demo/logs?container=mock')).json()) as {
      lines: { container: string; line: string }[];
    };
    expect(json.lines).toEqual([{ container: 'mock', stream: 'stdout', line: 'demo-mock started' }]);
    const followed = await harness.request('GET', '/api/instances/demo/logs?follow=true');
    expect(followed.headers.get('content-type')).toContain('text/event-stream');
    const events = await readEvents(followed);
    expect(events.filter((event) => event.event === 'log').map((event) => event.data.container)).toEqual([
      'agent',
      'mock',
    ]);
    expect(events.at(-1)?.event).toBe('end');
  });

  it('runs the self-test: each sidecar’s checks through the target’s exec, judged by the sidecar', async () => {
    const executed: string[][] = [];
    let exitCode = 0;
    const harness = createHarness({
      target: {
        exec: (_plan, request) => {
          executed.push([request.container, ...request.command]);
          return { exitCode, stdout: '', stderr: '', timedOut: false };
        },
      },
    });
    await deployAndWait(harness);
    const result = await (await harness.request('POST', '/api/instances/demo/verify')).json();
    expect(result).toEqual({
      passed: true,
      checks: [
        {
          name: 'mock-reachable',
          providerId: 'mock',
          description: 'The agent reaches the mock sidecar.',
          passed: true,
          evidence: 'exit 0 (proxy-only)',
        },
      ],
    });
    expect(executed).toEqual([['agent', 'mock-check', 'mock']]);
    exitCode = 7;
    const failed = await (await harness.request('POST', '/api/instances/demo/verify')).json();
    expect(failed).toMatchObject({
      passed: false,
      checks: [{ passed: false, evidence: 'exit 7 (proxy-only)' }],
    });
  });

  it('adds the target’s own checks first, and fails a check that cannot run or whose judge throws', async () => {
    const registry = new ProviderRegistry();
    const memory = createMemoryTargetProvider({
      exec: (_plan, request) => {
        if (request.command[0] === 'mock-check') throw new Error('container agent is not running');
        return { exitCode: 1, stdout: '', stderr: 'connect ENETUNREACH', timedOut: false };
      },
    });
    registry.registerTarget({
      ...memory,
      verificationChecks: () => [
        {
          name: 'direct-egress-blocked',
          description: 'The agent cannot reach the internet directly.',
          exec: { container: 'agent', command: ['probe-direct'] },
          judge: (result: ExecResultV2) => ({ passed: result.exitCode !== 0, evidence: result.stderr }),
        },
        {
          name: 'broken-judge',
          description: 'A judge that throws.',
          exec: { container: 'agent', command: ['probe-other'] },
          judge: () => {
            throw new Error('cannot parse the output');
          },
        },
      ],
    });
    registry.registerSidecar(createMockSidecarProvider());
    const harness = createHarness({ registry });
    await deployAndWait(harness);
    const result = (await (await harness.request('POST', '/api/instances/demo/verify')).json()) as {
      passed: boolean;
      checks: { name: string; providerId: string; passed: boolean; evidence: string }[];
    };
    expect(result.passed).toBe(false);
    expect(result.checks.map(({ name, providerId, passed }) => [name, providerId, passed])).toEqual([
      ['direct-egress-blocked', 'memory', true],
      ['broken-judge', 'memory', false],
      ['mock-reachable', 'mock', false],
    ]);
    expect(result.checks[0]!.evidence).toBe('connect ENETUNREACH');
    expect(result.checks[1]!.evidence).toContain('cannot parse the output');
    expect(result.checks[2]!.evidence).toContain('container agent is not running');
  });

  it('validates verify options with each sidecar’s schema, top-level fields going to the sidecars that take them', async () => {
    const seen: unknown[] = [];
    const registry = new ProviderRegistry();
    registry.registerTarget(
      createMemoryTargetProvider({ exec: () => ({ exitCode: 0, stdout: '', stderr: '', timedOut: false }) }),
    );
    const mock = createMockSidecarProvider();
    registry.registerSidecar({
      ...mock,
      verification: {
        optionsSchema: z.object({ url: z.url().optional(), tries: z.number().int().optional() }).strict(),
        checks: (context: VerificationContextV2, options: unknown) => {
          seen.push(options);
          return mock.verification!.checks(context, options);
        },
      },
    });
    registry.registerSidecar(createMockSidecarProvider({ id: 'other' }));
    const harness = createHarness({ registry });
    await deployAndWait(harness, {
      ...mockSpec(),
      sidecars: { mock: {}, other: { port: 4200 } },
    });
    const verify = (body: unknown) => harness.request('POST', '/api/instances/demo/verify', body);
    expect((await verify({ url: 'https://api.example.com/' })).status).toBe(200);
    expect((await verify({ options: { mock: { tries: 2 } }, url: 'https://a.example.com/' })).status).toBe(
      200,
    );
    expect(seen).toEqual([{ url: 'https://api.example.com/' }, { tries: 2, url: 'https://a.example.com/' }]);
    for (const [body, message] of [
      [{ colour: 'red' }, /No sidecar of instance "demo" takes the verify options "colour"/],
      [{ options: { mock: { tries: 'two' } } }, /options\.mock\.tries/],
      [{ options: { other: { url: 'x' } } }, /"other" takes no verify options/],
      [{ options: { ghost: {} } }, /"ghost", which is not a sidecar/],
    ] as const) {
      const error = await errorOf(await verify(body));
      expect(error.status).toBe(400);
      expect(error.code).toBe('INVALID_INPUT');
      expect(error.message).toMatch(message);
    }
  });

  it('renders a spec where the target can, and says why a stored spec cannot be recomposed', async () => {
    const harness = createHarness();
    const rendered = (await (await harness.request('POST', '/api/render', mockSpec())).json()) as {
      content: string;
    };
    // The target renders the neutral plan its own way (the memory target: pods with allow-lists).
    expect(JSON.parse(rendered.content)).toMatchObject({
      pods: [
        { name: 'demo-agent', containers: ['agent'] },
        { name: 'demo-egress', containers: ['mock'] },
      ],
    });
    expect(rendered.content).not.toContain('mock-secret-value-123');
    await deployAndWait(harness, { ...mockSpec(), sidecars: {} });
    const fromInstance = (await (await harness.request('GET', '/api/instances/demo/render')).json()) as {
      content: string;
    };
    expect(JSON.parse(fromInstance.content)).toMatchObject({ pods: [{ name: 'demo-agent' }] });
  });

  it('renders k8s Secrets without values by default, apart with secretValues=separate, and checks the choice', async () => {
    const registry = new ProviderRegistry();
    registry.registerTarget(createKubernetesProvider());
    registry.registerSidecar(createTokenizerProvider());
    const harness = createHarness({ registry });
    const raw = 'ghp_RoutesRenderRaw_0123456789abcdef';
    const spec = {
      name: 'routes-render',
      target: 'k8s',
      network: { egress: 'open' },
      agent: { image: 'localhost/agent:test', port: 18789, skillsDirectory: '/skills' },
      sidecars: {
        tokenizer: { credentials: [{ name: 'github', secret: raw, allowedHosts: ['api.github.com'] }] },
      },
    };
    const omitted = (await (await harness.request('POST', '/api/render', spec)).json()) as {
      secretValues: string;
      content: string;
      secrets: { name: string; keys: { key: string; readers: string[]; agentSafe: boolean }[] }[];
      secretsContent?: string;
    };
    expect(omitted.secretValues).toBe('omit');
    expect(omitted.secretsContent).toBeUndefined();
    expect(omitted.content).not.toContain('[REDACTED]');
    expect(omitted.content).toContain('keyward.dev/values: omitted');
    expect(omitted.secrets.flatMap((secret) => secret.keys)).toContainEqual({
      key: 'tokenizer-open-key',
      providerId: 'tokenizer',
      readers: ['tokenizer'],
      agentSafe: false,
    });
    const separate = (await (
      await harness.request('POST', '/api/render?secretValues=separate', spec)
    ).json()) as { content: string; secretsContent: string };
    const openKey = /tokenizer-open-key: (\S+)/.exec(separate.secretsContent)?.[1] ?? '';
    expect(Buffer.from(openKey, 'base64').toString('utf8')).toMatch(/^[0-9a-f]{64}$/);
    expect(separate.content).not.toContain(openKey);
    expect(JSON.stringify([omitted, separate])).not.toContain(raw);
    expect(
      await errorOf(await harness.request('POST', '/api/render?secretValues=redact', spec)),
    ).toMatchObject({
      status: 400,
    });
    // The memory target declares no renderedSecrets: values apart are refused, the default is redacted.
    const memory = createHarness();
    expect(
      await errorOf(await memory.request('POST', '/api/render?secretValues=include', mockSpec())),
    ).toMatchObject({ status: 501, code: 'UNSUPPORTED_CAPABILITY' });
  });

  it('answers verify and render on a target without them with 501 UNSUPPORTED_CAPABILITY', async () => {
    const registry = new ProviderRegistry();
    const memory = createMemoryTargetProvider();
    registry.registerTarget({
      ...memory,
      capabilities: { ...memory.capabilities, render: false, exec: false, rotation: false },
      exec: undefined as never,
      render: undefined,
    });
    registry.registerSidecar(createMockSidecarProvider());
    const harness = createHarness({ registry });
    await deployAndWait(harness);
    for (const [method, path, body] of [
      ['POST', '/api/instances/demo/verify', undefined],
      ['GET', '/api/instances/demo/render', undefined],
      ['POST', '/api/render', mockSpec()],
      ['PUT', '/api/instances/demo/sidecars/mock', {}],
    ] as const) {
      expect(await errorOf(await harness.request(method, path, body)), path).toMatchObject({
        status: 501,
        code: 'UNSUPPORTED_CAPABILITY',
      });
    }
  });

  it('maps runtime failures to 502 and 503, keeps listing the targets that answer', async () => {
    const registry = new ProviderRegistry();
    registry.registerTarget(createMemoryTargetProvider());
    registry.registerTarget({
      ...createMemoryTargetProvider({ id: 'down' }),
      list: async () => {
        throw new KeywardError({ code: 'RUNTIME_UNAVAILABLE', message: 'podman socket not found' });
      },
      get: async () => {
        throw new KeywardError({ code: 'RUNTIME_UNAVAILABLE', message: 'podman socket not found' });
      },
    });
    registry.registerTarget({
      ...createMemoryTargetProvider({ id: 'flaky' }),
      get: async (name: string) => ({
        name,
        target: 'flaky',
        state: 'running' as const,
        networkMode: 'proxy-only' as const,
        containers: [],
        redactedSpec: {},
        sidecars: [],
      }),
      stop: async () => {
        throw new KeywardError({ code: 'RUNTIME_ERROR', message: 'container keyward-x-agent did not stop' });
      },
    });
    const harness = createHarness({ registry });
    const list = (await (await harness.request('GET', '/api/instances')).json()) as { errors: unknown[] };
    expect(list.errors).toEqual([
      { target: 'down', code: 'RUNTIME_UNAVAILABLE', message: 'podman socket not found' },
    ]);
    expect(await errorOf(await harness.request('GET', '/api/instances/x?target=down'))).toMatchObject({
      status: 503,
      code: 'RUNTIME_UNAVAILABLE',
    });
    expect(await errorOf(await harness.request('POST', '/api/instances/x/stop?target=flaky'))).toMatchObject({
      status: 502,
      code: 'RUNTIME_ERROR',
    });
  });

  it('says 404 when the targets that answer lack the instance, 503 when no target answers', async () => {
    const down = () => ({
      ...createMemoryTargetProvider({ id: 'down' }),
      get: async () => {
        throw new KeywardError({ code: 'RUNTIME_UNAVAILABLE', message: 'podman socket not found' });
      },
    });
    const mixed = new ProviderRegistry();
    mixed.registerTarget(createMemoryTargetProvider());
    mixed.registerTarget(down());
    const partly = await errorOf(await createHarness({ registry: mixed }).request('GET', '/api/instances/x'));
    expect(partly).toMatchObject({ status: 404, code: 'INSTANCE_NOT_FOUND' });
    expect(partly.message).toContain('could not ask: down');
    const only = new ProviderRegistry();
    only.registerTarget(down());
    expect(
      await errorOf(await createHarness({ registry: only }).request('GET', '/api/instances/x')),
    ).toMatchObject({
      status: 503,
      code: 'RUNTIME_UNAVAILABLE',
    });
  });

  it('hides the message of an unexpected error behind INTERNAL_ERROR', async () => {
    const registry = new ProviderRegistry();
    registry.registerTarget({
      ...createMemoryTargetProvider(),
      list: async () => {
        throw new TypeError('cannot read properties of undefined (internal detail)');
      },
      get: async () => {
        throw new TypeError('cannot read properties of undefined (internal detail)');
      },
    });
    const harness = createHarness({ registry });
    const error = await errorOf(await harness.request('GET', '/api/instances/x?target=memory'));
    expect(error).toEqual({
      status: 500,
      code: 'INTERNAL_ERROR',
      message: expect.not.stringContaining('internal detail'),
    });
  });
});

describe('sidecar changes (rotation)', () => {
  it('rotates through a job, readSidecarState → composeRotation → rotateSecrets', async () => {
    const harness = createHarness();
    await deployAndWait(harness);
    const before = harness.target
      .inspect('demo')!
      .secrets.find((secret) => secret.name === 'mock-agent-token')!.value;
    const response = await harness.request('PUT', '/api/instances/demo/sidecars/mock', {});
    expect(response.status).toBe(202);
    const { jobId } = (await response.json()) as { jobId: string };
    const events = await readEvents(await harness.request('GET', `/api/jobs/${jobId}/events`));
    expect(events.map((event) => event.data.step).filter(Boolean)).toContain('rotate.restart:mock');
    expect(events.at(-1)?.event).toBe('result');
    const after = harness.target
      .inspect('demo')!
      .secrets.find((secret) => secret.name === 'mock-agent-token')!.value;
    expect(after).not.toBe(before);
  });

  it('validates the change with the provider schema (400 INVALID_INPUT)', async () => {
    const harness = createHarness();
    await deployAndWait(harness);
    const error = await errorOf(
      await harness.request('PUT', '/api/instances/demo/sidecars/mock', { colour: 'red' }),
    );
    expect(error).toMatchObject({ status: 400, code: 'INVALID_INPUT' });
    expect(error.message).toContain('colour');
  });

  it('answers a second rotation while one runs with 409 ROTATION_IN_PROGRESS', async () => {
    const gate = deferred();
    const harness = createHarness({
      target: { beforeStep: async (step) => (step.startsWith('rotate.restart') ? gate.promise : undefined) },
    });
    await deployAndWait(harness);
    const first = await harness.request('PUT', '/api/instances/demo/sidecars/mock', {});
    expect(first.status).toBe(202);
    const { jobId } = (await first.json()) as { jobId: string };
    const second = await errorOf(await harness.request('PUT', '/api/instances/demo/sidecars/mock', {}));
    expect(second).toMatchObject({ status: 409, code: 'ROTATION_IN_PROGRESS' });
    expect(second.message).toContain(jobId);
    // A redeploy or a delete of a busy instance is refused too.
    expect((await errorOf(await harness.request('DELETE', '/api/instances/demo'))).status).toBe(409);
    expect((await errorOf(await harness.request('POST', '/api/instances/demo/stop'))).status).toBe(409);
    gate.resolve();
    const events = await readEvents(await harness.request('GET', `/api/jobs/${jobId}/events`));
    expect(events.at(-1)?.event).toBe('result');
    expect((await harness.request('PUT', '/api/instances/demo/sidecars/mock', {})).status).toBe(202);
  });

  it('shows a failed rotation as an error event, with the old state kept', async () => {
    let failRotation = false;
    const harness = createHarness({
      target: {
        beforeStep: (step) => {
          if (failRotation && step.startsWith('rotate.restart'))
            throw new Error('tokenizer did not become ready');
        },
      },
    });
    await deployAndWait(harness);
    const before = harness.target.inspect('demo');
    failRotation = true;
    const { jobId } = (await (
      await harness.request('PUT', '/api/instances/demo/sidecars/mock', {})
    ).json()) as {
      jobId: string;
    };
    const events = await readEvents(await harness.request('GET', `/api/jobs/${jobId}/events`));
    expect(events.at(-1)?.data.error).toMatchObject({ code: 'ROTATION_FAILED', step: 'rotate.restart:mock' });
    expect(events.at(-1)?.data.error?.message).toContain('previous credentials are still in place');
    expect(harness.target.inspect('demo')).toEqual(before);
  });

  it('refuses a sidecar the instance does not have, and an unknown provider', async () => {
    const harness = createHarness();
    await deployAndWait(harness, { ...mockSpec(), sidecars: {} });
    expect(
      await errorOf(await harness.request('PUT', '/api/instances/demo/sidecars/mock', {})),
    ).toMatchObject({
      status: 400,
      code: 'INVALID_INPUT',
    });
    expect(
      await errorOf(await harness.request('PUT', '/api/instances/demo/sidecars/nope', {})),
    ).toMatchObject({
      status: 400,
      code: 'UNKNOWN_PROVIDER',
    });
    expect(await errorOf(await harness.request('GET', '/api/instances/demo/sidecars/mock'))).toMatchObject({
      status: 404,
      code: 'NOT_FOUND',
    });
  });

  it('answers a sidecar without rotation with 501 ROTATION_NOT_SUPPORTED', async () => {
    const registry = new ProviderRegistry();
    registry.registerTarget(createMemoryTargetProvider());
    registry.registerSidecar(createMockSidecarProvider({ rotation: undefined }));
    const harness = createHarness({ registry });
    await deployAndWait(harness);
    expect(
      await errorOf(await harness.request('PUT', '/api/instances/demo/sidecars/mock', {})),
    ).toMatchObject({
      status: 501,
      code: 'ROTATION_NOT_SUPPORTED',
    });
  });

  it('answers a sidecar’s page on an instance without it with the provider’s absent view, else 404', async () => {
    const registry = new ProviderRegistry();
    registry.registerTarget(createMemoryTargetProvider());
    registry.registerSidecar(createMockSidecarProvider());
    registry.registerSidecar(
      createMockSidecarProvider({
        id: 'vault',
        routeAliases: ['vault'],
        view: { schema: z.object({}), build: () => ({ enabled: true }), absent: { enabled: false } },
      }),
    );
    const harness = createHarness({ registry });
    await deployAndWait(harness);
    expect(await (await harness.request('GET', '/api/instances/demo/vault')).json()).toEqual({
      enabled: false,
    });
    expect(await (await harness.request('GET', '/api/instances/demo/sidecars/vault')).json()).toEqual({
      enabled: false,
    });
    expect(await errorOf(await harness.request('GET', '/api/instances/demo/sidecars/nope'))).toMatchObject({
      status: 404,
      code: 'NOT_FOUND',
    });
  });

  it('maps a code a provider registered to its status, and a provider bug to 500 with its message', async () => {
    const registry = new ProviderRegistry();
    registry.registerTarget(createMemoryTargetProvider());
    registry.registerSidecar(
      createMockSidecarProvider({
        id: 'picky',
        errorCodes: { PICKY_REFUSED: { httpStatus: 409, description: 'The picky sidecar refused.' } },
        rotation: {
          changeSchema: z.object({}).strict(),
          rotate: () => {
            throw new KeywardError({ code: 'PICKY_REFUSED', providerId: 'picky', message: 'Not today.' });
          },
        },
      }),
    );
    registry.registerSidecar(createMockSidecarProvider());
    registry.registerSidecar(
      createMockSidecarProvider({
        id: 'buggy',
        // Asks a provider it does not require: a bug in the provider, not in the spec.
        request: () => [{ id: 'key', provider: 'mock', kind: 'sealed-credential', container: 'buggy' }],
      }),
    );
    const harness = createHarness({ registry });
    await deployAndWait(harness, { ...mockSpec(), sidecars: { picky: {} } });
    expect(await errorOf(await harness.request('PUT', '/api/instances/demo/sidecars/picky', {}))).toEqual({
      status: 409,
      code: 'PICKY_REFUSED',
      message: 'Not today.',
    });
    const bug = await errorOf(
      await harness.request('POST', '/api/instances', {
        ...mockSpec('bug'),
        sidecars: { buggy: {}, mock: {} },
      }),
    );
    expect(bug).toMatchObject({ status: 500, code: 'PROVIDER_CONTRACT_VIOLATION' });
    expect(bug.message).toContain('Sidecar "buggy" asked "mock"');
  });
});

describe('limits and CORS', () => {
  it('refuses a body over the limit with 413 PAYLOAD_TOO_LARGE', async () => {
    const harness = createHarness({ app: { bodyLimitBytes: 1024 } });
    const spec = { ...mockSpec(), agent: { image: 'x', env: { PADDING: 'x'.repeat(2000) } } };
    expect(await errorOf(await harness.request('POST', '/api/instances', spec))).toMatchObject({
      status: 413,
      code: 'PAYLOAD_TOO_LARGE',
    });
  });

  it('refuses a body that is not sent as JSON with 415 UNSUPPORTED_MEDIA_TYPE, not a 500', async () => {
    const harness = createHarness();
    const send = (path: string, method: string, headers: Record<string, string>) =>
      harness.app.request(path, {
        method,
        headers: { authorization: `Bearer ${testToken}`, ...headers },
        body: JSON.stringify(mockSpec()),
      });
    for (const [method, path] of [
      ['POST', '/api/instances'],
      ['POST', '/api/render'],
      ['POST', '/api/instances/demo/verify'],
      ['PUT', '/api/instances/demo/sidecars/mock'],
    ] as const) {
      for (const headers of [{ 'content-type': 'text/plain' }, {}] as Record<string, string>[]) {
        const error = await errorOf(await send(path, method, headers));
        expect(error, `${method} ${path} ${JSON.stringify(headers)}`).toMatchObject({
          status: 415,
          code: 'UNSUPPORTED_MEDIA_TYPE',
          message: 'This route takes a JSON body: send it with "Content-Type: application/json".',
        });
      }
    }
  });

  it('rate-limits deploys and rotations with 429 RATE_LIMITED and Retry-After', async () => {
    let now = 1_000_000;
    const harness = createHarness({
      app: {
        now: () => now,
        rateLimits: {
          deploy: { limit: 2, windowMilliseconds: 60_000 },
          rotation: { limit: 1, windowMilliseconds: 60_000 },
        },
      },
    });
    await deployAndWait(harness, mockSpec('one'));
    await deployAndWait(harness, mockSpec('two'));
    const third = await harness.request('POST', '/api/instances', mockSpec('three'));
    expect(third.status).toBe(429);
    expect(third.headers.get('retry-after')).toBe('60');
    expect((await errorOf(third)).code).toBe('RATE_LIMITED');
    // Reads are not limited.
    expect((await harness.request('GET', '/api/instances')).status).toBe(200);
    const { jobId } = (await (
      await harness.request('PUT', '/api/instances/one/sidecars/mock', {})
    ).json()) as {
      jobId: string;
    };
    await readEvents(await harness.request('GET', `/api/jobs/${jobId}/events`));
    expect((await harness.request('PUT', '/api/instances/one/sidecars/mock', {})).status).toBe(429);
    now += 60_001;
    expect((await harness.request('POST', '/api/instances', mockSpec('three'))).status).toBe(202);
  });

  it('counts rate limits per API token, the caller: another token is not throttled by the first', async () => {
    let now = 1_000_000;
    const first = 'kw_rate-limit-client-one-0123456789';
    const second = 'kw_rate-limit-client-two-0123456789';
    let current = first;
    const harness = createHarness({
      app: {
        now: () => now,
        token: () => current,
        rateLimits: {
          requests: { limit: 4, windowMilliseconds: 10_000 },
          deploy: { limit: 1, windowMilliseconds: 60_000 },
        },
      },
    });
    const as = (token: string, method: string, path: string, body?: unknown) =>
      harness.request(method, path, body, { authorization: `Bearer ${token}` });
    expect((await as(first, 'POST', '/api/instances', mockSpec('one'))).status).toBe(202);
    const refused = await as(first, 'POST', '/api/instances', mockSpec('two'));
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBe('60');
    const body = await errorOf(refused);
    expect(body.code).toBe('RATE_LIMITED');
    expect(body.message).toMatch(/deploy requests with this API token: at most 1 per 60 s; retry in 60 s/);
    // Every request counts toward the client's overall limit, reads included.
    expect((await as(first, 'GET', '/api/jobs')).status).toBe(200);
    expect((await as(first, 'GET', '/api/jobs')).status).toBe(200);
    const tooMany = await as(first, 'GET', '/api/jobs');
    expect(tooMany.status).toBe(429);
    expect(tooMany.headers.get('retry-after')).toBe('10');
    // The health check carries no token and is never limited.
    expect((await harness.app.request('/api/health')).status).toBe(200);

    // Another caller (the rotated token) starts with its own counts.
    current = second;
    expect((await as(second, 'GET', '/api/jobs')).status).toBe(200);
    expect((await as(second, 'POST', '/api/instances', mockSpec('two'))).status).toBe(202);
    // An unauthenticated request is a 401, not counted against anyone.
    expect((await as(first, 'GET', '/api/jobs')).status).toBe(401);
    now += 60_001;
    current = first;
    expect((await as(first, 'POST', '/api/instances', mockSpec('three'))).status).toBe(202);
  });

  it('sends no CORS headers to other origins by default and refuses their requests', async () => {
    const harness = createHarness();
    const response = await harness.request('GET', '/api/instances', undefined, {
      origin: 'https://evil.example',
    });
    expect(response.status).toBe(403);
    expect(response.headers.get('access-control-allow-origin')).toBeNull();
    expect((await errorOf(response)).code).toBe('FORBIDDEN_ORIGIN');
    const sameOrigin = await harness.request('GET', 'http://localhost/api/instances', undefined, {
      origin: 'http://localhost',
    });
    expect(sameOrigin.status).toBe(200);
  });

  it('allows the origins of the allow-list, preflight included', async () => {
    const harness = createHarness({ app: { allowedOrigins: ['http://127.0.0.1:5173'] } });
    const preflight = await harness.app.request('/api/instances', {
      method: 'OPTIONS',
      headers: {
        origin: 'http://127.0.0.1:5173',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization,content-type',
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('http://127.0.0.1:5173');
    const response = await harness.request('GET', '/api/instances', undefined, {
      origin: 'http://127.0.0.1:5173',
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('access-control-allow-origin')).toBe('http://127.0.0.1:5173');
  });
});
