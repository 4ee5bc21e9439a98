import {
  composePlanV2,
  composeRotationV2,
  type InstanceSpec,
  isKeywardError,
  parseInstanceSpec,
  SecretRedactor,
  type SidecarRotationRequestV2,
  type SidecarStateV2,
} from '@keyward/core';
import { createMemoryTargetProvider, createSeededRandomBytes } from '@keyward/core/testing';
import * as fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { sanitizeCredentialName } from '../src/credential-names.js';
import { createTokenizerProvider } from '../src/index.js';
import { describeHeaderNameProblem } from '../src/tokenizer-config.js';
import { buildTokenizerView, type TokenizerCredentialView } from '../src/tokenizer-view.js';

// Properties of the credential change (`PUT /api/instances/:id/tokenizer`, `keyward creds`), through
// core's rotation composer as the API runs it, against an instance deployed on the in-memory target
// (a stand-in that runs nothing; the composition and sealing are the real ones): every valid change
// is accepted and the new credential list is what the change says (kept ones as sealed, new ones
// normalised), no raw secret in what is stored, and the view sent back as a keep-all change changes
// nothing; a change broken in one field is refused naming that field; anything at all ends in a
// KeywardError or a rotation, never another throw. CI: 800 cases (the default);
// `pnpm test:reliability` sets KEYWARD_PROPERTY_CASES=100000.
// Cases for the whole target (the change bodies), shared by its 4 properties.
const cases = Number(process.env['KEYWARD_PROPERTY_CASES'] ?? 800);
const runs = Math.ceil(cases / 4);
const settings = { numRuns: runs, endOnFailure: true } as const;
// Read by `pnpm test:reliability` from vitest's JSON report (scripts/reliability).
const recordCases = (task: { meta: object }) =>
  Object.assign(task.meta, { figures: [{ figure: 'fast-check cases', value: runs, unit: 'cases' }] });
// About 60 ms a case on a loaded 2-core VM (sealing is pure JavaScript), with room to spare.
const timeout = Math.max(60_000, runs * 150);

const provider = createTokenizerProvider();
const sidecars = { getSidecar: (id: string) => (id === provider.id ? provider : undefined) };
const target = createMemoryTargetProvider();
const instance = 'change-properties';

// What the instance holds before every change.
const deployed = [
  { name: 'github', secret: 'ghp_deployedGithubSecret0001', allowedHosts: ['api.github.com'] },
  {
    name: 'stripe',
    secret: 'sk_deployedStripeSecret00002',
    allowedHosts: ['api.stripe.com', 'files.stripe.com:8443'],
    headerDst: 'X-Api-Key',
    headerFmt: 'key=%s',
  },
  {
    name: 'openai',
    secret: 'sk-deployedOpenaiSecret00003',
    allowedHosts: ['api.openai.com'],
    processor: { type: 'oauth2' as const },
  },
];
let spec: InstanceSpec;

function compose(change: unknown, state?: { spec: InstanceSpec; sidecar: SidecarStateV2 }) {
  return composeRotationV2({
    spec: state?.spec ?? spec,
    providerId: provider.id,
    change,
    sidecars,
    target,
    readState: async (id) => state?.sidecar ?? target.readSidecarState(instance, id),
    randomBytes: createSeededRandomBytes(5),
    // A redactor per case: the process-wide one would collect every generated secret.
    redactor: new SecretRedactor(),
  });
}

/** The tokenizer's state after the rotation, as the target would hand it back. */
function stateAfter(request: SidecarRotationRequestV2): { spec: InstanceSpec; sidecar: SidecarStateV2 } {
  const part = request.parts[0]!;
  return {
    spec: parseInstanceSpec(request.redactedSpec),
    sidecar: {
      metadata: part.sidecar.metadata,
      exports: part.sidecar.exports,
      secrets: Object.fromEntries(part.secrets.map((secret) => [secret.name, secret.value])),
    },
  };
}

const credentialsOf = (request: SidecarRotationRequestV2) =>
  buildTokenizerView({ metadata: request.parts[0]!.sidecar.metadata }).credentials;

beforeAll(async () => {
  spec = parseInstanceSpec({
    name: instance,
    target: 'memory',
    agent: { image: 'localhost/agent:test', port: 18789, skillsDirectory: '/skills' },
    sidecars: { tokenizer: { credentials: deployed } },
  });
  const plan = await composePlanV2({ spec, sidecars, target, randomBytes: createSeededRandomBytes(3) });
  await target.apply(plan);
  spec = parseInstanceSpec(plan.redactedSpec);
});

// ---------------------------------------------------------------------------------------------
// Valid changes

const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,12}[a-z0-9])?$/);
const hostname = fc
  .tuple(fc.array(label, { minLength: 1, maxLength: 3 }), fc.constantFrom('com', 'example', 'io'))
  .map(([labels, top]) => [...labels, top].join('.'));
const host = fc
  .tuple(hostname, fc.option(fc.integer({ min: 1, max: 65535 }).filter((port) => port !== 443)))
  .map(([name, port]) => (port === null ? name : `${name}:${port}`));
// What users send: mixed case, stray spaces, duplicates, or the seed installer's "a.com, b.com".
const sentHosts = fc
  .array(fc.tuple(host, fc.boolean(), fc.boolean()), { minLength: 1, maxLength: 4 })
  .chain((hosts) => {
    const written = hosts.map(([name, upper, padded]) => {
      const cased = upper ? name.toUpperCase() : name;
      return padded ? `  ${cased} ` : cased;
    });
    return fc.constantFrom<string[] | string>(written, [...written, written[0]!], written.join(','));
  });

/** The hosts the proxy will compare against: trimmed, lower-cased, each once, in order. */
function normalisedHosts(sent: string[] | string): string[] {
  const list = typeof sent === 'string' ? sent.split(',') : sent;
  return [...new Set(list.map((item) => item.trim().toLowerCase()).filter((item) => item.length > 0))];
}

const headerName = fc
  .oneof(
    fc.constantFrom('Authorization', 'X-Api-Key', 'X-Auth-Token'),
    fc.stringMatching(/^X-[A-Za-z0-9-]{1,20}$/),
  )
  .filter((name) => describeHeaderNameProblem(name) === undefined);
const headerFormat = fc
  .tuple(fc.stringMatching(/^[A-Za-z =:_-]{0,12}$/), fc.stringMatching(/^[A-Za-z =:_-]{0,6}$/))
  .map(([before, after]) => `${before}%s${after}`);
// Long and random enough never to occur by chance inside a sealed token or a hostname.
const secret = fc.stringMatching(/^[A-Za-z0-9_.~+/-]{24,64}$/);
const credentialName = fc
  .string({ minLength: 1, maxLength: 40 })
  .filter((name) => !/\p{Cc}/u.test(name) && name.trim().length > 0);

const newCredential = fc.record(
  {
    name: credentialName,
    secret,
    allowedHosts: sentHosts,
    options: fc.oneof(
      fc.record({ headerDst: headerName, headerFmt: headerFormat }, { requiredKeys: [] }),
      fc.constantFrom({ processor: { type: 'oauth2' } }, { processor: { type: 'inject_body' } }),
    ),
  },
  { requiredKeys: ['name', 'secret', 'allowedHosts', 'options'] },
);

const keptCredential = fc.record({
  from: fc.constantFrom(...deployed),
  secretField: fc.constantFrom<'empty' | 'absent'>('empty', 'absent'),
  withHosts: fc.boolean(),
});

type NewCredential = typeof newCredential extends fc.Arbitrary<infer T> ? T : never;
type KeptCredential = typeof keptCredential extends fc.Arbitrary<infer T> ? T : never;
type Entry = { kind: 'new'; credential: NewCredential } | { kind: 'kept'; credential: KeptCredential };

const entryName = (entry: Entry) =>
  entry.kind === 'new' ? entry.credential.name : entry.credential.from.name;

const validEntries = fc.uniqueArray(
  fc.oneof(
    newCredential.map((credential): Entry => ({ kind: 'new', credential })),
    keptCredential.map((credential): Entry => ({ kind: 'kept', credential })),
  ),
  // Names must differ once turned into TOKENIZER_CRED_<NAME>.
  { maxLength: 5, selector: (entry) => sanitizeCredentialName(entryName(entry)) },
);

function bodyOf(entry: Entry): Record<string, unknown> {
  if (entry.kind === 'new') {
    const { options, ...fields } = entry.credential;
    return { ...fields, ...options };
  }
  const { from, secretField, withHosts } = entry.credential;
  return {
    name: from.name,
    ...(secretField === 'empty' ? { secret: '' } : {}),
    ...(withHosts ? { allowedHosts: [...from.allowedHosts].reverse() } : {}),
  };
}

/** What the view must list after the change: kept credentials as sealed, new ones as sent, normalised. */
function expectedView(entry: Entry): TokenizerCredentialView {
  if (entry.kind === 'kept') {
    const { from } = entry.credential;
    return {
      name: from.name,
      allowedHosts: from.allowedHosts,
      ...(from.headerDst ? { headerDst: from.headerDst } : {}),
      ...(from.headerFmt ? { headerFmt: from.headerFmt } : {}),
    };
  }
  const { name, allowedHosts, options } = entry.credential;
  return {
    name,
    allowedHosts: normalisedHosts(allowedHosts),
    ...('headerDst' in options && options.headerDst ? { headerDst: options.headerDst } : {}),
    ...('headerFmt' in options && options.headerFmt ? { headerFmt: options.headerFmt } : {}),
  };
}

/** The view's own header options that the change did not name (defaults sealed in) are not compared. */
function comparable(
  view: TokenizerCredentialView,
  expected: TokenizerCredentialView,
): TokenizerCredentialView {
  return {
    name: view.name,
    allowedHosts: view.allowedHosts,
    ...(expected.headerDst ? { headerDst: view.headerDst } : {}),
    ...(expected.headerFmt ? { headerFmt: view.headerFmt } : {}),
  } as TokenizerCredentialView;
}

// ---------------------------------------------------------------------------------------------
// Broken changes: one field of one new credential, and the field the refusal must name

interface Breakage {
  /** The field, relative to the broken credential (`name`, `allowedHosts.0`), or a whole path. */
  field: string;
  apply(credential: Record<string, unknown>): void;
}

const breakages: fc.Arbitrary<Breakage> = fc.oneof(
  fc.constantFrom<unknown>('', 'x'.repeat(129), 'line\nbreak', '   ', 42).map((value) => ({
    field: 'name',
    apply: (credential: Record<string, unknown>) => {
      credential['name'] = value;
    },
  })),
  fc.constantFrom<unknown>([], ' , ', 7).map((value) => ({
    field: 'allowedHosts',
    apply: (credential: Record<string, unknown>) => {
      credential['allowedHosts'] = value;
    },
  })),
  fc
    .constantFrom(
      'https://api.example.com',
      'api.example.com:443',
      'bad host',
      '*.example.com',
      'user@api.example.com',
      '[::1]',
      'api.example.com/v1',
    )
    .map((value) => ({
      field: 'allowedHosts.0',
      apply: (credential: Record<string, unknown>) => {
        credential['allowedHosts'] = [value];
      },
    })),
  fc.constant({
    field: 'allowedHosts',
    apply: (credential: Record<string, unknown>) => {
      delete credential['allowedHosts'];
    },
  }),
  fc.constantFrom('Host', 'Bad Header', 'Proxy-Authorization', '').map((value) => ({
    field: 'headerDst',
    apply: (credential: Record<string, unknown>) => {
      delete credential['processor'];
      credential['headerDst'] = value;
    },
  })),
  fc.constantFrom('no placeholder', '%s and %s', 'Bearer %d', 'two\nlines %s').map((value) => ({
    field: 'headerFmt',
    apply: (credential: Record<string, unknown>) => {
      delete credential['processor'];
      credential['headerFmt'] = value;
    },
  })),
  fc.constantFrom<unknown>('line\nbreak', 'nul\0byte', 12, 'x'.repeat(65_537)).map((value) => ({
    field: 'secret',
    apply: (credential: Record<string, unknown>) => {
      delete credential['processor'];
      credential['secret'] = value;
    },
  })),
  fc.constantFrom<unknown>({ type: 'nope' }, 'oauth2', { type: 'sigv4' }).map((value) => ({
    field: 'processor',
    apply: (credential: Record<string, unknown>) => {
      delete credential['headerDst'];
      delete credential['headerFmt'];
      credential['processor'] = value;
    },
  })),
  fc.stringMatching(/^x[a-z]{1,8}$/).map((key) => ({
    // Unknown fields are named by the credential that holds them.
    field: '',
    apply: (credential: Record<string, unknown>) => {
      credential[key] = true;
    },
  })),
);

describe('credential change properties', () => {
  it(
    `accepts every valid change: the list it says, no raw secret stored, and its view sent back changes nothing (${runs} cases)`,
    async ({ task }) => {
      await fc.assert(
        fc.asyncProperty(validEntries, async (entries) => {
          const change = { credentials: entries.map(bodyOf) };
          const request = await compose(change);
          const expected = entries.map(expectedView);
          const listed = credentialsOf(request);
          expect(listed.map((view, index) => comparable(view, expected[index]!))).toEqual(expected);
          const saved = (
            request.redactedSpec['sidecars'] as { tokenizer: { credentials: { name: string }[] } }
          ).tokenizer.credentials;
          expect(saved.map((credential) => credential.name)).toEqual(expected.map((view) => view.name));

          // No raw secret of the change in what the target stores or the agent sees in plain form.
          const part = request.parts[0]!;
          const stored = JSON.stringify([
            request.redactedSpec,
            part.sidecar,
            part.agentEnv,
            part.agentFiles,
            part.containers,
          ]);
          const sealed = part.secrets.map((item) => item.value).join('\n');
          for (const entry of entries) {
            if (entry.kind !== 'new') continue;
            expect(stored.includes(entry.credential.secret)).toBe(false);
            expect(sealed.includes(entry.credential.secret)).toBe(false);
          }

          // The seed installer's round trip: GET the list, PUT it back with every secret "".
          const keepAll = {
            credentials: listed.map((view) => ({ ...view, secret: '' })),
          };
          const again = await compose(keepAll, stateAfter(request));
          expect(credentialsOf(again)).toEqual(listed);
        }),
        settings,
      );
      recordCases(task);
    },
    timeout,
  );

  it(
    `refuses a change broken in one field of one credential with INVALID_INPUT naming that field (${runs} cases)`,
    async ({ task }) => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(newCredential, { minLength: 1, maxLength: 3 }),
          fc.nat(),
          breakages,
          async (credentials, pick, breakage) => {
            // Distinct names, so the only problem is the one put in.
            const bodies = credentials.map((credential, index) =>
              bodyOf({ kind: 'new', credential: { ...credential, name: `credential-${index}` } }),
            );
            const index = pick % bodies.length;
            breakage.apply(bodies[index]!);
            const error = await compose({ credentials: bodies }).then(
              () => undefined,
              (thrown: unknown) => thrown,
            );
            if (!isKeywardError(error, 'INVALID_INPUT'))
              throw error ?? new Error('the broken change was accepted');
            const field = breakage.field ? `credentials.${index}.${breakage.field}` : `credentials.${index}`;
            const problems = error.details?.['problems'] as string[];
            expect(
              problems.some((problem) => problem.startsWith(`${field}: `) || problem.startsWith(`${field}.`)),
              `${field} not named in ${JSON.stringify(problems)}`,
            ).toBe(true);
            expect(error.message).toContain(field);
          },
        ),
        settings,
      );
      recordCases(task);
    },
    timeout,
  );

  it(
    `refuses keeping a credential the instance does not have, naming it (${runs} cases)`,
    async ({ task }) => {
      await fc.assert(
        fc.asyncProperty(
          credentialName.filter(
            (name) =>
              !deployed.some((item) => sanitizeCredentialName(item.name) === sanitizeCredentialName(name)),
          ),
          async (name) => {
            const error = await compose({ credentials: [{ name, secret: '' }] }).then(
              () => undefined,
              (thrown: unknown) => thrown,
            );
            if (!isKeywardError(error, 'INVALID_INPUT'))
              throw error ?? new Error('an unknown credential was kept');
            expect(error.details).toEqual({ credential: name });
            expect(error.message).toContain(`Credential "${name}" has an empty secret, which means "keep"`);
          },
        ),
        settings,
      );
      recordCases(task);
    },
    timeout,
  );

  it(
    `answers anything with a rotation or a KeywardError, never another error (${runs} cases)`,
    async ({ task }) => {
      const anything = fc.oneof(
        fc.anything({ withNullPrototype: true }),
        fc.record({ credentials: fc.anything() }),
        fc.record({
          credentials: fc.array(
            fc.record(
              {
                name: fc.anything(),
                secret: fc.anything(),
                allowedHosts: fc.anything(),
                headerDst: fc.anything(),
                headerFmt: fc.anything(),
                processor: fc.oneof(fc.anything(), fc.record({ type: fc.string() })),
              },
              { requiredKeys: [] },
            ),
            { maxLength: 4 },
          ),
        }),
      );
      await fc.assert(
        fc.asyncProperty(anything, async (change) => {
          await compose(change).catch((error: unknown) => {
            if (!isKeywardError(error)) throw error;
            expect(error.message.length).toBeGreaterThan(0);
          });
        }),
        settings,
      );
      recordCases(task);
    },
    timeout,
  );
});
