// @vitest-environment happy-dom
import { describe, expect, it } from 'vitest';
import { Api } from '../src/api.js';
import { renderDeployPage } from '../src/deploy-page.js';

// The deploy page against a scripted transport that answers like the API (same bodies as the
// routes), to show a refused spec and a failed, rolled-back deploy without a runtime.
const providers = {
  sidecars: [
    {
      id: 'tokenizer',
      displayName: 'Tokenizer credential proxy',
      networkModes: ['proxy-only', 'open'],
      requires: [],
      rotation: true,
      verification: true,
      routeAliases: ['tokenizer'],
      roles: ['credentials'],
      errorCodes: {},
      schemas: {
        config: {
          type: 'object',
          properties: {
            credentials: {
              type: 'array',
              items: {
                type: 'object',
                required: ['name', 'allowedHosts'],
                properties: {
                  name: { type: 'string' },
                  secret: { type: 'string' },
                  allowedHosts: { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] },
                },
              },
            },
          },
        },
      },
    },
  ],
  targets: [{ id: 'local', capabilities: {}, schemas: { options: { type: 'object', properties: {} } } }],
  loadErrors: [
    { source: 'keyward-provider-broken', code: 'PLUGIN_LOAD_FAILED', message: 'no keywardPlugin export' },
  ],
};
const targets = {
  targets: [
    {
      id: 'local',
      displayName: 'Local (podman / docker)',
      capabilities: {},
      detection: { available: false, reason: 'no podman socket', hint: 'run scripts/ci/start-podman.sh' },
    },
  ],
};

function sse(events: object[]): string {
  return events
    .map(
      (event, index) =>
        `id: ${index + 1}\nevent: ${(event as { type: string }).type}\ndata: ${JSON.stringify(event)}\n\n`,
    )
    .join('');
}

function scriptedApi(deployAnswers: Response[]) {
  const sent: { method: string; url: string; body?: string; authorization: string | null }[] = [];
  const transport = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init);
    const url = new URL(request.url);
    sent.push({
      method: request.method,
      url: url.pathname,
      ...(request.method === 'POST' ? { body: await request.text() } : {}),
      authorization: request.headers.get('authorization'),
    });
    const json = (body: unknown, status = 200) =>
      new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
    if (url.pathname === '/api/providers') return json(providers);
    if (url.pathname === '/api/targets') return json(targets);
    if (url.pathname === '/api/instances' && request.method === 'POST') return deployAnswers.shift()!;
    if (url.pathname === '/api/jobs/job-1/events') {
      return new Response(
        sse([
          {
            type: 'progress',
            sequence: 1,
            time: '',
            step: 'network.create:internal',
            status: 'succeeded',
            message: 'Created network',
          },
          {
            type: 'progress',
            sequence: 2,
            time: '',
            step: 'container.start:tokenizer',
            status: 'failed',
            message: 'Starting tokenizer failed',
          },
          {
            type: 'progress',
            sequence: 3,
            time: '',
            step: 'rollback',
            status: 'started',
            message: 'Step container.start:tokenizer failed; removing everything created for "demo"',
          },
          {
            type: 'progress',
            sequence: 4,
            time: '',
            step: 'rollback',
            status: 'succeeded',
            message: 'Removed everything created for "demo"',
          },
          {
            type: 'error',
            sequence: 5,
            time: '',
            error: {
              code: 'DEPLOY_FAILED',
              message: 'the tokenizer did not start',
              step: 'container.start:tokenizer',
            },
          },
        ]),
        { status: 200, headers: { 'content-type': 'text/event-stream' } },
      );
    }
    return json({ error: { code: 'NOT_FOUND', message: 'no' } }, 404);
  }) as typeof fetch;
  return { api: new Api('http://keyward.test', 'kw_test-token', transport), sent };
}

const field = (label: string) => {
  const element = [...document.querySelectorAll('label')].find(
    (candidate) => candidate.textContent?.replace(' *', '') === label,
  );
  return document.getElementById(element!.htmlFor) as HTMLInputElement;
};
const fill = (label: string, value: string) => {
  field(label).value = value;
};
const button = (text: string) =>
  [...document.querySelectorAll('button')].find((candidate) => candidate.textContent === text)!;
const settle = async (until: () => boolean) => {
  for (let attempt = 0; attempt < 200 && !until(); attempt++)
    await new Promise((resolve) => setTimeout(resolve, 5));
  expect(until()).toBe(true);
};

describe('the deploy page', () => {
  it('shows why a target is unavailable and how to fix it, and plugins that failed to load', async () => {
    const { api } = scriptedApi([]);
    await renderDeployPage(document.body, { api });
    const target = document.querySelector('.targets li')!.textContent!;
    expect(target).toContain('unavailable');
    expect(target).toContain('no podman socket');
    expect(target).toContain('To fix: run scripts/ci/start-podman.sh');
    expect(document.body.textContent).toContain('keyward-provider-broken: no keywardPlugin export');
    expect(document.querySelector('section.credential-proxy h3')?.textContent).toBe(
      'Credential Proxy (Tokenizer credential proxy)',
    );
  });

  it("sends the spec with the bearer token, shows the API's problems beside the fields, then a failed deploy with its step and rollback", async () => {
    const { api, sent } = scriptedApi([
      new Response(
        JSON.stringify({
          error: {
            code: 'INVALID_PROVIDER_CONFIG',
            message: 'Invalid config',
            details: {
              problems: [
                'sidecars.tokenizer.credentials.0.allowedHosts: must be a list of hostnames',
                'agent.port: must be between 1 and 65535',
              ],
            },
          },
        }),
        { status: 400, headers: { 'content-type': 'application/json' } },
      ),
      new Response(
        JSON.stringify({
          jobId: 'job-1',
          deployId: 'job-1',
          instance: 'demo',
          target: 'local',
          eventsUrl: '/api/jobs/job-1/events',
          warnings: [],
        }),
        {
          status: 202,
          headers: { 'content-type': 'application/json' },
        },
      ),
    ]);
    await renderDeployPage(document.body, { api });
    fill('Instance name', 'demo');
    fill('Agent image', 'localhost/agent:1');
    fill('Agent port', '70000');
    button('+ Add credential').click();
    fill('Name', 'github');
    fill('Secret', 'ghp_secret-value');
    document.querySelector('form')!.requestSubmit();
    await settle(() => field('Agent port').getAttribute('aria-invalid') === 'true');
    const errorBeside = (label: string) =>
      field(label).closest('.field')!.querySelector('.field-error')!.textContent;
    expect(errorBeside('Agent port')).toBe('must be between 1 and 65535');
    expect(errorBeside('Allowed hosts')).toBe('must be a list of hostnames');
    // Refused: the secret stays so the user can fix the other fields.
    expect(field('Secret').value).toBe('ghp_secret-value');
    const first = JSON.parse(sent.find((request) => request.method === 'POST')!.body!);
    expect(first).toMatchObject({
      name: 'demo',
      target: 'local',
      agent: { image: 'localhost/agent:1', port: 70000 },
      network: { egress: 'proxy-only' },
      sidecars: { tokenizer: { credentials: [{ name: 'github', secret: 'ghp_secret-value' }] } },
    });

    fill('Agent port', '18789');
    fill('Allowed hosts', 'api.github.com');
    document.querySelector('form')!.requestSubmit();
    await settle(() => document.querySelector('.job-summary.failure') !== null);
    expect(field('Secret').value).toBe('');
    expect(document.body.innerHTML).not.toContain('ghp_secret-value');
    expect(document.querySelector('[aria-invalid]')).toBeNull();
    const summary = document.querySelector('.job-summary')!.textContent!;
    expect(summary).toContain(
      'Failed at step "container.start:tokenizer": the tokenizer did not start (DEPLOY_FAILED).',
    );
    expect(summary).toContain(
      'Rolled back: Step container.start:tokenizer failed; removing everything created for "demo" → Removed everything created for "demo".',
    );
    expect(
      [...document.querySelectorAll('.steps .step')].map((row) => (row as HTMLElement).dataset['status']),
    ).toEqual(['succeeded', 'failed', 'succeeded']);
    expect(sent.every((request) => request.authorization === 'Bearer kw_test-token')).toBe(true);
  });
});
