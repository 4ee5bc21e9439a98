import { ProviderRegistry, type VerifyOptionsV1 } from '@keyward/core';
import { createMemoryTargetProvider, createMockSidecarProvider } from '@keyward/core/testing';
import { createTokenizerProvider } from '@keyward/provider-tokenizer';
import { openSecret } from '@keyward/tokenizer';
import { describe, expect, it } from 'vitest';
import { createHarness, mockSpec, readEvents } from './test-app.js';

// The real tokenizer provider on the in-memory target; the target's verify is wrapped to
// see the options the route hands it (the memory target has no proxy to send them to).
function harnessWithTokenizer() {
  const registry = new ProviderRegistry();
  const target = createMemoryTargetProvider();
  const received: VerifyOptionsV1[] = [];
  const verify = target.verify?.bind(target);
  if (!verify) throw new Error('the in-memory target has no verify');
  registry.registerTarget({
    ...target,
    verify: (name: string, options: VerifyOptionsV1 = {}) => {
      received.push(options);
      return verify(name, options);
    },
  });
  registry.registerSidecar(createTokenizerProvider());
  registry.registerSidecar(createMockSidecarProvider());
  return { harness: createHarness({ registry }), target, received };
}

async function deploy(harness: ReturnType<typeof createHarness>, spec: object) {
  const accepted = await harness.request('POST', '/api/instances', spec);
  expect(accepted.status).toBe(202);
  const { jobId } = (await accepted.json()) as { jobId: string };
  const events = await readEvents(await harness.request('GET', `/api/jobs/${jobId}/events`));
  expect(events.at(-1)?.event).toBe('result');
}

const tokenizerSpec = {
  name: 'sealed',
  target: 'memory',
  agent: { image: 'localhost/agent:test' },
  sidecars: {
    tokenizer: {
      credentials: [
        { name: 'gh', secret: 'ghp_route-test-credential-0123', allowedHosts: ['api.github.com'] },
      ],
    },
  },
};

describe('POST /api/instances/:id/verify and self-sealed tokens', () => {
  it('hands the target a token sealed with the instance’s seal key: no auth, no host rules', async () => {
    const { harness, target, received } = harnessWithTokenizer();
    await deploy(harness, tokenizerSpec);
    const response = await harness.request('POST', '/api/instances/sealed/verify', {
      allowedUrl: 'https://api.github.com/',
    });
    expect(response.status).toBe(200);
    expect(received).toHaveLength(1);
    expect(received[0]?.allowedUrl).toBe('https://api.github.com/');
    const token = received[0]?.selfSealedToken;
    expect(token).toEqual(expect.any(String));
    // Opens with this instance's open key, so the tokenizer would have taken it without the allow-list.
    const plan = target.inspect('sealed');
    const openKey = plan?.secrets.find((secret) => secret.name === 'tokenizer-open-key')?.value as string;
    expect(openSecret(token as string, openKey)).toEqual({
      processor: { type: 'inject', token: 'made-up' },
      auth: { type: 'none' },
    });
    // It is none of the tokens the instance issued.
    const issued = plan?.secrets.filter((secret) => secret.agentSafe).map((secret) => secret.value);
    expect(issued?.length).toBeGreaterThan(0);
    expect(issued).not.toContain(token);
  });

  it('keeps a token the caller gives, and adds none for an instance without a tokenizer', async () => {
    const { harness, received } = harnessWithTokenizer();
    await deploy(harness, tokenizerSpec);
    await harness.request('POST', '/api/instances/sealed/verify', { selfSealedToken: 'caller-made' });
    await deploy(harness, mockSpec('plain'));
    await harness.request('POST', '/api/instances/plain/verify');
    expect(received).toEqual([{ selfSealedToken: 'caller-made' }, {}]);
  });
});
