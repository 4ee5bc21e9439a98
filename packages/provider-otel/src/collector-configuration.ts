import { stringify } from 'yaml';
import type { OtelExporters } from './otel-config.js';

export interface CollectorConfigurationOptions {
  grpcPort: number;
  httpPort: number;
  exporters: OtelExporters;
  /** Environment variable per OTLP header, holding its (secret) value. */
  headerVariables: Record<string, string>;
}

/**
 * The collector's configuration: OTLP in on both protocols, batched, out to every configured
 * exporter, for traces, metrics and logs. Secret header values stay in the environment
 * (`${env:NAME}`), so the file holds none.
 */
export function collectorConfiguration(options: CollectorConfigurationOptions): string {
  const exporters: Record<string, unknown> = {};
  if (options.exporters.debug) exporters['debug'] = { verbosity: options.exporters.debug.verbosity };
  if (options.exporters.file) exporters['file'] = { path: options.exporters.file.path };
  if (options.exporters.otlp) {
    const { endpoint, protocol } = options.exporters.otlp;
    const headers = Object.fromEntries(
      Object.entries(options.headerVariables).map(([header, variable]) => [header, `\${env:${variable}}`]),
    );
    exporters[protocol === 'grpc' ? 'otlp' : 'otlphttp'] = {
      endpoint,
      ...(Object.keys(headers).length > 0 ? { headers } : {}),
    };
  }
  const names = Object.keys(exporters);
  const pipeline = { receivers: ['otlp'], processors: ['batch'], exporters: names };
  return stringify({
    receivers: {
      otlp: {
        protocols: {
          grpc: { endpoint: `0.0.0.0:${options.grpcPort}` },
          http: { endpoint: `0.0.0.0:${options.httpPort}` },
        },
      },
    },
    processors: { batch: { timeout: '1s' } },
    exporters,
    service: {
      pipelines: { traces: pipeline, metrics: pipeline, logs: pipeline },
      telemetry: { metrics: { level: 'none' } },
    },
  });
}
