import { composePlanV2, ProviderRegistry, parseInstanceSpec } from '@keyward/core';
import { createMemoryTargetProvider, testSidecarProvider } from '@keyward/core/testing';
import { describe, expect, it } from 'vitest';
import { createGreetingProvider, keywardPlugin } from '../src/index.js';

// The suite every sidecar provider runs: copy this into your own package.
testSidecarProvider({
  provider: createGreetingProvider(),
  validConfig: { greeting: 'Hello from keyward' },
  invalidConfigs: [
    { label: 'empty greeting', config: { greeting: '' } },
    { label: 'privileged port', config: { greeting: 'hi', port: 80 } },
    { label: 'unknown field', config: { greeting: 'hi', colour: 'blue' } },
  ],
});

describe('the greeting sidecar', () => {
  const target = createMemoryTargetProvider();

  it('composes with an address from the target and a connection from the agent', async () => {
    const plan = await composePlanV2({
      spec: parseInstanceSpec({
        name: 'greeter',
        target: 'memory',
        agent: { image: 'localhost/agent:1', port: 18789, skillsDirectory: '/skills' },
        sidecars: { greeting: { greeting: 'Hello from keyward' } },
      }),
      sidecars: { getSidecar: (id) => (id === 'greeting' ? createGreetingProvider() : undefined) },
      target,
    });
    expect(plan.containers[0]?.env['GREETING_URL']).toBe('http://greeter-greeting.memory.invalid:4600');
    expect(plan.connections).toEqual([{ from: 'agent', to: 'greeting', port: 4600 }]);
    expect(plan.containers[0]?.files.map((file) => file.path)).toEqual(['/skills/greeting/SKILL.md']);
    expect(plan.containers[1]?.files.map((file) => file.path)).toEqual([
      '/opt/greeting/server.mjs',
      '/etc/greeting/greeting.txt',
    ]);
  });

  it('loads as a plugin and registers its error code', () => {
    const registry = new ProviderRegistry();
    registry.registerPlugin(keywardPlugin);
    expect(registry.loadErrors).toEqual([]);
    expect(registry.requireSidecar('greeting').displayName).toBe('Greeting service (example)');
  });

  it('judges its self-test by the greeting it gets back', async () => {
    const [check] = await createGreetingProvider().verification!.checks(
      {
        instanceName: 'greeter',
        networkMode: 'proxy-only',
        metadata: { url: 'http://greeting:4600', greeting: 'hi' },
        exports: {},
      },
      undefined,
    );
    const judge = (stdout: string) => check!.judge({ exitCode: 0, stdout, stderr: '', timedOut: false });
    expect(judge('{"status":200,"body":{"greeting":"hi"}}').passed).toBe(true);
    expect(judge('{"status":200,"body":{"greeting":"bye"}}').passed).toBe(false);
    expect(judge('{"error":"ECONNREFUSED"}')).toEqual({
      passed: false,
      evidence: 'GET http://greeting:4600/greeting failed: ECONNREFUSED',
    });
  });
});
