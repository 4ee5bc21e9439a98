import type { SidecarContextV2, SidecarContributionV2, SidecarProviderV2 } from '@keyward/core';
import * as z from 'zod';
import { type GreetingConfig, greetingConfigSchema } from './greeting-config.js';
import { greetingServerSource } from './greeting-server.js';

export const GREETING_PROVIDER_ID = 'greeting';
const CONTAINER = 'greeting';
const SERVER_PATH = '/opt/greeting/server.mjs';
const GREETING_PATH = '/etc/greeting/greeting.txt';

export interface GreetingProviderSettings {
  /** Image used when a config names none (tests pass a local image). */
  defaultImage?: string;
}

export type GreetingProvider = SidecarProviderV2<GreetingConfig, { greeting: string }>;

const metadataSchema = z.object({ url: z.string(), greeting: z.string() });

/** Runs inside the agent with `node`, on stdin: asks the service for its greeting. */
function selfTestScript(url: string): string {
  return `fetch(${JSON.stringify(`${url}/greeting`)}, { signal: AbortSignal.timeout(5000) })
  .then(async (response) => console.log(JSON.stringify({ status: response.status, body: await response.json() })))
  .catch((error) => console.log(JSON.stringify({ error: String(error?.cause?.code ?? error) })));`;
}

export function createGreetingProvider(settings: GreetingProviderSettings = {}): GreetingProvider {
  const contribute = (context: SidecarContextV2, config: GreetingConfig): SidecarContributionV2 => {
    // Always ask the target for addresses: a name on podman, localhost in a pod, a Service elsewhere.
    const url = `http://${context.addressOf('agent', CONTAINER, config.port)}`;
    const image =
      config.image === 'node:20-slim' && settings.defaultImage ? settings.defaultImage : config.image;
    return {
      containers: [
        {
          name: CONTAINER,
          image,
          command: ['node', SERVER_PATH],
          env: { GREETING_PORT: String(config.port), GREETING_FILE: GREETING_PATH },
          ports: [{ name: 'http', containerPort: config.port }],
          readiness: { type: 'http', port: config.port, path: '/health', timeoutSeconds: 2, retries: 20 },
          security: { readOnlyRootFilesystem: true, dropAllCapabilities: true, noNewPrivileges: true },
          egress: { type: 'none' }, // it never needs to leave the instance
          resources: { requests: { cpu: '10m', memory: '32Mi' }, limits: { memory: '64Mi' } },
        },
      ],
      secrets: [],
      files: [
        {
          container: CONTAINER,
          root: 'absolute',
          path: SERVER_PATH,
          content: greetingServerSource,
          mode: 0o444,
        },
        {
          container: CONTAINER,
          root: 'absolute',
          path: GREETING_PATH,
          content: `${config.greeting}\n`,
          mode: 0o444,
        },
        ...(context.agent.skillsDirectory
          ? [
              {
                container: 'agent',
                root: 'skills' as const,
                path: 'greeting/SKILL.md',
                content: `---\nname: greeting\ndescription: Ask the greeting service for today's greeting.\n---\n\n# Greeting\n\n\`curl -s ${url}/greeting\` answers \`{"greeting": "..."}\`. The URL is also in $GREETING_URL.\n`,
              },
            ]
          : []),
      ],
      agentEnv: { GREETING_URL: url },
      connections: [{ from: 'agent', to: CONTAINER, port: config.port }],
      exports: { greeting: { container: CONTAINER, port: config.port } },
      metadata: { url, greeting: config.greeting },
    };
  };

  return {
    specificationVersion: 'v2',
    id: GREETING_PROVIDER_ID,
    displayName: 'Greeting service (example)',
    configSchema: greetingConfigSchema,
    capabilities: { networkModes: ['proxy-only', 'open'] },
    contribute,
    redactConfig: (config) => ({ greeting: config.greeting, port: config.port, image: config.image }),
    rotation: {
      changeSchema: z.object({ greeting: greetingConfigSchema.shape.greeting }).strict(),
      rotate: (context, current, change) => {
        const stored = metadataSchema.parse(current.metadata);
        const port = Number(new URL(stored.url).port);
        return contribute(context, greetingConfigSchema.parse({ greeting: change.greeting, port }));
      },
      nextRedactedConfig: (saved, change) => ({ ...saved, greeting: change.greeting }),
    },
    verification: {
      checks: (context) => {
        const { url, greeting } = metadataSchema.parse(context.metadata);
        return [
          {
            name: 'greeting-answers',
            description: 'The agent reaches the greeting service and gets the configured greeting.',
            exec: {
              container: 'agent',
              command: ['node', '-'],
              stdin: selfTestScript(url),
              timeoutSeconds: 10,
            },
            judge: (result) => {
              if (result.exitCode !== 0)
                return { passed: false, evidence: `the self-test did not run (exit ${result.exitCode})` };
              try {
                const outcome = JSON.parse(result.stdout.trim().split('\n').at(-1) ?? '');
                const passed = outcome.status === 200 && outcome.body?.greeting === greeting;
                return {
                  passed,
                  evidence: outcome.error
                    ? `GET ${url}/greeting failed: ${outcome.error}`
                    : `GET ${url}/greeting → ${outcome.status}`,
                };
              } catch {
                return { passed: false, evidence: 'the self-test printed no result' };
              }
            },
          },
        ];
      },
    },
    view: {
      schema: z.object({ url: z.string(), greeting: z.string() }),
      build: (state) => metadataSchema.parse(state.metadata),
    },
    errorCodes: {
      GREETING_UNREACHABLE: { httpStatus: 502, description: 'The greeting service did not answer.' },
    },
  };
}
