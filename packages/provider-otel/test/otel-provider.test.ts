import { composePlanV2, parseInstanceSpec } from '@keyward/core';
import {
  createMemoryTargetProvider,
  createMockSidecarProvider,
  testSidecarProvider,
} from '@keyward/core/testing';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { createOtelProvider } from '../src/index.js';

const backendKey = 'backend-api-key-7d1e9';

testSidecarProvider({
  provider: createOtelProvider(),
  validConfig: {
    exporters: {
      debug: {},
      file: {},
      otlp: { endpoint: 'https://otlp.example.test:4318', headers: { 'x-api-key': backendKey } },
    },
  },
  invalidConfigs: [
    { label: 'no exporter at all', config: { exporters: {} } },
    { label: 'one port for both protocols', config: { grpcPort: 4317, httpPort: 4317 } },
    { label: 'endpoint is not a URL', config: { exporters: { otlp: { endpoint: 'otlp.example.test' } } } },
    {
      label: 'header name with a space',
      config: { exporters: { otlp: { endpoint: 'https://x.test', headers: { 'x key': 'v' } } } },
    },
    { label: 'unknown field', config: { exporter: {} } },
  ],
  // No forbiddenValues: the backend key is meant to reach the collector, as a secret; the suite
  // still checks that no secret value lands in metadata, exports or the redacted config.
});

const target = createMemoryTargetProvider();
const provider = createOtelProvider();

async function plan(config: unknown, egress: 'proxy-only' | 'open' = 'proxy-only') {
  return composePlanV2({
    spec: parseInstanceSpec({
      name: 'traced',
      target: 'memory',
      agent: { image: 'localhost/agent:1', port: 18789 },
      network: { egress },
      sidecars: { otel: config },
    }),
    sidecars: { getSidecar: (id) => (id === 'otel' ? provider : undefined) },
    target,
  });
}

describe('otel provider', () => {
  it('points the agent at the collector through the target addresses, in both modes', async () => {
    const isolated = await plan({});
    const open = await plan({}, 'open');
    expect(isolated.containers[0]?.env).toMatchObject({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://traced-otel.memory.invalid:4318',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
      OTEL_SERVICE_NAME: 'traced-agent',
    });
    expect(open.containers[0]?.env['OTEL_EXPORTER_OTLP_ENDPOINT']).toBe('http://localhost:4318');
    expect(isolated.connections).toEqual([
      { from: 'agent', to: 'otel', port: 4317 },
      { from: 'agent', to: 'otel', port: 4318 },
    ]);
    expect(isolated.sidecars[0]?.exports).toEqual({
      otlpHttp: { container: 'otel', port: 4318 },
      otlpGrpc: { container: 'otel', port: 4317 },
    });
  });

  it('writes a collector config with OTLP in and the chosen exporters out, for every signal', async () => {
    const result = await plan({
      exporters: { debug: { verbosity: 'detailed' }, file: { path: '/var/lib/otelcol/out.jsonl' } },
    });
    const collector = result.containers.find((container) => container.name === 'otel');
    expect(collector?.command).toEqual(['/otelcol-contrib', '--config=/etc/keyward/otel/config.yaml']);
    expect(collector?.egress).toEqual({ type: 'none' });
    const configuration = parse(collector?.files[0]?.content ?? '');
    expect(configuration.receivers.otlp.protocols).toEqual({
      grpc: { endpoint: '0.0.0.0:4317' },
      http: { endpoint: '0.0.0.0:4318' },
    });
    expect(configuration.exporters).toEqual({
      debug: { verbosity: 'detailed' },
      file: { path: '/var/lib/otelcol/out.jsonl' },
    });
    for (const signal of ['traces', 'metrics', 'logs']) {
      expect(configuration.service.pipelines[signal]).toEqual({
        receivers: ['otlp'],
        processors: ['batch'],
        exporters: ['debug', 'file'],
      });
    }
  });

  it('keeps an OTLP header value out of the config file and everywhere but the collector, and limits egress to the backend', async () => {
    const result = await plan({
      exporters: {
        otlp: { endpoint: 'https://otlp.example.test:4318', headers: { 'x-api-key': backendKey } },
      },
    });
    const collector = result.containers.find((container) => container.name === 'otel');
    const configuration = parse(collector?.files[0]?.content ?? '');
    expect(configuration.exporters.otlphttp).toEqual({
      endpoint: 'https://otlp.example.test:4318',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the collector's own env syntax.
      headers: { 'x-api-key': '${env:KEYWARD_OTEL_HEADER_X_API_KEY}' },
    });
    expect(collector?.egress).toEqual({ type: 'destinations', destinations: ['otlp.example.test'] });
    expect(collector?.secretMounts).toEqual([
      {
        secret: 'otel-header-x-api-key',
        delivery: { type: 'env', variable: 'KEYWARD_OTEL_HEADER_X_API_KEY' },
      },
    ]);
    const withoutSecrets = JSON.stringify({ ...result, secrets: [] });
    expect(withoutSecrets).not.toContain(backendKey);
    expect(result.containers[0]?.secretMounts).toEqual([]);
  });

  it('lets another sidecar find the collector through its exports', async () => {
    const base = createMockSidecarProvider({ id: 'reporter' });
    const reporter = createMockSidecarProvider({
      id: 'reporter',
      requires: [{ provider: 'otel', optional: true }],
      contribute: async (context, config) => {
        const contribution = await base.contribute(context, config);
        const otlp = context.dependencies['otel']?.exports['otlpHttp'] as { container: string; port: number };
        return {
          ...contribution,
          containers: contribution.containers.map((container) => ({
            ...container,
            env: {
              ...container.env,
              OTEL_EXPORTER_OTLP_ENDPOINT: `http://${context.addressOf('reporter', otlp.container, otlp.port)}`,
            },
          })),
          connections: [
            ...(contribution.connections ?? []),
            { from: 'reporter', to: otlp.container, port: otlp.port },
          ],
        };
      },
    });
    const result = await composePlanV2({
      spec: parseInstanceSpec({
        name: 'traced',
        target: 'memory',
        agent: { image: 'localhost/agent:1', port: 18789, skillsDirectory: '/skills' },
        sidecars: { otel: {}, reporter: {} },
      }),
      sidecars: { getSidecar: (id) => [provider, reporter].find((item) => item.id === id) },
      target,
    });
    expect(result.sidecars.map((sidecar) => sidecar.providerId)).toEqual(['otel', 'reporter']);
    expect(
      result.containers.find((container) => container.name === 'reporter')?.env[
        'OTEL_EXPORTER_OTLP_ENDPOINT'
      ],
    ).toBe('http://localhost:4318');
  });

  it('judges its self-test by the collector answer', async () => {
    const [check] = await provider.verification!.checks(
      {
        instanceName: 'traced',
        networkMode: 'proxy-only',
        metadata: { agentEndpoint: 'http://otel:4318', serviceName: 's', exporters: ['debug'] },
        exports: {},
      },
      undefined,
    );
    expect(check?.exec.command).toEqual(['node', '-']);
    expect(check?.exec.stdin).toContain('http://otel:4318');
    const judge = (stdout: string) => check!.judge({ exitCode: 0, stdout, stderr: '', timedOut: false });
    expect(judge('{"status":200}\n')).toEqual({
      passed: true,
      evidence: 'POST http://otel:4318/v1/traces → 200',
    });
    expect(judge('{"status":404}\n').passed).toBe(false);
    expect(judge('{"error":"ECONNREFUSED"}\n')).toEqual({
      passed: false,
      evidence: 'POST http://otel:4318/v1/traces failed: ECONNREFUSED',
    });
  });
});
