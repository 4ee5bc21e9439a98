import { ProviderRegistry } from '@keyward/core';
import { createMemoryTargetProvider, createMockSidecarProvider } from '@keyward/core/testing';
import { createTokenizerProvider } from '@keyward/provider-tokenizer';
import { describe, expect, it } from 'vitest';
import { withSeedInstallerContract } from '../src/default-registry.js';
import { createHarness, mockSpec, readEvents } from './test-app.js';

// The seed installer's `GET/PUT /api/instances/:id/tokenizer`, served by the generic sidecar
// routes through the tokenizer provider's route alias, as the default registry installs it.
function harness() {
  const registry = new ProviderRegistry();
  const stdins: string[] = [];
  registry.registerTarget(
    createMemoryTargetProvider({
      exec: (_plan, request) => {
        stdins.push(request.stdin ?? '');
        return { exitCode: 1, stdout: '', stderr: 'no process', timedOut: false };
      },
    }),
  );
  registry.registerSidecar(withSeedInstallerContract(createTokenizerProvider()));
  registry.registerSidecar(createMockSidecarProvider());
  return { ...createHarness({ registry }), stdins };
}

const tokenizerSpec = {
  ...mockSpec('sealed'),
  sidecars: {
    tokenizer: {
      credentials: [
        { name: 'gh', secret: 'ghp_contract-test-credential-0123', allowedHosts: ['api.github.com'] },
      ],
    },
  },
};

async function deploy(test: ReturnType<typeof harness>, spec: object) {
  const accepted = await test.request('POST', '/api/instances', spec);
  expect(accepted.status).toBe(202);
  const { jobId } = (await accepted.json()) as { jobId: string };
  expect((await readEvents(await test.request('GET', `/api/jobs/${jobId}/events`))).at(-1)?.event).toBe(
    'result',
  );
}

describe("the seed installer's /api/instances/:id/tokenizer", () => {
  it('is in the OpenAPI document with the tokenizer’s view and change schemas', async () => {
    const test = harness();
    const document = (await (await test.request('GET', '/api/openapi.json')).json()) as {
      paths: Record<string, Record<string, unknown>>;
      components: { schemas: Record<string, unknown> };
    };
    expect(Object.keys(document.paths['/api/instances/{id}/tokenizer']!).sort()).toEqual(['get', 'put']);
    expect(document.components.schemas['SidecarView_tokenizer']).toMatchObject({
      properties: { enabled: { type: 'boolean' } },
    });
    expect(document.components.schemas['SidecarChange_tokenizer']).toMatchObject({
      properties: { credentials: { type: 'array' } },
    });
  });

  it('reports the tokenizer as disabled on an instance without it, 404 on an unknown instance', async () => {
    const test = harness();
    await deploy(test, mockSpec());
    expect(await (await test.request('GET', '/api/instances/demo/tokenizer')).json()).toEqual({
      enabled: false,
      credentials: [],
    });
    const ghost = await test.request('GET', '/api/instances/ghost/tokenizer');
    expect(ghost.status).toBe(404);
    expect(((await ghost.json()) as { error: { code: string } }).error.code).toBe('INSTANCE_NOT_FOUND');
  });

  it('lists credentials and shows the running rotation’s job', async () => {
    const test = harness();
    await deploy(test, tokenizerSpec);
    expect(await (await test.request('GET', '/api/instances/sealed/tokenizer')).json()).toEqual({
      enabled: true,
      credentials: [{ name: 'gh', allowedHosts: ['api.github.com'] }],
    });
    const accepted = (await (
      await test.request('PUT', '/api/instances/sealed/tokenizer', {
        credentials: [{ name: 'gh', secret: '', allowedHosts: ['api.github.com'] }],
      })
    ).json()) as { jobId: string; deployId: string };
    expect(accepted.deployId).toBe(accepted.jobId);
    const during = (await (await test.request('GET', '/api/instances/sealed/tokenizer')).json()) as {
      rotationJobId?: string;
    };
    expect([undefined, accepted.jobId]).toContain(during.rotationJobId);
    await readEvents(await test.request('GET', `/api/jobs/${accepted.jobId}/events`));
  });

  it('gives the verify fields of older clients (allowedUrl) to the tokenizer’s own checks', async () => {
    const test = harness();
    await deploy(test, tokenizerSpec);
    const report = (await (
      await test.request('POST', '/api/instances/sealed/verify', { allowedUrl: 'https://api.github.com/zen' })
    ).json()) as { checks: { providerId: string; name: string }[] };
    expect(report.checks.length).toBeGreaterThan(0);
    expect(new Set(report.checks.map((check) => check.providerId))).toEqual(new Set(['tokenizer']));
    expect(test.stdins.join('\n')).toContain('https://api.github.com/zen');
    const unknown = await test.request('POST', '/api/instances/sealed/verify', {
      directUrl: 'https://x.example/',
    });
    expect(unknown.status).toBe(400);
  });
});
