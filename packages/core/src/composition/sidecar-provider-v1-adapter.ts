import type { SidecarContributionV1 } from '../spec/v1/contribution-v1.js';
import type { SidecarContextV1, SidecarProviderV1 } from '../spec/v1/sidecar-provider-v1.js';
import type { ConnectionV2, SidecarContributionV2 } from '../spec/v2/contribution-v2.js';
import type { SidecarContextV2, SidecarProviderV2 } from '../spec/v2/sidecar-provider-v2.js';

const AGENT = 'agent';

function contextV1(context: SidecarContextV2): SidecarContextV1 {
  return {
    instanceName: context.instanceName,
    networkMode: context.networkMode,
    // v1 addresses were URLs the agent dials.
    addressOf: (container, port) => `http://${context.addressOf(AGENT, container, port)}`,
    // v1 always had a skills directory; a v1 sidecar that writes one fails at composition when it is unset.
    agent: { port: context.agent.port, skillsDirectory: context.agent.skillsDirectory ?? '/skills' },
    randomBytes: (length) => context.randomBytes(length),
  };
}

/** v1 had no connection list: the agent could reach every port of every sidecar. */
function contributionV2(contribution: SidecarContributionV1): SidecarContributionV2 {
  const connections: ConnectionV2[] = contribution.containers.flatMap((container) =>
    (container.ports ?? []).map((port) => ({ from: AGENT, to: container.name, port: port.containerPort })),
  );
  return {
    containers: contribution.containers.map(({ ports, egress, ...container }) => ({
      ...container,
      ...(ports ? { ports: ports.map(({ publish: _publish, ...port }) => port) } : {}),
      egress: egress === 'internet' ? { type: 'internet' } : { type: 'none' },
    })),
    secrets: contribution.secrets.map((secret) => ({ ...secret })),
    files: contribution.files.map((file) => ({ ...file })),
    agentEnv: { ...contribution.agentEnv },
    connections,
    exports: {},
    metadata: contribution.metadata,
    ...(contribution.warnings ? { warnings: contribution.warnings } : {}),
  };
}

/**
 * Lets a v1 sidecar plugin run on the v2 plan unchanged: its addresses are the agent's, its
 * ports are reachable from the agent, it requires nothing and exports nothing.
 */
export function adaptSidecarProviderV1<TConfig, TChange>(
  provider: SidecarProviderV1<TConfig, TChange>,
): SidecarProviderV2<TConfig, TChange> {
  const rotation = provider.rotation;
  return {
    specificationVersion: 'v2',
    id: provider.id,
    ...(provider.displayName === undefined ? {} : { displayName: provider.displayName }),
    configSchema: provider.configSchema,
    capabilities: { networkModes: [...provider.capabilities.networkModes] },
    contribute: async (context, config) =>
      contributionV2(await provider.contribute(contextV1(context), config)),
    redactConfig: (config) => provider.redactConfig(config),
    ...(rotation
      ? {
          rotation: {
            changeSchema: rotation.changeSchema,
            rotate: async (context, current, change) =>
              contributionV2(
                await rotation.rotate(
                  contextV1(context),
                  { metadata: current.metadata, secrets: current.secrets },
                  change,
                ),
              ),
          },
        }
      : {}),
  };
}
