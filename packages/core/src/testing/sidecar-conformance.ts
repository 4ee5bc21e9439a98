import { isDeepStrictEqual } from 'node:util';
import * as z from 'zod';
import {
  type AnySidecarProviderV2,
  composePlanV2,
  type TargetForComposition,
} from '../composition/compose-plan.js';
import { dnsLabelPattern } from '../dns-label.js';
import { KeywardError } from '../errors/keyward-error.js';
import { parseInstanceSpec } from '../instance-spec.js';
import type { NetworkMode } from '../spec/v1/network-mode.js';
import type { SidecarContributionV2 } from '../spec/v2/contribution-v2.js';
import type { DeploymentPlanV2 } from '../spec/v2/deployment-plan-v2.js';
import { createSeededRandomBytes } from './mock-sidecar-provider.js';

export interface ConformanceViolation {
  rule: string;
  message: string;
}

export interface SidecarConformanceOptions {
  provider: AnySidecarProviderV2;
  /** A config the provider must accept. */
  validConfig: unknown;
  /** Configs the provider must reject, each with a label. */
  invalidConfigs?: { label: string; config: unknown }[];
  /** Raw values in `validConfig` that must never appear in the plan (not even in secrets). */
  forbiddenValues?: string[];
  /** The providers it requires (or asks), with their configs, composed beside it. */
  companions?: { provider: AnySidecarProviderV2; config: unknown }[];
  /** View options for `verification.checks`, when the provider has verification. */
  verificationOptions?: unknown;
}

/**
 * The target the suite composes against: addresses nobody could guess, so a provider that
 * builds its own (`http://tokenizer:4001`) instead of asking `addressOf` is caught.
 */
export function createConformanceTarget(): TargetForComposition & { handedOut: Set<string> } {
  const handedOut = new Set<string>();
  return {
    id: 'local',
    capabilities: {
      networkModes: ['proxy-only', 'open'],
      egress: ['none', 'internet', 'destinations'],
      rotation: true,
      render: true,
      exec: true,
      logsFollow: true,
    },
    configSchema: z.object({}).passthrough(),
    handedOut,
    addressOf: ({ networkMode, from, to, port }) => {
      const address =
        networkMode === 'open'
          ? `localhost:${port}`
          : `${to.container}.from-${from.container}.conformance.invalid:${port}`;
      handedOut.add(address);
      return address;
    },
  };
}

interface Composition {
  plan: DeploymentPlanV2;
  contribution: SidecarContributionV2;
  handedOut: Set<string>;
}

async function compose(options: SidecarConformanceOptions, mode: NetworkMode): Promise<Composition> {
  const { provider } = options;
  let contribution: SidecarContributionV2 | undefined;
  const capturing: AnySidecarProviderV2 = {
    ...provider,
    contribute: async (context, config) => {
      contribution = await provider.contribute(context, config);
      return contribution;
    },
  };
  const providers = [capturing, ...(options.companions ?? []).map((companion) => companion.provider)];
  const target = createConformanceTarget();
  const plan = await composePlanV2({
    spec: parseInstanceSpec({
      name: 'conformance',
      agent: { image: 'localhost/keyward-agent-standin:test', port: 18789, skillsDirectory: '/agent/skills' },
      network: { egress: mode },
      sidecars: {
        [provider.id]: options.validConfig,
        ...Object.fromEntries((options.companions ?? []).map((item) => [item.provider.id, item.config])),
      },
    }),
    sidecars: { getSidecar: (id) => providers.find((candidate) => candidate.id === id) },
    target,
    randomBytes: createSeededRandomBytes(7),
  });
  if (!contribution) throw new Error('contribute() was not called');
  return { plan, contribution, handedOut: target.handedOut };
}

function urlsIn(text: string): string[] {
  return [...text.matchAll(/[a-z][a-z0-9+.-]*:\/\/([^\s/"'`]+)/gi)].map((match) => match[1] as string);
}

/** The sidecar rules, as data: each violated rule is returned, none thrown. */
export const sidecarConformanceRules: {
  rule: string;
  check: (options: SidecarConformanceOptions) => Promise<string | undefined>;
}[] = [
  {
    rule: 'declares specification version v2',
    check: async ({ provider }) =>
      provider.specificationVersion === 'v2'
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
    rule: 'composes into a plan in every supported network mode',
    check: async (options) => {
      for (const mode of options.provider.capabilities.networkModes) {
        try {
          await compose(options, mode);
        } catch (error) {
          return `mode ${mode}: ${KeywardError.isInstance(error) ? `${error.code}: ` : ''}${error instanceof Error ? error.message : String(error)}`;
        }
      }
      return undefined;
    },
  },
  {
    rule: 'contributes plain data (survives a JSON round trip)',
    check: async (options) => {
      const { contribution } = await compose(options, 'proxy-only');
      return isDeepStrictEqual(JSON.parse(JSON.stringify(contribution)), contribution)
        ? undefined
        : 'contribution holds functions, class instances or undefined values';
    },
  },
  {
    rule: 'gives every container an image and a valid egress',
    check: async (options) => {
      const { contribution } = await compose(options, 'proxy-only');
      for (const container of contribution.containers) {
        if (!container.image) return `container "${container.name}" has no image`;
        const type = (container.egress as { type?: unknown } | undefined)?.type;
        if (type !== 'internet' && type !== 'none' && type !== 'destinations')
          return `container "${container.name}" has egress ${JSON.stringify(container.egress)}`;
      }
      return undefined;
    },
  },
  {
    rule: 'keeps raw inputs out of the plan, secrets included',
    check: async (options) => {
      const { plan } = await compose(options, 'proxy-only');
      const text = JSON.stringify(plan);
      const found = (options.forbiddenValues ?? []).find((value) => text.includes(value));
      return found === undefined ? undefined : 'a forbidden raw value appears in the plan';
    },
  },
  {
    rule: 'keeps secret values out of metadata, exports and redacted config',
    check: async (options) => {
      const { provider, validConfig, forbiddenValues = [] } = options;
      const { contribution } = await compose(options, 'proxy-only');
      const values = [...forbiddenValues, ...contribution.secrets.map((secret) => secret.value)];
      const redacted = JSON.stringify(provider.redactConfig(provider.configSchema.parse(validConfig)));
      const metadata = JSON.stringify(contribution.metadata);
      const exported = JSON.stringify(contribution.exports ?? {});
      if (values.some((value) => metadata.includes(value))) return 'metadata holds a secret value';
      if (values.some((value) => exported.includes(value))) return 'exports hold a secret value';
      if (values.some((value) => redacted.includes(value)))
        return 'redactConfig() output holds a secret value';
      return undefined;
    },
  },
  {
    rule: "uses the target's addresses, never its own",
    check: async (options) => {
      for (const mode of options.provider.capabilities.networkModes) {
        const { contribution, handedOut } = await compose(options, mode);
        const text = JSON.stringify([
          contribution.agentEnv,
          contribution.files.map((file) => file.content),
          contribution.containers.map((container) => container.env ?? {}),
        ]);
        for (const address of urlsIn(text)) {
          const looksInternal =
            /^[a-z0-9-]+(:\d+)$/.test(address) || /^(localhost|127\.0\.0\.1):\d+$/.test(address);
          if (looksInternal && !handedOut.has(address))
            return `mode ${mode}: ${address} was not given by addressOf()`;
        }
      }
      return undefined;
    },
  },
  {
    rule: 'declares a connection for every address it hands the agent',
    check: async (options) => {
      const { plan, contribution } = await compose(options, 'proxy-only');
      const text = JSON.stringify([contribution.agentEnv, contribution.files.map((file) => file.content)]);
      for (const address of urlsIn(text)) {
        const match = /^([a-z0-9-]+)\.from-agent\.conformance\.invalid:(\d+)$/.exec(address);
        if (!match) continue;
        const [, to, port] = match;
        if (
          !plan.connections.some(
            (item) => item.from === 'agent' && item.to === to && item.port === Number(port),
          )
        )
          return `the agent is given ${address} but no connection agent → ${to}:${port} is declared`;
      }
      return undefined;
    },
  },
  {
    rule: 'asks only providers it requires',
    check: async ({ provider, validConfig }) => {
      if (!provider.request) return undefined;
      const required = new Set((provider.requires ?? []).map((item) => item.provider));
      const requests = provider.request(
        { instanceName: 'conformance', networkMode: 'proxy-only', providers: [...required] },
        provider.configSchema.parse(validConfig),
      );
      const stray = requests.find((request) => !required.has(request.provider));
      return stray ? `asks "${stray.provider}", which it does not require` : undefined;
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
  {
    rule: 'its self-test checks are well formed and fail when their command could not run',
    check: async (options) => {
      const { provider } = options;
      if (!provider.verification) return undefined;
      const { contribution } = await compose(options, 'proxy-only');
      const parsedOptions = provider.verification.optionsSchema
        ? provider.verification.optionsSchema.parse(options.verificationOptions ?? {})
        : (options.verificationOptions ?? {});
      const checks = await provider.verification.checks(
        {
          instanceName: 'conformance',
          networkMode: 'proxy-only',
          metadata: contribution.metadata,
          exports: contribution.exports ?? {},
        },
        parsedOptions,
      );
      if (!Array.isArray(checks) || checks.length === 0) return 'verification gives no checks';
      for (const check of checks) {
        if (!dnsLabelPattern.test(check.name))
          return `check name ${JSON.stringify(check.name)} is not kebab-case`;
        if (!check.description) return `check ${check.name} has no description`;
        if (!Array.isArray(check.exec?.command) || check.exec.command.length === 0)
          return `check ${check.name} has no command`;
        const judged = check.judge({ exitCode: 127, stdout: '', stderr: 'not found', timedOut: false });
        if (judged.passed) return `check ${check.name} passes when its command could not run`;
      }
      return undefined;
    },
  },
  {
    rule: 'its view matches its schema and holds no secret value',
    check: async (options) => {
      const { provider } = options;
      if (!provider.view) return undefined;
      const { contribution } = await compose(options, 'proxy-only');
      const view = provider.view.build({
        metadata: contribution.metadata,
        exports: contribution.exports ?? {},
      });
      const parsed = provider.view.schema.safeParse(view);
      if (!parsed.success) return `view does not match its schema: ${parsed.error.issues[0]?.message}`;
      const text = JSON.stringify(view);
      const values = [
        ...(options.forbiddenValues ?? []),
        ...contribution.secrets.map((secret) => secret.value),
      ];
      return values.some((value) => value.length >= 6 && text.includes(value))
        ? 'view holds a secret value'
        : undefined;
    },
  },
];

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
