import { describe, expect, it } from 'vitest';
import { relayPlan } from '../src/agent-network.js';
import { createLocalProvider, publishedPorts } from '../src/index.js';
import { boundedRuntimeName, containerRuntimeName, MAX_RUNTIME_NAME_LENGTH } from '../src/runtime-names.js';
import { startOrder } from '../src/start-order.js';

const provider = createLocalProvider();

describe('target options, addresses and names', () => {
  it('validates hostPort and hostAddress strictly', () => {
    expect(provider.configSchema.parse({ hostPort: 28789, hostAddress: '0.0.0.0' })).toEqual({
      hostPort: 28789,
      hostAddress: '0.0.0.0',
    });
    expect(provider.configSchema.safeParse({ hostPort: 0 }).success).toBe(false);
    const unknown = provider.configSchema.safeParse({ namespace: 'x' });
    expect(unknown.success).toBe(false);
  });

  it('publishes the plan ingress with the options, 127.0.0.1 and a free port by default', () => {
    expect(publishedPorts({ ingress: [{ container: 'agent', port: 18789 }], targetOptions: {} })).toEqual([
      { container: 'agent', containerPort: 18789, hostPort: null, hostAddress: '127.0.0.1' },
    ]);
    expect(
      publishedPorts({
        ingress: [{ container: 'agent', port: 18789 }],
        targetOptions: { hostPort: 28000, hostAddress: '0.0.0.0' },
      }),
    ).toEqual([{ container: 'agent', containerPort: 18789, hostPort: 28000, hostAddress: '0.0.0.0' }]);
  });

  it('addresses a sidecar by its name on the internal network, the agent’s connections on its loopback relay, all on localhost in open', () => {
    const request = {
      instanceName: 'demo',
      targetOptions: {},
      from: { container: 'agent', role: 'agent' as const },
      to: { container: 'tokenizer', role: 'sidecar' as const },
      port: 4001,
    };
    const fromSidecar = { ...request, from: { container: 'gateway', role: 'sidecar' as const } };
    expect(provider.addressOf({ ...request, networkMode: 'proxy-only' })).toBe('localhost:4001');
    expect(provider.addressOf({ ...fromSidecar, networkMode: 'proxy-only' })).toBe('tokenizer:4001');
    expect(provider.addressOf({ ...request, networkMode: 'open' })).toBe('localhost:4001');
    expect(provider.addressOf({ ...fromSidecar, networkMode: 'open' })).toBe('localhost:4001');
  });

  it('relays exactly the agent’s allowed connections and its ingress between the two helpers', () => {
    const relays = relayPlan({
      connections: [
        { from: 'agent', to: 'tokenizer', port: 4001 },
        { from: 'agent', to: 'tokenizer', port: 4001 },
        { from: 'gateway', to: 'tokenizer', port: 4001 },
      ],
      ingress: [{ container: 'agent', port: 18789 }],
    });
    expect(relays).toEqual({
      inside: [
        {
          listen: { host: '127.0.0.1', port: 4001 },
          connect: { path: '/keyward-sockets/to-tokenizer-4001.sock' },
        },
        {
          listen: { path: '/keyward-sockets/ingress-18789.sock' },
          connect: { host: '127.0.0.1', port: 18789 },
        },
      ],
      outside: [
        {
          listen: { path: '/keyward-sockets/to-tokenizer-4001.sock' },
          connect: { host: 'tokenizer', port: 4001 },
        },
        {
          listen: { host: '0.0.0.0', port: 18789 },
          connect: { path: '/keyward-sockets/ingress-18789.sock' },
        },
      ],
    });
  });

  it('keeps runtime names within a DNS label, distinct for distinct inputs', () => {
    expect(containerRuntimeName('demo', 'agent')).toBe('keyward-demo-agent');
    const long = 'a'.repeat(63);
    const first = containerRuntimeName(long, 'gateway-with-a-long-name');
    const second = containerRuntimeName(long, 'gateway-with-a-long-nama');
    expect(first.length).toBeLessThanOrEqual(MAX_RUNTIME_NAME_LENGTH);
    expect(first).toMatch(/^keyward-a+-[0-9a-f]{8}$/);
    expect(first).not.toBe(second);
    expect(boundedRuntimeName('x', 'y'.repeat(200), 128).length).toBe(128);
  });

  it('starts each container after those it waits for, the agent last', () => {
    const containers = [
      { name: 'agent', role: 'agent' as const, startAfter: ['b', 'a'] },
      { name: 'b', role: 'sidecar' as const, startAfter: ['a'] },
      { name: 'a', role: 'sidecar' as const, startAfter: [] },
      { name: 'c', role: 'sidecar' as const, startAfter: [] },
    ];
    expect(startOrder(containers).map((container) => container.name)).toEqual(['a', 'b', 'c', 'agent']);
    expect(() =>
      startOrder([
        { name: 'a', role: 'sidecar' as const, startAfter: ['b'] },
        { name: 'b', role: 'sidecar' as const, startAfter: ['a'] },
      ]),
    ).toThrow(/cycle/);
  });

  it('declares what it can enforce: egress none and internet, not destinations', () => {
    expect(provider.specificationVersion).toBe('v2');
    expect(provider.capabilities.egress).toEqual(['none', 'internet']);
    expect(provider.capabilities.exec).toBe(true);
  });
});
