import { isDeepStrictEqual } from 'node:util';
import { composePlan } from '../composer.js';
import { dnsLabelPattern } from '../dns-label.js';
import { KeywardError } from '../errors/keyward-error.js';
import { parseInstanceSpec } from '../instance-spec.js';
import type { SidecarContributionV1 } from '../spec/v1/contribution-v1.js';
import type { NetworkMode } from '../spec/v1/network-mode.js';
import type { SidecarProviderV1 } from '../spec/v1/sidecar-provider-v1.js';
import { createSeededRandomBytes } from './mock-sidecar-provider.js';

export interface ConformanceViolation {
  rule: string;
  message: string;
}

export interface SidecarConformanceOptions {
  // biome-ignore lint/suspicious/noExplicitAny: the suite accepts any provider's config type.
  provider: SidecarProviderV1<any, any>;
  /** A config the provider must accept. */
  validConfig: unknown;
  /** Configs the provider must reject, each with a label. */
  invalidConfigs?: { label: string; config: unknown }[];
  /** Raw values in `validConfig` that must never appear in the contribution (not even in its secrets). */
  forbiddenValues?: string[];
}

function specFor(providerId: string, config: unknown, mode: NetworkMode) {
  return parseInstanceSpec({
    name: 'conformance',
    agent: { image: 'localhost/keyward-agent-standin:test' },
    network: { egress: mode },
    sidecars: { [providerId]: config },
  });
}

/** The sidecar rules, as data: each violated rule is returned, none thrown. */
export const sidecarConformanceRules: {
  rule: string;
  check: (options: SidecarConformanceOptions) => Promise<string | undefined>;
}[] = [
  {
    rule: 'declares specification version v1',
    check: async ({ provider }) =>
      provider.specificationVersion === 'v1'
        ? undefined
        : `specificationVersion is ${JSON.stringify(provider.specificationVersion)}`,
  },
  {
    rule: 'has a DNS-label id',
    check: async ({ provider }) =>
      typeof provider.id === 'string' && dnsLabelPattern.test(provider.id)
        ? undefined
        : `id ${JSON.stringify(provider.id)}`,
  },
  {
    rule: 'declares the network modes it supports',
    check: async ({ provider }) =>
      Array.isArray(provider.capabilities?.networkModes) && provider.capabilities.networkModes.length > 0
        ? undefined
        : 'capabilities.networkModes is empty or missing',
  },
  {
    rule: 'accepts the valid config',
    check: async ({ provider, validConfig }) => {
      const result = provider.configSchema.safeParse(validConfig);
      return result.success
        ? undefined
        : `rejected: ${result.error.issues.map((issue) => issue.message).join('; ')}`;
    },
  },
  {
    rule: 'rejects every invalid config with a message',
    check: async ({ provider, invalidConfigs = [] }) => {
      for (const { label, config } of invalidConfigs) {
        const result = provider.configSchema.safeParse(config);
        if (result.success) return `accepted invalid config "${label}"`;
        if (result.error.issues.some((issue) => !issue.message))
          return `no message for invalid config "${label}"`;
      }
      return undefined;
    },
  },
  {
    rule: 'contributes plain data (survives a JSON round trip)',
    check: async ({ provider, validConfig }) => {
      const contribution = await contribute(provider, validConfig, 'proxy-only');
      return isDeepStrictEqual(JSON.parse(JSON.stringify(contribution)), contribution)
        ? undefined
        : 'contribution holds functions, class instances or undefined values';
    },
  },
  {
    rule: 'gives every container an image and a valid egress',
    check: async ({ provider, validConfig }) => {
      const contribution = await contribute(provider, validConfig, 'proxy-only');
      for (const container of contribution.containers) {
        if (!container.image) return `container "${container.name}" has no image`;
        if (container.egress !== 'internet' && container.egress !== 'none')
          return `container "${container.name}" has egress ${JSON.stringify(container.egress)}`;
      }
      return undefined;
    },
  },
  {
    rule: 'composes into a plan in every supported network mode',
    check: async ({ provider, validConfig }) => {
      for (const mode of provider.capabilities.networkModes) {
        try {
          await composePlan({
            spec: specFor(provider.id, validConfig, mode),
            sidecars: { getSidecar: (id) => (id === provider.id ? provider : undefined) },
            randomBytes: createSeededRandomBytes(7),
          });
        } catch (error) {
          return `mode ${mode}: ${KeywardError.isInstance(error) ? `${error.code}: ` : ''}${error instanceof Error ? error.message : String(error)}`;
        }
      }
      return undefined;
    },
  },
  {
    rule: 'keeps raw inputs out of the contribution',
    check: async ({ provider, validConfig, forbiddenValues = [] }) => {
      const text = JSON.stringify(await contribute(provider, validConfig, 'proxy-only'));
      const found = forbiddenValues.find((value) => text.includes(value));
      return found === undefined ? undefined : 'a forbidden raw value appears in the contribution';
    },
  },
  {
    rule: 'keeps secret values out of metadata and redacted config',
    check: async ({ provider, validConfig, forbiddenValues = [] }) => {
      const contribution = await contribute(provider, validConfig, 'proxy-only');
      const values = [...forbiddenValues, ...contribution.secrets.map((secret) => secret.value)];
      const redacted = JSON.stringify(provider.redactConfig(provider.configSchema.parse(validConfig)));
      const metadata = JSON.stringify(contribution.metadata);
      if (values.some((value) => metadata.includes(value))) return 'metadata holds a secret value';
      if (values.some((value) => redacted.includes(value)))
        return 'redactConfig() output holds a secret value';
      return undefined;
    },
  },
  {
    rule: 'uses the address the plan computed for each network mode',
    check: async ({ provider, validConfig }) => {
      for (const mode of provider.capabilities.networkModes) {
        const contribution = await contribute(provider, validConfig, mode);
        const env = JSON.stringify(contribution.agentEnv);
        const wrong =
          mode === 'proxy-only'
            ? /http:\/\/(localhost|127\.0\.0\.1):/
            : /http:\/\/(?!localhost|127\.0\.0\.1)[a-z0-9-]+:\d+/;
        if (wrong.test(env)) return `mode ${mode}: agent env holds an address for the other mode`;
      }
      return undefined;
    },
  },
  {
    rule: 'offers a change schema and rotate() together, or neither',
    check: async ({ provider }) => {
      if (provider.rotation === undefined) return undefined;
      return typeof provider.rotation.rotate === 'function' &&
        typeof provider.rotation.changeSchema?.safeParse === 'function'
        ? undefined
        : 'rotation is missing changeSchema or rotate()';
    },
  },
];

async function contribute(
  // biome-ignore lint/suspicious/noExplicitAny: any provider config.
  provider: SidecarProviderV1<any, any>,
  validConfig: unknown,
  mode: NetworkMode,
): Promise<SidecarContributionV1> {
  const spec = specFor(provider.id, validConfig, mode);
  const config = provider.configSchema.parse(validConfig);
  return provider.contribute(
    {
      instanceName: spec.name,
      networkMode: mode,
      addressOf: (container, port) =>
        mode === 'proxy-only' ? `http://${container}:${port}` : `http://localhost:${port}`,
      agent: { port: spec.agent.port, skillsDirectory: spec.agent.skillsDirectory },
      randomBytes: createSeededRandomBytes(3),
    },
    config,
  );
}

export async function checkSidecarProvider(
  options: SidecarConformanceOptions,
): Promise<ConformanceViolation[]> {
  const violations: ConformanceViolation[] = [];
  for (const { rule, check } of sidecarConformanceRules) {
    try {
      const problem = await check(options);
      if (problem !== undefined) violations.push({ rule, message: problem });
    } catch (error) {
      violations.push({ rule, message: `threw: ${error instanceof Error ? error.message : String(error)}` });
    }
  }
  return violations;
}
