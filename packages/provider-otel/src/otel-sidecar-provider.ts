import type { JsonObject, SidecarContextV2, SidecarContributionV2, SidecarProviderV2 } from '@keyward/core';
import * as z from 'zod';
import { collectorConfiguration } from './collector-configuration.js';
import { OTEL_DEFAULT_IMAGE, type OtelConfig, otelConfigSchema } from './otel-config.js';
import { telemetryChecks } from './otel-self-test.js';

export const OTEL_PROVIDER_ID = 'otel';
export const OTEL_CONTAINER_NAME = 'otel';
export const OTEL_CONFIG_PATH = '/etc/keyward/otel/config.yaml';

export interface OtelProviderSettings {
  /** Image used when a config has no `image`; defaults to `OTEL_DEFAULT_IMAGE`. */
  defaultImage?: string;
  /** Program inside `defaultImage`, when it is not the default image's. */
  defaultBinary?: string;
}

export type OtelProvider = SidecarProviderV2<OtelConfig, never>;

/** What other sidecars read to send their telemetry here (`context.dependencies.otel.exports`). */
export interface OtelExports {
  otlpHttp: { container: string; port: number };
  otlpGrpc: { container: string; port: number };
  [key: string]: { container: string; port: number };
}

const metadataSchema = z.object({
  agentEndpoint: z.string(),
  serviceName: z.string(),
  exporters: z.array(z.string()),
});

function headerVariable(header: string): string {
  return `KEYWARD_OTEL_HEADER_${header.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
}

export function createOtelProvider(settings: OtelProviderSettings = {}): OtelProvider {
  const contribute = (context: SidecarContextV2, config: OtelConfig): SidecarContributionV2 => {
    const image = config.image ?? settings.defaultImage ?? OTEL_DEFAULT_IMAGE;
    const binary =
      config.image === undefined && settings.defaultBinary ? settings.defaultBinary : config.binary;
    const headers = config.exporters.otlp?.headers ?? {};
    const headerVariables = Object.fromEntries(
      Object.keys(headers).map((header) => [header, headerVariable(header)]),
    );
    const agentEndpoint = `http://${context.addressOf('agent', OTEL_CONTAINER_NAME, config.httpPort)}`;
    const serviceName = config.serviceName ?? `${context.instanceName}-agent`;
    const exporterNames = Object.keys(config.exporters).filter(
      (name) => config.exporters[name as keyof typeof config.exporters] !== undefined,
    );
    const forwarding = config.exporters.otlp;
    return {
      containers: [
        {
          name: OTEL_CONTAINER_NAME,
          image,
          command: [binary, `--config=${OTEL_CONFIG_PATH}`],
          ports: [
            { name: 'otlp-grpc', containerPort: config.grpcPort, protocol: 'tcp' },
            { name: 'otlp-http', containerPort: config.httpPort, protocol: 'tcp' },
          ],
          readiness: { type: 'tcp', port: config.httpPort, timeoutSeconds: 2, retries: 30 },
          security: { readOnlyRootFilesystem: true, dropAllCapabilities: true, noNewPrivileges: true },
          // The file exporter writes here; nothing else is writable.
          tmpfs: ['/var/lib/otelcol', '/tmp'],
          // Only a forwarding exporter needs to leave the instance; it goes to its one host.
          egress: forwarding
            ? { type: 'destinations', destinations: [new URL(forwarding.endpoint).hostname] }
            : { type: 'none' },
          resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '256Mi' } },
        },
      ],
      secrets: Object.entries(headers).map(([header, value]) => ({
        name: `otel-header-${header
          .toLowerCase()
          .replace(/[^a-z0-9]+/g, '-')
          .replace(/^-|-$/g, '')}`,
        value,
        visibleTo: [OTEL_CONTAINER_NAME],
        delivery: { type: 'env' as const, variable: headerVariables[header] as string },
      })),
      files: [
        {
          container: OTEL_CONTAINER_NAME,
          root: 'absolute',
          path: OTEL_CONFIG_PATH,
          content: collectorConfiguration({
            grpcPort: config.grpcPort,
            httpPort: config.httpPort,
            exporters: config.exporters,
            headerVariables,
          }),
          mode: 0o444,
        },
      ],
      agentEnv: {
        OTEL_EXPORTER_OTLP_ENDPOINT: agentEndpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
        OTEL_SERVICE_NAME: serviceName,
      },
      connections: [
        { from: 'agent', to: OTEL_CONTAINER_NAME, port: config.grpcPort },
        { from: 'agent', to: OTEL_CONTAINER_NAME, port: config.httpPort },
      ],
      exports: {
        otlpHttp: { container: OTEL_CONTAINER_NAME, port: config.httpPort },
        otlpGrpc: { container: OTEL_CONTAINER_NAME, port: config.grpcPort },
      },
      metadata: { agentEndpoint, serviceName, exporters: exporterNames },
      ...(config.exporters.otlp && new URL(config.exporters.otlp.endpoint).protocol === 'http:'
        ? {
            warnings: [
              {
                code: 'OTEL_PLAINTEXT_EXPORT',
                message: `The OTLP exporter sends telemetry to ${config.exporters.otlp.endpoint} without TLS.`,
              },
            ],
          }
        : {}),
    };
  };

  return {
    specificationVersion: 'v2',
    id: OTEL_PROVIDER_ID,
    displayName: 'OpenTelemetry Collector',
    configSchema: otelConfigSchema,
    capabilities: { networkModes: ['proxy-only', 'open'] },
    contribute,
    redactConfig: (config): JsonObject => {
      const { otlp, ...rest } = config.exporters;
      return JSON.parse(
        JSON.stringify({
          ...config,
          exporters: {
            ...rest,
            ...(otlp
              ? {
                  otlp: {
                    ...otlp,
                    headers: Object.fromEntries(Object.keys(otlp.headers).map((name) => [name, ''])),
                  },
                }
              : {}),
          },
        }),
      ) as JsonObject;
    },
    verification: {
      checks: (context) => {
        const metadata = metadataSchema.safeParse(context.metadata);
        return telemetryChecks(metadata.success ? metadata.data.agentEndpoint : 'http://invalid.invalid');
      },
    },
    view: {
      schema: z.object({
        agentEndpoint: z.string(),
        serviceName: z.string(),
        exporters: z.array(z.string()),
      }),
      build: (state) => {
        const metadata = metadataSchema.parse(state.metadata);
        return {
          agentEndpoint: metadata.agentEndpoint,
          serviceName: metadata.serviceName,
          exporters: metadata.exporters,
        };
      },
    },
  };
}
