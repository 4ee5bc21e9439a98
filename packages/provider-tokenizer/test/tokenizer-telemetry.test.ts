// The tokenizer beside the OpenTelemetry Collector sidecar (provider-otel, composed for real):
// the proxy exports its spans and metrics to the collector, and only when the collector is there.
import {
  type AnySidecarProviderV2,
  composePlanV2,
  type DeploymentPlanV2,
  type NetworkMode,
  parseInstanceSpec,
} from '@keyward/core';
import { createOtelProvider } from '@keyward/provider-otel';
import { telemetryOptionsFromEnv } from '@keyward/tokenizer';
import { describe, expect, it } from 'vitest';
import { createTokenizerProvider } from '../src/index.js';
import { createSeededRandomBytes, rawSecrets, stubTarget, twoCredentials } from './helpers.js';

const providers = new Map<string, AnySidecarProviderV2>([
  ['tokenizer', createTokenizerProvider()],
  ['otel', createOtelProvider() as AnySidecarProviderV2],
]);
const OTEL_VARIABLES = [
  'OTEL_EXPORTER_OTLP_ENDPOINT',
  'OTEL_EXPORTER_OTLP_PROTOCOL',
  'OTEL_SERVICE_NAME',
  'OTEL_TRACES_SAMPLER',
];

async function compose(mode: NetworkMode, withOtel: boolean, otelConfig: Record<string, unknown> = {}) {
  return composePlanV2({
    spec: parseInstanceSpec({
      name: 'demo',
      target: 'local',
      agent: {
        image: 'localhost/keyward-agent-standin:0.1.0',
        port: 18789,
        skillsDirectory: '/home/node/.openclaw/skills',
      },
      network: { egress: mode },
      sidecars: { tokenizer: twoCredentials, ...(withOtel ? { otel: otelConfig } : {}) },
    }),
    sidecars: { getSidecar: (id: string) => providers.get(id) },
    target: stubTarget(),
    randomBytes: createSeededRandomBytes(5),
  });
}

function tokenizerContainer(plan: DeploymentPlanV2) {
  const container = plan.containers.find((item) => item.name === 'tokenizer');
  if (!container) throw new Error('no tokenizer container');
  return container;
}

describe('tokenizer with the otel sidecar', () => {
  it.each([
    ['proxy-only', 'otel:4318'],
    ['open', 'localhost:4318'],
  ] as const)(
    '%s: the proxy exports OTLP/HTTP to the collector, which it may reach',
    async (mode, address) => {
      const plan = await compose(mode, true);
      const container = tokenizerContainer(plan);
      expect(container.env).toMatchObject({
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://${address}`,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
        OTEL_SERVICE_NAME: 'demo-tokenizer',
        OTEL_TRACES_SAMPLER: 'parentbased_always_on',
      });
      expect(plan.connections).toContainEqual({ from: 'tokenizer', to: 'otel', port: 4318 });
      // The collector starts first; the tokenizer records that it requires it.
      expect(container.startAfter).toContain('otel');
      expect(plan.sidecars.find((item) => item.providerId === 'tokenizer')?.requires).toEqual(['otel']);
      // The proxy reads these variables as its telemetry configuration.
      // Every call of the agent traced: the proxy's default would trace one in ten.
      expect(telemetryOptionsFromEnv(container.env)).toEqual({
        endpoint: `http://${address}`,
        protocol: 'http/protobuf',
        serviceName: 'demo-tokenizer',
        sampling: { followParent: true, ratio: 1 },
      });
    },
  );

  it("follows the collector's configured OTLP/HTTP port", async () => {
    const plan = await compose('proxy-only', true, { httpPort: 14318, grpcPort: 14317 });
    expect(tokenizerContainer(plan).env['OTEL_EXPORTER_OTLP_ENDPOINT']).toBe('http://otel:14318');
    expect(plan.connections).toContainEqual({ from: 'tokenizer', to: 'otel', port: 14318 });
    expect(plan.connections).not.toContainEqual(expect.objectContaining({ from: 'tokenizer', port: 4318 }));
  });

  it('without the collector: no telemetry variable, no connection, and the proxy leaves telemetry off', async () => {
    const plan = await compose('proxy-only', false);
    const container = tokenizerContainer(plan);
    for (const variable of OTEL_VARIABLES) expect(container.env).not.toHaveProperty(variable);
    expect(plan.connections.filter((connection) => connection.from === 'tokenizer')).toEqual([]);
    expect(plan.sidecars.find((item) => item.providerId === 'tokenizer')?.requires).toEqual([]);
    expect(telemetryOptionsFromEnv(container.env)).toBeUndefined();
  });

  it('puts no secret in the telemetry configuration', async () => {
    const plan = await compose('proxy-only', true);
    const telemetryEnv = JSON.stringify(
      Object.entries(tokenizerContainer(plan).env).filter(([name]) => name.startsWith('OTEL_')),
    );
    for (const value of [...Object.values(rawSecrets), ...plan.secrets.map((secret) => secret.value)]) {
      expect(telemetryEnv).not.toContain(value);
    }
  });
});
