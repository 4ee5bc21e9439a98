// Readiness: probes run from the network helper, which sees every sidecar of the instance;
// the agent's from the agent-network helper, which shares its namespace in proxy-only.
import type { PlannedContainerV2, ProbeV2 } from '@keyward/core';
import { execInContainer } from './container-exec.js';
import { lastLogLines } from './container-logs.js';
import type { StoredPlan } from './instance-record.js';
import type { OperationContext } from './operation-context.js';
import { agentNetworkRuntimeName, containerRuntimeName, helperRuntimeName } from './runtime-names.js';

/** A sidecar's own probe; the agent is ready when its published port accepts connections. */
export function readinessProbe(plan: StoredPlan, container: PlannedContainerV2): ProbeV2 | undefined {
  if (container.readiness) return container.readiness;
  const agentPort = plan.ingress.find((entry) => entry.container === container.name)?.port;
  return container.role === 'agent' && agentPort !== undefined
    ? { type: 'tcp', port: agentPort, retries: 60 }
    : undefined;
}

/** Probes until the container answers; fails early, with its last log lines, when it exits. */
export async function waitUntilReady(
  { runtime: { docker }, settings }: OperationContext,
  stored: StoredPlan,
  container: PlannedContainerV2,
  probe: ProbeV2,
): Promise<void> {
  // The agent is probed from inside its own namespace (proxy-only: the agent-network helper's).
  const agentInside = stored.networkMode === 'proxy-only' && container.role === 'agent';
  const host = stored.networkMode === 'proxy-only' && !agentInside ? container.name : '127.0.0.1';
  const prober = agentInside
    ? agentNetworkRuntimeName(stored.instance.name)
    : helperRuntimeName(stored.instance.name);
  const runtimeName = containerRuntimeName(stored.instance.name, container.name);
  const command = ['node', '/app/main.mjs', 'probe', probe.type, host, String(probe.port)];
  if (probe.type === 'http') command.push(probe.path);
  const attempts = Math.max(probe.retries ?? 30, 1) * 2;
  const interval = settings.readinessIntervalMs ?? 250;
  let last = '';
  for (let attempt = 0; attempt < attempts; attempt += 1) {
    // A slow probe on a loaded machine is one failed attempt, not a failed deploy.
    const result = await execInContainer(docker, prober, command, {
      timeoutMs: 15_000,
    }).catch((error: Error) => {
      if (!/timed out/.test(error.message)) throw error;
      return { exitCode: null, stdout: '', stderr: error.message };
    });
    if (result.exitCode === 0) return;
    last = (result.stderr || result.stdout).trim();
    const state = (await docker.getContainer(runtimeName).inspect()).State;
    if (!state.Running) {
      throw new Error(
        `container ${runtimeName} exited with code ${state.ExitCode} before it was ready; last log lines: ${await lastLogLines(docker, runtimeName, 5)}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
  throw new Error(
    `${container.name} was not ready after ${attempts} probes (${probe.type} ${host}:${probe.port}): ${last}`,
  );
}
