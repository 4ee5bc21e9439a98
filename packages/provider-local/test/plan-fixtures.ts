import { composePlanV2, type DeploymentPlanV2, parseInstanceSpec } from '@keyward/core';
import {
  createMockCredentialConsumerProvider,
  createMockSealingProvider,
  createMockSidecarProvider,
} from '@keyward/core/testing';
import { createLocalProvider } from '../src/index.js';

/** Deterministic bytes so plans, and the snapshots of what we send, do not change between runs. */
export function counterBytes(length: number): Uint8Array {
  return Uint8Array.from({ length }, (_, index) => (index * 7 + 3) % 256);
}

/** The local target as composition sees it (addresses, options, capabilities): pure, no runtime. */
export const compositionTarget = createLocalProvider();

export function mockPlan(
  egress: 'proxy-only' | 'open',
  name = 'snap',
  agent: { stateDirectories?: string[] } = {},
): Promise<DeploymentPlanV2> {
  const mock = createMockSidecarProvider();
  return composePlanV2({
    spec: parseInstanceSpec({
      name,
      target: 'local',
      agent: {
        image: 'localhost/keyward-agent-standin:0.1.0',
        port: 18789,
        skillsDirectory: '/home/node/.openclaw/skills',
        env: { AGENT_MODE: 'test' },
        ...(agent.stateDirectories ? { stateDirectories: agent.stateDirectories } : {}),
      },
      network: { egress, hostPort: 28789 },
      sidecars: { mock: { secret: 'mock-raw-credential-value' } },
    }),
    sidecars: { getSidecar: (id) => (id === 'mock' ? mock : undefined) },
    target: compositionTarget,
    randomBytes: counterBytes,
  });
}

export const sealingProvider = createMockSealingProvider();
export const consumerProvider = createMockCredentialConsumerProvider();

/** A consumer sidecar holding a credential sealed by a sealing sidecar it requires. */
export function sealedCredentialPlan(
  egress: 'proxy-only' | 'open',
  name: string,
  options: { image?: string; credential?: string } = {},
): Promise<DeploymentPlanV2> {
  return composePlanV2({
    spec: parseInstanceSpec({
      name,
      target: 'local',
      agent: { image: options.image ?? 'localhost/keyward-agent-standin:0.1.0', port: 18789 },
      network: { egress },
      sidecars: {
        sealer: {},
        gateway: { apiKey: options.credential ?? 'gateway-raw-provider-key' },
      },
    }),
    sidecars: {
      getSidecar: (id) =>
        id === 'sealer' ? sealingProvider : id === 'gateway' ? consumerProvider : undefined,
    },
    target: compositionTarget,
    randomBytes: counterBytes,
  });
}
