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
  dockerFromEnvironment,
  imageReference,
  litellmImage,
} from '../src/index.js';

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
      extra_headers:
        Proxy-Tokenizer: ${proxyTokenizerHeader}
general_settings:
  master_key: ${masterKey}
`;

interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
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
        body: Buffer.concat(chunks).toString('utf8'),
      });
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

async function waitFor<T>(what: string, attempt: () => Promise<T | undefined>, seconds: number): Promise<T> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const result = await attempt().catch(() => undefined);
    if (result !== undefined) return result;
    if (Date.now() > deadline) throw new Error(`Timed out after ${seconds} s waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

describe('the real LiteLLM proxy image (PyPI, hash-pinned, Debian bookworm base) on podman', () => {
  let docker: Docker;
  let build: BuildPrebuiltImageResult;
  let configurationDirectory: string;
  let proxy: Awaited<ReturnType<typeof startRecordingProxy>>;
  let port: number;
  const containerName = `keyward-images-litellm-test-${Date.now().toString(36)}`;

  const chat = (model: string) =>
    fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${masterKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hello' }] }),
    });

  beforeAll(async () => {
    if (!process.env['DOCKER_HOST']) {
      throw new Error('DOCKER_HOST is not set: run `eval "$(scripts/ci/start-podman.sh)"` first.');
    }
    docker = dockerFromEnvironment();
    await docker.ping();
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
        'NO_PROXY=localhost,127.0.0.1',
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
      240,
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
      Cmd: ['python3', '-c', 'import importlib.metadata as m; print(m.version("litellm"))'],
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
    expect(proxy.requests.filter((request) => request.method === 'POST')).toEqual([]);
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

    const chatRequests = proxy.requests.filter((request) => request.method === 'POST');
    expect(chatRequests).toHaveLength(1);
    const [request] = chatRequests;
    // Absolute-form request line: how a client talks to a forward proxy for http:// URLs.
    expect(request?.method).toBe('POST');
    expect(request?.url).toBe(`${upstreamBase}/chat/completions`);
    expect(request?.headers['proxy-tokenizer']).toBe(proxyTokenizerHeader);
    expect(request?.headers.authorization).toBe(`Bearer ${placeholderApiKey}`);
    expect(JSON.parse(request?.body ?? '{}')).toMatchObject({
      model: 'gpt-upstream',
      messages: [{ role: 'user', content: 'hello' }],
    });
    // LiteLLM also lists the API's models (GET {api_base}/models) on its own: through
    // the proxy too, with the same credentials and header.
    for (const other of proxy.requests) {
      expect(other.url.startsWith(`${upstreamBase}/`)).toBe(true);
      expect(other.headers['proxy-tokenizer']).toBe(proxyTokenizerHeader);
      expect(other.headers.authorization).toBe(`Bearer ${placeholderApiKey}`);
    }
  });
});
