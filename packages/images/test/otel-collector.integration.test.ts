import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BuildPrebuiltImageResult,
  buildPrebuiltImage,
  imageReference,
  otelCollectorImage,
} from '../src/index.js';
import { podmanForTests, waitFor } from './podman-for-tests.js';

// The real collector, built from Go modules by scripts/images/build-otel-collector.sh:
// minutes on a cold machine, so the build gets its own timeout.
const coldBuildTimeout = 40 * 60_000;

const collectorConfiguration = `
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 0.0.0.0:4317
      http:
        endpoint: 0.0.0.0:4318
processors:
  batch:
    timeout: 100ms
exporters:
  file:
    path: /output/traces.jsonl
    flush_interval: 100ms
  debug: {}
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [file, debug]
`;

// Minimal protobuf writer for one OTLP ExportTraceServiceRequest (field numbers from
// opentelemetry-proto), so the gRPC receiver is tested without a gRPC library.
function varint(value: number): Buffer {
  const bytes: number[] = [];
  let rest = value;
  while (rest >= 0x80) {
    bytes.push((rest & 0x7f) | 0x80);
    rest = Math.floor(rest / 128);
  }
  bytes.push(rest);
  return Buffer.from(bytes);
}
const lengthDelimited = (field: number, content: Buffer | string) => {
  const body = typeof content === 'string' ? Buffer.from(content) : content;
  return Buffer.concat([varint((field << 3) | 2), varint(body.length), body]);
};
const fixed64 = (field: number, value: bigint) => {
  const body = Buffer.alloc(8);
  body.writeBigUInt64LE(value);
  return Buffer.concat([varint((field << 3) | 1), body]);
};

function exportTraceRequest(traceId: string, spanName: string, serviceName: string): Buffer {
  const serviceAttribute = lengthDelimited(
    1,
    Buffer.concat([lengthDelimited(1, 'service.name'), lengthDelimited(2, lengthDelimited(1, serviceName))]),
  );
  const now = BigInt(Date.now()) * 1_000_000n;
  const span = Buffer.concat([
    lengthDelimited(1, Buffer.from(traceId, 'hex')),
    lengthDelimited(2, randomBytes(8)),
    lengthDelimited(5, spanName),
    fixed64(7, now),
    fixed64(8, now + 1_000_000n),
  ]);
  const resourceSpans = Buffer.concat([
    lengthDelimited(1, serviceAttribute),
    lengthDelimited(2, lengthDelimited(2, span)),
  ]);
  return lengthDelimited(1, resourceSpans);
}

/** One unary gRPC call over HTTP/2 (cleartext): 5-byte frame header, then the message. */
async function grpcExport(port: number, message: Buffer): Promise<string | undefined> {
  const session = connect(`http://127.0.0.1:${port}`);
  try {
    return await new Promise<string | undefined>((resolve, reject) => {
      const frame = Buffer.alloc(5);
      frame.writeUInt32BE(message.length, 1);
      const stream = session.request({
        ':method': 'POST',
        ':path': '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
        'content-type': 'application/grpc',
        te: 'trailers',
      });
      let status: string | undefined;
      stream.on('response', (headers) => {
        if (headers['grpc-status'] !== undefined) status = String(headers['grpc-status']);
      });
      stream.on('trailers', (trailers) => {
        status = String(trailers['grpc-status']);
      });
      stream.on('data', () => undefined);
      stream.on('end', () => resolve(status));
      stream.on('error', reject);
      stream.end(Buffer.concat([frame, message]));
    });
  } finally {
    session.close();
  }
}

describe('the real OpenTelemetry Collector image (collector builder, FROM scratch) on podman', () => {
  let docker: Docker;
  let build: BuildPrebuiltImageResult;
  let outputDirectory: string;
  let httpPort: number;
  let grpcPort: number;
  const containerName = `keyward-images-otel-test-${Date.now().toString(36)}`;

  beforeAll(async () => {
    docker = await podmanForTests();
    build = await buildPrebuiltImage(docker, otelCollectorImage);

    outputDirectory = await mkdtemp(join(tmpdir(), 'keyward-otel-test-'));
    // The collector runs as uid 65532 and writes its file exporter output here.
    await chmod(outputDirectory, 0o777);
    await writeFile(join(outputDirectory, 'config.yaml'), collectorConfiguration, { mode: 0o644 });
    const container = await docker.createContainer({
      name: containerName,
      Image: imageReference(otelCollectorImage),
      Cmd: ['--config', '/output/config.yaml'],
      ExposedPorts: { '4317/tcp': {}, '4318/tcp': {} },
      HostConfig: {
        Binds: [`${outputDirectory}:/output`],
        PortBindings: {
          '4317/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }],
          '4318/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }],
        },
      },
    });
    await container.start();
    const ports = (await container.inspect()).NetworkSettings.Ports;
    httpPort = Number(ports['4318/tcp']?.[0]?.HostPort);
    grpcPort = Number(ports['4317/tcp']?.[0]?.HostPort);
  }, coldBuildTimeout);

  afterAll(async () => {
    await docker
      ?.getContainer(containerName)
      .remove({ force: true })
      .catch(() => undefined);
    if (outputDirectory) await rm(outputDirectory, { recursive: true, force: true });
  });

  const exportedLines = async () =>
    (await readFile(join(outputDirectory, 'traces.jsonl'), 'utf8').catch(() => ''))
      .split('\n')
      .filter(Boolean);

  it('is a static collector FROM scratch that runs as uid 65532 with OTLP ports, and a second build is skipped', async () => {
    const image = await docker.getImage(imageReference(otelCollectorImage)).inspect();
    expect(image.Config.User).toBe('65532:65532');
    expect(Object.keys(image.Config.ExposedPorts ?? {}).sort()).toEqual(['4317/tcp', '4318/tcp']);
    expect(image.Config.Entrypoint).toEqual(['/usr/bin/otelcol-keyward']);
    const again = await buildPrebuiltImage(docker, otelCollectorImage);
    expect(again).toMatchObject({ built: false, contentDigest: build.contentDigest });
  });

  it('starts with its built-in configuration and accepts OTLP/HTTP on 4318', async () => {
    const container = await docker.createContainer({
      name: `${containerName}-default`,
      Image: imageReference(otelCollectorImage),
      ExposedPorts: { '4318/tcp': {} },
      HostConfig: { PortBindings: { '4318/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }] } },
    });
    try {
      await container.start();
      const port = (await container.inspect()).NetworkSettings.Ports['4318/tcp']?.[0]?.HostPort;
      const status = await waitFor('the default configuration to accept OTLP/HTTP', async () => {
        const response = await fetch(`http://127.0.0.1:${port}/v1/traces`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ resourceSpans: [] }),
        });
        return response.status;
      });
      expect(status).toBe(200);
    } finally {
      await container.remove({ force: true });
    }
  });

  it('takes an OTLP/HTTP JSON trace on 4318 and writes it through the file exporter', async () => {
    const traceId = randomBytes(16).toString('hex');
    const body = {
      resourceSpans: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'keyward-images-test' } }] },
          scopeSpans: [
            {
              spans: [
                {
                  traceId,
                  spanId: randomBytes(8).toString('hex'),
                  name: 'http-json-span',
                  kind: 2,
                  startTimeUnixNano: `${Date.now()}000000`,
                  endTimeUnixNano: `${Date.now() + 1}000000`,
                },
              ],
            },
          ],
        },
      ],
    };
    const status = await waitFor('the collector to accept OTLP/HTTP', async () => {
      const response = await fetch(`http://127.0.0.1:${httpPort}/v1/traces`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      return response.status;
    });
    expect(status).toBe(200);
    const line = await waitFor('the span in the file exporter output', async () =>
      (await exportedLines()).find((candidate) => candidate.includes(traceId)),
    );
    const exported = JSON.parse(line);
    const span = exported.resourceSpans[0].scopeSpans[0].spans[0];
    expect(span).toMatchObject({ traceId, name: 'http-json-span', kind: 2 });
    expect(exported.resourceSpans[0].resource.attributes).toContainEqual({
      key: 'service.name',
      value: { stringValue: 'keyward-images-test' },
    });
  });

  it('takes an OTLP/gRPC protobuf trace on 4317 and writes it through the file exporter', async () => {
    const traceId = randomBytes(16).toString('hex');
    const status = await waitFor('the collector to accept OTLP/gRPC', () =>
      grpcExport(grpcPort, exportTraceRequest(traceId, 'grpc-span', 'keyward-images-grpc')),
    );
    expect(status).toBe('0');
    const line = await waitFor('the gRPC span in the file exporter output', async () =>
      (await exportedLines()).find((candidate) => candidate.includes(traceId)),
    );
    const exported = JSON.parse(line);
    expect(exported.resourceSpans[0].scopeSpans[0].spans[0]).toMatchObject({ traceId, name: 'grpc-span' });
    expect(exported.resourceSpans[0].resource.attributes).toContainEqual({
      key: 'service.name',
      value: { stringValue: 'keyward-images-grpc' },
    });
  });
});
