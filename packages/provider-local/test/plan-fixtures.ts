import { composePlan, type DeploymentPlanV1, parseInstanceSpec } from '@keyward/core';
import { createMockSidecarProvider } from '@keyward/core/testing';

/** Deterministic bytes so plans, and the snapshots of what we send, do not change between runs. */
export function counterBytes(length: number): Uint8Array {
  return Uint8Array.from({ length }, (_, index) => (index * 7 + 3) % 256);
}

export function mockPlan(egress: 'proxy-only' | 'open', name = 'snap'): Promise<DeploymentPlanV1> {
  const mock = createMockSidecarProvider();
  return composePlan({
    spec: parseInstanceSpec({
      name,
      agent: { image: 'localhost/keyward-agent-standin:0.1.0', env: { AGENT_MODE: 'test' } },
      network: { egress, hostPort: 28789 },
      sidecars: { mock: { secret: 'mock-raw-credential-value' } },
    }),
    sidecars: { getSidecar: (id) => (id === 'mock' ? mock : undefined) },
    randomBytes: counterBytes,
  });
}
