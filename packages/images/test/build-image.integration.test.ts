import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImage, type ImageBuildProgress, imageDefinitions, imageReference } from '../src/index.js';
import { podmanForTests } from './podman-for-tests.js';

describe('buildImage on real podman (no registry)', () => {
  let docker: Docker;
  const containerName = `keyward-images-test-${Date.now().toString(36)}`;

  beforeAll(async () => {
    docker = await podmanForTests();
  });

  afterAll(async () => {
    await docker
      ?.getContainer(containerName)
      .remove({ force: true })
      .catch(() => undefined);
  });

  it('builds the stand-in agent FROM scratch with the host node, reports progress, then skips when up to date', async () => {
    const events: ImageBuildProgress[] = [];
    const first = await buildImage(docker, imageDefinitions.agentStandIn, {
      force: true,
      onProgress: (event) => events.push(event),
    });
    expect(first).toMatchObject({ image: 'localhost/keyward-agent-standin:0.1.0', built: true });
    expect(events.map((event) => event.type)).toContain('built');
    const second = await buildImage(docker, imageDefinitions.agentStandIn);
    expect(second).toMatchObject({ built: false, contentDigest: first.contentDigest });
  });

  it('the image runs as uid 65532 and answers /health on 18789', async () => {
    const image = await docker.getImage(imageReference(imageDefinitions.agentStandIn)).inspect();
    expect(image.Config.User).toBe('65532:65532');
    const container = await docker.createContainer({
      name: containerName,
      Image: imageReference(imageDefinitions.agentStandIn),
      ExposedPorts: { '18789/tcp': {} },
      HostConfig: { PortBindings: { '18789/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }] } },
    });
    await container.start();
    const port = (await container.inspect()).NetworkSettings.Ports['18789/tcp']?.[0]?.HostPort;
    let status = 0;
    for (let attempt = 0; attempt < 50 && status !== 200; attempt += 1) {
      status = await fetch(`http://127.0.0.1:${port}/health`).then(
        (response) => response.status,
        () => 0,
      );
      if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(status).toBe(200);
  });
});
