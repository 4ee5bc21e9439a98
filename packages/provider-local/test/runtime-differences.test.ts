import type Docker from 'dockerode';
import { describe, expect, it } from 'vitest';
import {
  healthStatus,
  isMissingContainer,
  matchesAllLabels,
  networkAttachStrategy,
  publishedHostPort,
  publishedHostPortFromSummary,
  runtimeKindFromVersion,
  splitNetworks,
  volumeWriteStrategy,
} from '../src/runtime-differences.js';

describe('podman / docker differences', () => {
  it('tells podman from docker by the version components', () => {
    // Captured from podman 4.3.1's compat API on the CI machine.
    const podman = {
      Components: [{ Name: 'Podman Engine' }, { Name: 'Conmon' }, { Name: 'OCI Runtime (runc)' }],
    };
    const docker = { Components: [{ Name: 'Engine' }, { Name: 'containerd' }, { Name: 'runc' }] };
    expect(runtimeKindFromVersion(podman as unknown as Docker.DockerVersion)).toBe('podman');
    expect(runtimeKindFromVersion(docker as unknown as Docker.DockerVersion)).toBe('docker');
  });

  it('writes volume files through the consumer on podman, through a writer container on docker', () => {
    expect(volumeWriteStrategy('podman')).toBe('archive-into-consumer');
    expect(volumeWriteStrategy('docker')).toBe('writer-container');
  });

  it('reads health from State.Health (docker) or State.Healthcheck (podman)', () => {
    expect(healthStatus({ Health: { Status: 'healthy' } })).toBe('healthy');
    expect(healthStatus({ Healthcheck: { Status: 'starting' } })).toBe('starting');
    expect(healthStatus({})).toBeUndefined();
  });

  it('reads published ports with an empty HostIp (podman) and skips IPv6 duplicates (docker)', () => {
    expect(publishedHostPort({ '18789/tcp': [{ HostIp: '', HostPort: '40001' }] }, 18789)).toEqual({
      hostAddress: '127.0.0.1',
      hostPort: 40001,
    });
    expect(
      publishedHostPort(
        {
          '18789/tcp': [
            { HostIp: '::', HostPort: '40002' },
            { HostIp: '0.0.0.0', HostPort: '40002' },
          ],
        },
        18789,
      ),
    ).toEqual({ hostAddress: '127.0.0.1', hostPort: 40002 });
    expect(publishedHostPort({ '18789/tcp': null }, 18789)).toBeUndefined();
    expect(
      publishedHostPortFromSummary(
        [
          { IP: '::', PrivatePort: 18789, PublicPort: 40003, Type: 'tcp' },
          { IP: '127.0.0.1', PrivatePort: 18789, PublicPort: 40003, Type: 'tcp' },
        ],
        18789,
      ),
    ).toEqual({ hostAddress: '127.0.0.1', hostPort: 40003 });
  });

  it('matches every label filter (podman ORs several label filters on volume lists)', () => {
    const filter = { label: ['keyward.dev/managed-by=keyward', 'keyward.dev/instance=a'] };
    expect(
      matchesAllLabels({ 'keyward.dev/managed-by': 'keyward', 'keyward.dev/instance': 'a' }, filter),
    ).toBe(true);
    expect(
      matchesAllLabels({ 'keyward.dev/managed-by': 'keyward', 'keyward.dev/instance': 'b' }, filter),
    ).toBe(false);
    expect(matchesAllLabels(null, filter)).toBe(false);
    expect(matchesAllLabels({ present: '' }, { label: ['present'] })).toBe(true);
  });

  it('joins extra networks after create on docker, in the create call on podman', () => {
    expect(networkAttachStrategy('podman')).toBe('at-create');
    expect(networkAttachStrategy('docker')).toBe('connect-after-create');
    const split = splitNetworks({
      name: 'keyward-a-tokenizer',
      HostConfig: { NetworkMode: 'keyward-a-internal' },
      NetworkingConfig: {
        EndpointsConfig: { 'keyward-a-internal': { Aliases: ['tokenizer'] }, 'keyward-a-egress': {} },
      },
    });
    expect(split.create.NetworkingConfig).toEqual({
      EndpointsConfig: { 'keyward-a-internal': { Aliases: ['tokenizer'] } },
    });
    expect(split.connect).toEqual([{ network: 'keyward-a-egress', endpoint: {} }]);
    expect(splitNetworks({ name: 'x', HostConfig: { NetworkMode: 'container:y' } }).connect).toEqual([]);
  });

  it('counts a container as missing on 404, and on podman archive 500 "no such container" only', () => {
    const archive500 = Object.assign(new Error('(HTTP code 500) server error - no such container'), {
      statusCode: 500,
      json: { cause: 'no such container', message: 'no such container', response: 500 },
    });
    expect(isMissingContainer(Object.assign(new Error('no such container'), { statusCode: 404 }))).toBe(true);
    expect(isMissingContainer(archive500)).toBe(true);
    expect(
      isMissingContainer(
        Object.assign(new Error('(HTTP code 500) server error - disk full'), { statusCode: 500 }),
      ),
    ).toBe(false);
    expect(isMissingContainer(Object.assign(new Error('no such container'), { statusCode: 409 }))).toBe(
      false,
    );
    expect(isMissingContainer(new Error('connect ENOENT /run/keyward-podman.sock'))).toBe(false);
  });
});
