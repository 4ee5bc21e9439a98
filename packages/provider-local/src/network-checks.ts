// verificationChecks(detail): the target's own isolation checks, run inside the agent like the
// sidecars' self-tests. In proxy-only each passes only when nothing answered (a timeout or an
// unreachable error); in open mode they pass and document what the agent can reach.
import { randomBytes } from 'node:crypto';
import { networkInterfaces } from 'node:os';
import { AGENT_CONTAINER_NAME, type InstanceDetailV2, type VerifyCheckV2 } from '@keyward/core';
import { readInstance } from './instance-state.js';
import {
  formatOutcome,
  isBlocked,
  type NetworkProbe,
  networkProbeScript,
  type ProbeOutcome,
  parseProbeOutput,
} from './network-probe-script.js';
import type { OperationContext } from './operation-context.js';
import { isNotFound } from './runtime-differences.js';
import { containerRuntimeName, helperRuntimeName } from './runtime-names.js';
import { localAddressOf } from './target-options.js';

/** Ports the host checks try when the settings name none: ssh, the usual web ports. */
const DEFAULT_HOST_PROBE_PORTS = [22, 80, 443];

function formatOutcomes(results: readonly ProbeOutcome[]): string {
  return results.map(formatOutcome).join('; ');
}

interface CheckInput {
  name: string;
  description: string;
  probes: NetworkProbe[];
  open: boolean;
  /** `blocked` (isolation checks) or `reachable` (the allowed connections). */
  expect: 'blocked' | 'reachable';
}

function probeCheck(input: CheckInput): VerifyCheckV2 {
  const name = input.open && input.expect === 'blocked' ? `${input.name}-open-mode` : input.name;
  return {
    name,
    description:
      input.open && input.expect === 'blocked'
        ? `Open mode documents it: ${input.description.charAt(0).toLowerCase()}${input.description.slice(1)} (reachable is expected here)`
        : input.description,
    exec: {
      container: AGENT_CONTAINER_NAME,
      command: ['node', '-'],
      stdin: networkProbeScript(input.probes),
      timeoutSeconds: 20 + input.probes.length * 6,
    },
    judge(result) {
      const results = parseProbeOutput(result.stdout);
      if (!results) {
        return {
          passed: false,
          evidence: `the probe did not run in the agent (exit code ${result.exitCode}${result.timedOut ? ', timed out' : ''}): ${(result.stderr || result.stdout).trim().slice(0, 300)}; the agent image needs node on its PATH`,
        };
      }
      const evidence = formatOutcomes(results);
      if (input.expect === 'reachable') {
        return { passed: results.every((item) => item.outcome === 'connected'), evidence };
      }
      if (input.open) return { passed: true, evidence: `observed: ${evidence}` };
      const reached = results.filter((item) => !isBlocked(item));
      return {
        passed: reached.length === 0,
        evidence:
          reached.length === 0
            ? `all blocked: ${evidence}`
            : `reachable: ${formatOutcomes(reached)}; all: ${evidence}`,
      };
    },
  };
}

/**
 * The host's own addresses (the target runs on it): every IPv4 address, bridges of other
 * instances included, and global IPv6 ones; loopback is the agent's own, link-local has its check.
 */
function hostAddresses(): string[] {
  const addresses = Object.values(networkInterfaces()).flatMap((entries) =>
    (entries ?? [])
      .filter((entry) => !entry.internal && !entry.address.toLowerCase().startsWith('fe80:'))
      .map((entry) => entry.address),
  );
  return [...new Set(addresses)];
}

export async function networkChecks(
  context: OperationContext,
  detail: InstanceDetailV2,
): Promise<VerifyCheckV2[]> {
  const { record } = await readInstance(context, detail.name);
  const plan = record.plan;
  const open = plan.networkMode === 'open';
  const ports = context.settings.verificationHostPorts ?? DEFAULT_HOST_PROBE_PORTS;
  const allowed = plan.connections.filter((connection) => connection.from === AGENT_CONTAINER_NAME);
  const allowedKeys = new Set(allowed.map((connection) => `${connection.to}:${connection.port}`));

  // Other containers of the instance by their addresses on the instance's networks.
  const others: NetworkProbe[] = [];
  const targets = [
    ...plan.containers
      .filter((container) => container.role !== 'agent')
      .map((container) => ({
        name: container.name,
        runtimeName: containerRuntimeName(plan.instance.name, container.name),
        ports: container.ports.map((port) => port.containerPort),
      })),
    {
      name: 'network-helper',
      runtimeName: helperRuntimeName(plan.instance.name),
      ports: plan.ingress.map((entry) => entry.port),
    },
  ];
  for (const target of targets) {
    let addresses: string[] = [];
    try {
      const inspected = await context.runtime.docker.getContainer(target.runtimeName).inspect();
      addresses = Object.values(inspected.NetworkSettings?.Networks ?? {})
        .flatMap((network) => [network.IPAddress, network.GlobalIPv6Address])
        .filter((address): address is string => Boolean(address));
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
    for (const address of [...new Set(addresses)]) {
      for (const port of [...new Set([...target.ports, ...ports])]) {
        // In open mode the allowed ones are reachable anyway (shared namespace): documented, not probed.
        if (open && allowedKeys.has(`${target.name}:${port}`)) continue;
        others.push({ kind: 'tcp', host: address, port });
      }
    }
  }
  const unique = randomBytes(6).toString('hex');
  const checks: VerifyCheckV2[] = [
    probeCheck({
      name: 'direct-egress-blocked',
      description: 'The agent cannot open a connection to the internet by address, IPv4 or IPv6.',
      probes: [
        { kind: 'tcp', host: '1.1.1.1', port: 443 },
        { kind: 'tcp', host: '8.8.8.8', port: 53 },
        { kind: 'tcp', host: '2606:4700:4700::1111', port: 443 },
      ],
      open,
      expect: 'blocked',
    }),
    probeCheck({
      name: 'dns-blocked',
      description: 'No DNS server answers the agent: a lookup of a unique external name gets no answer.',
      probes: [{ kind: 'dns', name: `keyward-verify-${unique}.example.com` }],
      open,
      expect: 'blocked',
    }),
    probeCheck({
      name: 'host-gateway-blocked',
      description: 'The agent cannot reach the host through its default gateway.',
      probes: ports.map((port) => ({ kind: 'tcp-gateway', port })),
      open,
      expect: 'blocked',
    }),
    probeCheck({
      name: 'host-containers-internal-blocked',
      description: 'The agent cannot reach the host by host.containers.internal or host.docker.internal.',
      probes: ports.flatMap((port) => [
        { kind: 'tcp' as const, host: 'host.containers.internal', port },
        { kind: 'tcp' as const, host: 'host.docker.internal', port },
      ]),
      open,
      expect: 'blocked',
    }),
    probeCheck({
      name: 'host-ipv6-link-local-blocked',
      description: 'The agent cannot reach the host over IPv6 link-local addresses.',
      probes: ports.map((port) => ({ kind: 'tcp-link-local', port })),
      open,
      expect: 'blocked',
    }),
    probeCheck({
      name: 'host-addresses-blocked',
      description:
        "The agent cannot reach the host's own addresses (every interface, including listeners on 0.0.0.0).",
      probes: hostAddresses().flatMap((host) => ports.map((port) => ({ kind: 'tcp' as const, host, port }))),
      open,
      expect: 'blocked',
    }),
    probeCheck({
      name: 'other-containers-blocked',
      description:
        "The agent cannot reach the instance's other containers by their addresses, except through the connections the plan allows.",
      probes: others,
      open,
      expect: 'blocked',
    }),
  ];
  if (allowed.length > 0) {
    checks.push(
      probeCheck({
        name: 'allowed-connections-reachable',
        description:
          'Every connection the plan allows from the agent works, at the address the target gave the sidecars.',
        probes: allowed.map((connection) => {
          const address = localAddressOf({
            instanceName: plan.instance.name,
            networkMode: plan.networkMode,
            targetOptions: plan.targetOptions,
            from: { container: AGENT_CONTAINER_NAME, role: 'agent' },
            to: { container: connection.to, role: 'sidecar' },
            port: connection.port,
          });
          const separator = address.lastIndexOf(':');
          return {
            kind: 'tcp' as const,
            host: address.slice(0, separator),
            port: Number(address.slice(separator + 1)),
          };
        }),
        open,
        expect: 'reachable',
      }),
    );
  }
  return checks.filter((check) => check.exec.stdin !== networkProbeScript([]));
}
