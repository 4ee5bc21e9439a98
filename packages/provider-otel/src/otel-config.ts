import * as z from 'zod';

/** The seed installer's pin (openclaw-installer §1.4); a published collector users can pull. */
export const OTEL_DEFAULT_IMAGE =
  'ghcr.io/open-telemetry/opentelemetry-collector-releases/opentelemetry-collector-contrib:0.120.0';
/** The program in the default image; other builds name theirs (keyward's local one: `/otelcol-keyward`). */
export const OTEL_DEFAULT_BINARY = '/otelcol-contrib';

const portSchema = z
  .number({ error: 'must be a port number' })
  .int({ error: 'must be a whole number' })
  .min(1, { error: 'must be between 1 and 65535' })
  .max(65535, { error: 'must be between 1 and 65535' });

const headerNamePattern = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

export const otelExporterSchema = z
  .object({
    /** Print what arrives to the collector's log (`keyward logs NAME --container otel`). */
    debug: z
      .object({
        verbosity: z
          .enum(['basic', 'normal', 'detailed'], { error: 'must be "basic", "normal" or "detailed"' })
          .default('basic'),
      })
      .strict()
      .optional(),
    /** Write spans, metrics and logs as OTLP JSON lines to a file inside the collector. */
    file: z
      .object({
        path: z
          .string()
          .startsWith('/', {
            error:
              'must be an absolute path inside the collector, for example /var/lib/otelcol/telemetry.jsonl',
          })
          .default('/var/lib/otelcol/telemetry.jsonl'),
      })
      .strict()
      .optional(),
    /** Forward to a backend (Jaeger, Tempo, a vendor). Header values are secrets: they never reach the agent. */
    otlp: z
      .object({
        endpoint: z.url({ error: 'must be a URL, for example https://otlp.example.com:4318' }),
        protocol: z.enum(['http', 'grpc'], { error: 'must be "http" or "grpc"' }).default('http'),
        headers: z
          .record(
            z.string().regex(headerNamePattern, {
              error: 'header names must be HTTP tokens, for example "x-api-key"',
            }),
            z.string().min(1, { error: 'header values must not be empty' }),
          )
          .default({}),
      })
      .strict()
      .optional(),
  })
  .strict()
  .refine((exporters) => exporters.debug || exporters.file || exporters.otlp, {
    error: 'configure at least one exporter: debug, file or otlp',
  });

export const otelConfigSchema = z
  .object({
    image: z.string().min(1, { error: 'must not be empty' }).optional(),
    /** The collector program inside the image. */
    binary: z.string().startsWith('/', { error: 'must be an absolute path' }).default(OTEL_DEFAULT_BINARY),
    grpcPort: portSchema.default(4317),
    httpPort: portSchema.default(4318),
    /** `service.name` the agent reports under; defaults to `<instance>-agent`. */
    serviceName: z.string().min(1).max(128).optional(),
    exporters: otelExporterSchema.default({ debug: { verbosity: 'basic' } }),
  })
  .strict()
  .refine((config) => config.grpcPort !== config.httpPort, {
    error: 'grpcPort and httpPort must differ',
    path: ['httpPort'],
  });

export type OtelConfig = z.output<typeof otelConfigSchema>;
export type OtelConfigInput = z.input<typeof otelConfigSchema>;
export type OtelExporters = z.output<typeof otelExporterSchema>;
