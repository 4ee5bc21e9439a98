import * as fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isKeywardError } from './errors/keyward-error.js';
import { type InstanceSpec, parseInstanceSpec } from './instance-spec.js';

// Properties of the instance spec, the API's deploy body: every valid spec is accepted and comes
// out as a model of the rules says (defaults, the v1 host fields moved); the output is a valid
// spec that parses to itself, also after a JSON round trip; a spec broken in one field is
// refused with a message naming that field; anything at all is accepted or refused with a
// KeywardError, never another throw. CI runs 800 cases (the default);
// `pnpm test:reliability` sets KEYWARD_PROPERTY_CASES=100000.
// Cases for the whole target (the spec), shared by its 3 properties.
const cases = Number(process.env['KEYWARD_PROPERTY_CASES'] ?? 800);
const runs = Math.ceil(cases / 3);
const settings = { numRuns: runs, endOnFailure: true } as const;
// Read by `pnpm test:reliability` from vitest's JSON report (scripts/reliability).
const recordCases = (task: { meta: object }) =>
  Object.assign(task.meta, { figures: [{ figure: 'fast-check cases', value: runs, unit: 'cases' }] });
// 100,000 cases take a few minutes on the shared VMs.
const timeout = Math.max(60_000, runs * 20);

const dnsLabel = fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/);
const environmentName = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,40}$/);
const absolutePath = fc.string({ maxLength: 40 }).map((rest) => `/${rest}`);
const port = fc.integer({ min: 1, max: 65535 });
// Every key a record may hold, `__proto__` included: the schema must keep or refuse it, not lose it.
const recordKey = fc.oneof(fc.string({ maxLength: 20 }), fc.constant('__proto__'));
const record = <T>(key: fc.Arbitrary<string>, value: fc.Arbitrary<T>) =>
  fc.dictionary(key, value, { maxKeys: 5, noNullPrototype: true });

const validAgent = fc.record(
  {
    image: fc.string({ minLength: 1, maxLength: 60 }),
    port,
    env: record(environmentName, fc.string({ maxLength: 30 })),
    command: fc.array(fc.string({ maxLength: 20 }), { minLength: 1, maxLength: 4 }),
    skillsDirectory: absolutePath,
    stateDirectories: fc.array(absolutePath, { maxLength: 8 }),
    readOnlyRootFilesystem: fc.boolean(),
  },
  { requiredKeys: ['image', 'port'] },
);

const validSpec = fc.record(
  {
    apiVersion: fc.constant('keyward.dev/v1'),
    name: dnsLabel,
    target: dnsLabel,
    agent: validAgent,
    // fast-check likes to try "__proto__" as a key: refused (see the breakages), so not valid here.
    targetOptions: record(
      fc.string({ maxLength: 20 }).filter((key) => key !== '__proto__'),
      fc.jsonValue({ maxDepth: 2 }),
    ),
    network: fc.record(
      {
        egress: fc.constantFrom('proxy-only', 'open'),
        hostPort: fc.option(port, { nil: null }),
        hostAddress: fc.string({ maxLength: 20 }),
      },
      { requiredKeys: [] },
    ),
    sidecars: record(dnsLabel, fc.jsonValue({ maxDepth: 2 })),
  },
  { requiredKeys: ['name', 'agent'] },
);

type ValidSpec = typeof validSpec extends fc.Arbitrary<infer T> ? T : never;

/** What the rules say a valid spec becomes: defaults filled in, the v1 host fields moved to targetOptions. */
function modelOf(input: ValidSpec): InstanceSpec {
  const targetOptions: Record<string, unknown> = { ...input.targetOptions };
  const network = input.network ?? {};
  if (network.hostPort != null && targetOptions['hostPort'] === undefined)
    targetOptions['hostPort'] = network.hostPort;
  if (network.hostAddress !== undefined && targetOptions['hostAddress'] === undefined)
    targetOptions['hostAddress'] = network.hostAddress;
  const { agent } = input;
  return {
    apiVersion: 'keyward.dev/v1',
    name: input.name,
    target: input.target ?? 'local',
    agent: {
      image: agent.image,
      port: agent.port,
      env: agent.env ?? {},
      ...(agent.command ? { command: agent.command } : {}),
      ...(agent.skillsDirectory === undefined ? {} : { skillsDirectory: agent.skillsDirectory }),
      stateDirectories: agent.stateDirectories ?? [],
      readOnlyRootFilesystem: agent.readOnlyRootFilesystem ?? true,
    },
    targetOptions,
    network: { egress: network.egress ?? 'proxy-only' },
    sidecars: input.sidecars ?? {},
  };
}

/** The problems of a refused spec; fails the property when it is accepted or throws anything else. */
function problemsOf(input: unknown): string[] {
  try {
    parseInstanceSpec(input);
  } catch (error) {
    if (!isKeywardError(error, 'INVALID_INSTANCE_SPEC')) throw error;
    const problems = error.details?.['problems'] as string[];
    expect(error.message).toBe(`Invalid instance spec: ${problems.join('; ')}`);
    return problems;
  }
  throw new Error(`accepted: ${JSON.stringify(input)}`);
}

type Spec = Record<string, unknown> & { agent: Record<string, unknown> };

/** One way to break a valid spec, and the field the refusal must name. */
interface Breakage {
  field: string;
  apply(spec: Spec): void;
}

const badLabel = fc.oneof(
  fc.constant(''),
  fc.constant('a'.repeat(64)),
  fc.constant('My_Agent'),
  fc.constant('-starts-with-dash'),
  fc.integer(),
);
const breakage = (field: string, apply: (spec: Spec) => void): Breakage => ({ field, apply });
const breakages: fc.Arbitrary<Breakage> = fc.oneof(
  badLabel.map((value) =>
    breakage('name', (spec) => {
      spec['name'] = value;
    }),
  ),
  badLabel.map((value) =>
    breakage('target', (spec) => {
      spec['target'] = value;
    }),
  ),
  fc.constantFrom('v2', 'keyward.dev/v2', 1).map((value) =>
    breakage('apiVersion', (spec) => {
      spec['apiVersion'] = value;
    }),
  ),
  fc.constantFrom<unknown>('', 42, null).map((value) =>
    breakage('agent.image', (spec) => {
      spec.agent['image'] = value;
    }),
  ),
  fc
    .oneof(fc.constant(0), fc.constant(65536), fc.constant(80.5), fc.constant('8080'), fc.integer({ max: 0 }))
    .map((value) =>
      breakage('agent.port', (spec) => {
        spec.agent['port'] = value;
      }),
    ),
  fc.stringMatching(/^[0-9-][A-Za-z0-9_-]{0,10}$/).map((key) =>
    breakage(`agent.env.${key}`, (spec) => {
      spec.agent['env'] = { [key]: 'value' };
    }),
  ),
  environmentName.map((key) =>
    breakage(`agent.env.${key}`, (spec) => {
      spec.agent['env'] = { [key]: 7 };
    }),
  ),
  fc.constant(
    breakage('agent.command', (spec) => {
      spec.agent['command'] = [];
    }),
  ),
  fc.string({ maxLength: 10 }).map((rest) =>
    breakage('agent.skillsDirectory', (spec) => {
      spec.agent['skillsDirectory'] = `relative${rest}`;
    }),
  ),
  fc.constant(
    breakage('agent.stateDirectories', (spec) => {
      spec.agent['stateDirectories'] = Array.from({ length: 9 }, (_, index) => `/d${index}`);
    }),
  ),
  fc.constant(
    breakage('agent.stateDirectories.0', (spec) => {
      spec.agent['stateDirectories'] = ['home/agent'];
    }),
  ),
  fc.constantFrom<unknown>('yes', 1, null).map((value) =>
    breakage('agent.readOnlyRootFilesystem', (spec) => {
      spec.agent['readOnlyRootFilesystem'] = value;
    }),
  ),
  fc.constantFrom('closed', 'none', '').map((value) =>
    breakage('network.egress', (spec) => {
      spec['network'] = { egress: value };
    }),
  ),
  fc.constant(
    breakage('agent.env.__proto__', (spec) => {
      spec.agent['env'] = JSON.parse('{"__proto__":"x"}');
    }),
  ),
  fc.constant(
    breakage('targetOptions.__proto__', (spec) => {
      spec['targetOptions'] = JSON.parse('{"__proto__":{"hostPort":1}}');
    }),
  ),
  fc.constant(
    breakage('sidecars.__proto__', (spec) => {
      spec['sidecars'] = JSON.parse('{"__proto__":{}}');
    }),
  ),
  // Unknown fields are named by the object that holds them.
  fc.stringMatching(/^x[a-z]{1,8}$/).map((key) =>
    breakage('(root)', (spec) => {
      spec[key] = true;
    }),
  ),
  fc.stringMatching(/^x[a-z]{1,8}$/).map((key) =>
    breakage('agent', (spec) => {
      spec.agent[key] = true;
    }),
  ),
);

describe('instance spec properties', () => {
  it(
    `accepts every valid spec as the model says, and its output parses to itself, also through JSON (${runs} cases)`,
    ({ task }) => {
      fc.assert(
        fc.property(validSpec, (input) => {
          const parsed = parseInstanceSpec(input);
          expect(parsed).toEqual(modelOf(input));
          expect(parseInstanceSpec(parsed)).toEqual(parsed);
          // JSON has no -0 (or undefined): compare with the output's own JSON form.
          expect(parseInstanceSpec(JSON.parse(JSON.stringify(input)))).toEqual(
            JSON.parse(JSON.stringify(parsed)),
          );
        }),
        settings,
      );
      recordCases(task);
    },
    timeout,
  );

  it(
    `refuses a valid spec broken in one field with a message naming that field (${runs} cases)`,
    ({ task }) => {
      fc.assert(
        fc.property(validSpec, breakages, (input, breakage) => {
          const spec = structuredClone(input) as Spec;
          breakage.apply(spec);
          const problems = problemsOf(spec);
          expect(problems.length).toBeGreaterThan(0);
          expect(
            problems.some((problem) => problem.startsWith(`${breakage.field}: `)),
            `${breakage.field} not named in ${JSON.stringify(problems)}`,
          ).toBe(true);
        }),
        settings,
      );
      recordCases(task);
    },
    timeout,
  );

  it(
    `answers anything with a spec or an INVALID_INSTANCE_SPEC naming each field, never another error (${runs} cases)`,
    ({ task }) => {
      // Spec-shaped objects with wrong values reach deeper than arbitrary values alone.
      const anything = fc.oneof(
        fc.anything({ withNullPrototype: true, withObjectString: true }),
        fc.record(
          {
            name: fc.anything(),
            target: fc.anything(),
            agent: fc.oneof(
              fc.anything(),
              fc.record({ image: fc.anything(), port: fc.anything(), env: fc.anything() }),
            ),
            targetOptions: fc.anything(),
            network: fc.anything(),
            sidecars: fc.oneof(fc.anything(), record(recordKey, fc.anything())),
          },
          { requiredKeys: [] },
        ),
      );
      fc.assert(
        fc.property(anything, (input) => {
          try {
            parseInstanceSpec(input);
          } catch (error) {
            if (!isKeywardError(error, 'INVALID_INSTANCE_SPEC')) throw error;
            const problems = error.details?.['problems'] as string[];
            expect(problems.length).toBeGreaterThan(0);
            // Each names the field it is about (a key may hold anything, spaces included), then the rule.
            for (const problem of problems) {
              expect(problem).toMatch(
                /^(\(root\)|apiVersion|name|target|agent|targetOptions|network|sidecars)(\.[\s\S]*)?: \S/,
              );
            }
          }
        }),
        settings,
      );
      recordCases(task);
    },
    timeout,
  );
});
