import { describe, expect, it } from 'vitest';
import { createRpcClient, KeywardApiError, KeywardClient, readServerSentEvents } from '../src/client.js';
import { createHarness, mockSpec, testToken } from './test-app.js';

function inProcess(harness: ReturnType<typeof createHarness>): typeof fetch {
  return ((input: Parameters<typeof fetch>[0], init?: RequestInit) =>
    Promise.resolve(
      harness.app.request(input instanceof Request ? input : String(input), init),
    )) as typeof fetch;
}

function streamOf(...chunks: string[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(new TextEncoder().encode(chunk));
      controller.close();
    },
  });
}

describe('typed clients', () => {
  it('the Hono RPC client calls routes with their types, through an in-process fetch', async () => {
    const harness = createHarness();
    const rpc = createRpcClient({
      baseUrl: 'http://keyward.test',
      token: testToken,
      fetch: inProcess(harness),
    });
    const deployed = await rpc.api.instances.$post({ json: mockSpec() as never, query: {} });
    expect(deployed.status).toBe(202);
    const accepted = await deployed.json();
    if (!('jobId' in accepted)) throw new Error('expected a job');
    const job = await (await rpc.api.jobs[':id'].$get({ param: { id: accepted.jobId } })).json();
    expect(job).toMatchObject({ kind: 'deploy', instance: 'demo' });
    const health = await (await rpc.api.health.$get()).json();
    expect(health.status).toBe('ok');
  });

  it('KeywardClient follows a job to its result and turns error bodies into KeywardApiError', async () => {
    const harness = createHarness();
    const client = new KeywardClient({
      baseUrl: 'http://keyward.test/',
      token: testToken,
      fetch: inProcess(harness),
    });
    const { jobId } = await client.json<{ jobId: string }>('POST', '/api/instances', mockSpec());
    const types: string[] = [];
    for await (const event of client.jobEvents(jobId)) types.push(event.type);
    expect(types.at(-1)).toBe('result');
    expect(types.filter((type) => type === 'progress').length).toBeGreaterThan(4);
    const error = await client.json('GET', '/api/instances/ghost').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(KeywardApiError);
    expect(error).toMatchObject({ status: 404, code: 'INSTANCE_NOT_FOUND' });
  });

  it('parses SSE split across chunks, with CRLF, comments and multi-line data', async () => {
    const events = [];
    for await (const event of readServerSentEvents(
      streamOf(
        'id: 1\r\nevent: log\r\ndata: {"a":',
        '1}\r\n\r\n: keepalive\n\nevent: multi\ndata: one\ndata: two\n\n',
      ),
    )) {
      events.push(event);
    }
    expect(events).toEqual([
      { event: 'log', data: '{"a":1}', id: '1' },
      { event: 'multi', data: 'one\ntwo' },
    ]);
  });
});
