import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type BuildPrebuiltImageResult,
  buildPrebuiltImage,
  imageReference,
  litellmImage,
} from '../src/index.js';
import { podmanForTests, waitFor } from './podman-for-tests.js';

// The real LiteLLM from PyPI: a cold build debootstraps Debian and installs ~120
// packages, so the build gets its own timeout.
const coldBuildTimeout = 40 * 60_000;

const masterKey = 'sk-keyward-images-test';
// Stands for the tokenizer-sealed token and the Proxy-Tokenizer header provider-litellm
// will configure; LiteLLM only has to pass them on.
const placeholderApiKey = 'sealed-placeholder-for-the-provider-key';
const proxyTokenizerHeader = 'sealed-token-from-keyward-images-test';
// A name nothing resolves: only a request sent through HTTP_PROXY can reach "it".
const upstreamBase = 'http://model-api.keyward-images.test:8080/v1';

const otelServiceName = 'keyward-images-test-litellm';

const litellmConfiguration = `
model_list:
  - model_name: mock-model
    litellm_params:
      model: openai/mock-model
      api_key: not-used
      mock_response: "hello from the mock model"
  - model_name: upstream-model
    litellm_params:
      model: openai/gpt-upstream
      api_base: ${upstreamBase}
      api_key: os.environ/MODEL_API_KEY
      # \`headers\`, not \`extra_headers\`: a request's own extra_headers (the forwarded
      # traceparent) replace the model's, while \`headers\` are merged with them.
      headers:
        Proxy-Tokenizer: ${proxyTokenizerHeader}
general_settings:
  master_key: ${masterKey}
litellm_settings:
  callbacks: ["otel"]
  forward_traceparent_to_llm_provider: true
`;

interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** A forward proxy for plain HTTP that records each request and answers it as the model API would. */
async function startRecordingProxy(): Promise<{ server: Server; port: number; requests: RecordedRequest[] }> {
  const requests: RecordedRequest[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      requests.push({
        method: request.method ?? '',
        url: request.url ?? '',
        headers: request.headers,
        body: Buffer.concat(chunks),
      });
      // LiteLLM's OTLP exporter (not proxied: NO_PROXY names this host): an empty
      // ExportTraceServiceResponse is zero bytes of protobuf.
      if (request.url === '/v1/traces') {
        response.writeHead(200, { 'content-type': 'application/x-protobuf' });
        response.end();
        return;
      }
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(
        JSON.stringify({
          id: 'chatcmpl-keyward-images-test',
          object: 'chat.completion',
          created: Math.floor(Date.now() / 1000),
          model: 'gpt-upstream',
          choices: [
            {
              index: 0,
              message: { role: 'assistant', content: 'hello through the proxy' },
              finish_reason: 'stop',
            },
          ],
          usage: { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 },
        }),
      );
    });
  });
  // All interfaces: the container reaches the host through podman's bridge gateway.
  await new Promise<void>((resolve) => server.listen(0, '0.0.0.0', resolve));
  return { server, port: (server.address() as AddressInfo).port, requests };
}

describe('the real LiteLLM proxy image (PyPI, hash-pinned, Debian bookworm base) on podman', () => {
  let docker: Docker;
  let build: BuildPrebuiltImageResult;
  let configurationDirectory: string;
  let proxy: Awaited<ReturnType<typeof startRecordingProxy>>;
  let port: number;
  const containerName = `keyward-images-litellm-test-${Date.now().toString(36)}`;

  const chat = (model: string, headers: Record<string, string> = {}) =>
    fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${masterKey}`, 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hello' }] }),
    });
  // Requests LiteLLM sent through HTTP_PROXY (absolute form), apart from its OTLP exports.
  const proxied = () => proxy.requests.filter((request) => request.url.startsWith('http://'));
  const exports = () => proxy.requests.filter((request) => request.url === '/v1/traces');

  beforeAll(async () => {
    docker = await podmanForTests();
    build = await buildPrebuiltImage(docker, litellmImage);

    proxy = await startRecordingProxy();
    configurationDirectory = await mkdtemp(join(tmpdir(), 'keyward-litellm-test-'));
    await chmod(configurationDirectory, 0o755);
    await writeFile(join(configurationDirectory, 'config.yaml'), litellmConfiguration, { mode: 0o644 });
    const container = await docker.createContainer({
      name: containerName,
      Image: imageReference(litellmImage),
      Env: [
        `MODEL_API_KEY=${placeholderApiKey}`,
        // All provider-litellm needs so upstream calls go through the tokenizer: the
        // proxy for plain-http API bases (this LiteLLM's aiohttp transport reads it
        // without AIOHTTP_TRUST_ENV), and a NO_PROXY that does not cover the API host.
        `HTTP_PROXY=http://host.containers.internal:${proxy.port}`,
        'NO_PROXY=localhost,127.0.0.1,host.containers.internal',
        // LiteLLM's `otel` callback, as provider-litellm configures it for the collector.
        `OTEL_EXPORTER_OTLP_ENDPOINT=http://host.containers.internal:${proxy.port}`,
        'OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf',
        `OTEL_SERVICE_NAME=${otelServiceName}`,
        'OTEL_BSP_SCHEDULE_DELAY=1000',
        // Otherwise a raw-request span carries the whole provider request, headers included.
        'OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=NO_CONTENT',
      ],
      ExposedPorts: { '4000/tcp': {} },
      HostConfig: {
        Binds: [`${join(configurationDirectory, 'config.yaml')}:/etc/litellm/config.yaml:ro`],
        PortBindings: { '4000/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }] },
      },
    });
    await container.start();
    port = Number((await container.inspect()).NetworkSettings.Ports['4000/tcp']?.[0]?.HostPort);
    // LiteLLM imports for a while before it listens.
    await waitFor(
      'LiteLLM to answer /health/liveliness',
      async () => {
        const response = await fetch(`http://127.0.0.1:${port}/health/liveliness`);
        return response.status === 200 ? true : undefined;
      },
      { seconds: 240, intervalMs: 500 },
    );
  }, coldBuildTimeout);

  afterAll(async () => {
    await docker
      ?.getContainer(containerName)
      .remove({ force: true })
      .catch(() => undefined);
    await new Promise((resolve) => proxy?.server.close(resolve));
    if (configurationDirectory) await rm(configurationDirectory, { recursive: true, force: true });
  });

  it('runs LiteLLM as uid 65532 on port 4000, and a second build is skipped', async () => {
    const image = await docker.getImage(imageReference(litellmImage)).inspect();
    expect(image.Config.User).toBe('65532:65532');
    expect(Object.keys(image.Config.ExposedPorts ?? {})).toEqual(['4000/tcp']);
    const again = await buildPrebuiltImage(docker, litellmImage);
    expect(again).toMatchObject({ built: false, contentDigest: build.contentDigest });
    const version = await docker.getContainer(containerName).exec({
      Cmd: [
        'python3',
        '-c',
        'import importlib.metadata as m; print(m.version("litellm") + "-otel" + m.version("opentelemetry-sdk"))',
      ],
      AttachStdout: true,
      AttachStderr: true,
    });
    const stream = await version.start({});
    const output = await new Promise<string>((resolve) => {
      let text = '';
      stream.on('data', (chunk: Buffer) => {
        text += chunk.toString('utf8');
      });
      stream.on('end', () => resolve(text));
    });
    expect(output).toContain(litellmImage.tag);
  });

  it('answers /health/liveliness and a chat completion from a mock_response model', async () => {
    expect((await fetch(`http://127.0.0.1:${port}/health/liveliness`)).status).toBe(200);
    const response = await chat('mock-model');
    expect(response.status).toBe(200);
    const body = (await response.json()) as { choices: { message: { content: string } }[] };
    expect(body.choices[0]?.message.content).toBe('hello from the mock model');
    expect(proxied().filter((request) => request.method === 'POST')).toEqual([]);
  });

  it('refuses a chat request without the master key', async () => {
    const response = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'mock-model', messages: [{ role: 'user', content: 'hello' }] }),
    });
    expect(response.status).toBe(401);
  });

  it('sends a plain-http api_base call through HTTP_PROXY with the Proxy-Tokenizer header and the Authorization it was given', async () => {
    const response = await chat('upstream-model');
    expect(response.status).toBe(200);
    const body = (await response.json()) as { choices: { message: { content: string } }[] };
    expect(body.choices[0]?.message.content).toBe('hello through the proxy');

    const chatRequests = proxied().filter((request) => request.method === 'POST');
    expect(chatRequests).toHaveLength(1);
    const [request] = chatRequests;
    // Absolute-form request line: how a client talks to a forward proxy for http:// URLs.
    expect(request?.method).toBe('POST');
    expect(request?.url).toBe(`${upstreamBase}/chat/completions`);
    expect(request?.headers['proxy-tokenizer']).toBe(proxyTokenizerHeader);
    expect(request?.headers.authorization).toBe(`Bearer ${placeholderApiKey}`);
    // No traceparent came in, so none goes out.
    expect(request?.headers.traceparent).toBeUndefined();
    expect(JSON.parse(request?.body.toString('utf8') ?? '{}')).toMatchObject({
      model: 'gpt-upstream',
      messages: [{ role: 'user', content: 'hello' }],
    });
    // LiteLLM also lists the API's models (GET {api_base}/models) on its own: through
    // the proxy too, with the same credentials and header.
    for (const other of proxied()) {
      expect(other.url.startsWith(`${upstreamBase}/`)).toBe(true);
      expect(other.headers['proxy-tokenizer']).toBe(proxyTokenizerHeader);
      expect(other.headers.authorization).toBe(`Bearer ${placeholderApiKey}`);
    }
  });

  it('forwards the caller’s traceparent upstream next to the Proxy-Tokenizer header, and exports its spans under that trace id', async () => {
    const traceId = randomBytes(16).toString('hex');
    const traceparent = `00-${traceId}-${randomBytes(8).toString('hex')}-01`;
    const before = proxied().length;
    const response = await chat('upstream-model', { traceparent });
    expect(response.status).toBe(200);

    const [request] = proxied()
      .slice(before)
      .filter((entry) => entry.method === 'POST');
    expect(request?.url).toBe(`${upstreamBase}/chat/completions`);
    // forward_traceparent_to_llm_provider puts the header in the request's extra_headers; the
    // model's `headers` (the sealed token the tokenizer needs) are merged with them.
    expect(request?.headers.traceparent).toBe(traceparent);
    expect(request?.headers['proxy-tokenizer']).toBe(proxyTokenizerHeader);
    expect(request?.headers.authorization).toBe(`Bearer ${placeholderApiKey}`);

    // OTLP/protobuf: the trace id is 16 raw bytes in each span, the service name a plain string.
    const traceIdBytes = Buffer.from(traceId, 'hex');
    const deadline = Date.now() + 60_000;
    while (!exports().some((entry) => entry.body.includes(traceIdBytes)) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    const traced = exports().filter((entry) => entry.body.includes(traceIdBytes));
    expect(traced.length, `${exports().length} export(s), none with trace ${traceId}`).toBeGreaterThan(0);
    expect(traced[0]?.headers['content-type']).toBe('application/x-protobuf');
    expect(traced[0]?.body.includes(Buffer.from(otelServiceName))).toBe(true);
    // Neither the master key nor the sealed token goes into a span (with content capture on, a
    // raw-request span would carry the model's headers).
    for (const entry of exports()) {
      expect(entry.body.includes(Buffer.from(masterKey))).toBe(false);
      expect(entry.body.includes(Buffer.from(proxyTokenizerHeader))).toBe(false);
      expect(entry.body.includes(Buffer.from(placeholderApiKey))).toBe(false);
    }
  });
});
