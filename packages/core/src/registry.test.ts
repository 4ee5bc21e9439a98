import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as z from 'zod';
import { composePlanV2 } from './composition/compose-plan.js';
import { composeRotationV2 } from './composition/compose-rotation.js';
import { registeredErrorCode } from './errors/keyward-error.js';
import { parseInstanceSpec } from './instance-spec.js';
import { discoverPlugins, pluginKeyword } from './plugin-discovery.js';
import { REDACTED, redact, SecretRedactor } from './redaction.js';
import { ProviderRegistry } from './registry.js';
import type { DeploymentPlanV1 } from './spec/v1/deployment-plan-v1.js';
import type {
  InstanceDetailV1,
  SidecarRotationRequestV1,
  TargetProviderV1,
} from './spec/v1/target-provider-v1.js';
import { createMemoryTargetProvider } from './testing/memory-target-provider.js';
import { createMockSidecarProvider } from './testing/mock-sidecar-provider.js';

function writePackage(root: string, name: string, manifest: Record<string, unknown>, source: string): void {
  const directory = join(root, 'node_modules', ...name.split('/'));
  mkdirSync(directory, { recursive: true });
  writeFileSync(
    join(directory, 'package.json'),
    JSON.stringify({ name, type: 'module', main: 'index.js', ...manifest }),
  );
  writeFileSync(join(directory, 'index.js'), source);
}

// A real module on disk, imported through the real import(), so discovery is exercised end to end.
function fixtureProject(): string {
  const root = mkdtempSync(join(tmpdir(), 'keyward-plugins-'));
  writePackage(
    root,
    '@acme/keyward-sidecar-echo',
    { keywords: [pluginKeyword] },
    // Plain JavaScript, as an installed (built) plugin would be; a tiny schema stands in for zod.
    `const configSchema = { safeParse: (value) => ({ success: true, data: value ?? {} }), parse: (value) => value ?? {} };
     export const keywardPlugin = {
       specificationVersion: 'v1',
       name: '@acme/keyward-sidecar-echo',
       sidecars: [{
         specificationVersion: 'v1', id: 'echo', configSchema, capabilities: { networkModes: ['proxy-only'] },
         contribute: () => ({ containers: [], secrets: [], files: [], agentEnv: {}, metadata: {} }),
         redactConfig: () => ({}),
       }],
     };`,
  );
  writePackage(root, 'keyward-broken', { keywords: [pluginKeyword] }, `throw new Error('boom at import');`);
  writePackage(
    root,
    'keyward-future',
    { keywords: [pluginKeyword] },
    `export default { specificationVersion: 'v9', name: 'keyward-future' };`,
  );
  writePackage(root, 'unrelated', { keywords: ['other'] }, `throw new Error('must never be imported');`);
  writePackage(
    root,
    'keyward-config-only',
    {},
    `export default { specificationVersion: 'v1', name: 'keyward-config-only', sidecars: [{ specificationVersion: 'v9', id: 'old' }] };`,
  );
  writeFileSync(
    join(root, 'local-plugin.js'),
    `export default { specificationVersion: 'v1', name: 'local', sidecars: [] };`,
  );
  writeFileSync(
    join(root, 'keyward.config.json'),
    JSON.stringify({ plugins: ['keyward-config-only', './local-plugin.js', 'not-installed'] }),
  );
  return root;
}

describe('ProviderRegistry', () => {
  it('registers providers by id and refuses duplicates and unknown spec versions', () => {
    const registry = new ProviderRegistry();
    registry
      .registerSidecar(createMockSidecarProvider({ id: 'a' }))
      .registerTarget(createMemoryTargetProvider());
    expect(registry.requireSidecar('a').id).toBe('a');
    expect(registry.requireTarget('memory').id).toBe('memory');
    expect(() => registry.registerSidecar(createMockSidecarProvider({ id: 'a' }))).toThrow(
      /already registered/,
    );
    expect(() =>
      registry.registerSidecar({ ...createMockSidecarProvider({ id: 'b' }), specificationVersion: 'v9' }),
    ).toThrow(expect.objectContaining({ code: 'UNSUPPORTED_SPEC_VERSION' }));
    expect(() =>
      registry.registerTarget({ ...createMemoryTargetProvider({ id: 'old' }), specificationVersion: 'v9' }),
    ).toThrow(expect.objectContaining({ code: 'UNSUPPORTED_SPEC_VERSION' }));
    expect(() => registry.requireSidecar('zzz')).toThrow(
      expect.objectContaining({ code: 'UNKNOWN_PROVIDER' }),
    );
    expect(() => registry.registerTarget({ specificationVersion: 'v2', id: 'half', detect() {} })).toThrow(
      /no apply\(\)/,
    );
  });
});

describe('ProviderRegistry and provider-owned codes and patterns', () => {
  it('registers the error codes and redaction patterns a sidecar declares, and refuses a code that is taken', () => {
    const registry = new ProviderRegistry();
    registry.registerSidecar({
      ...createMockSidecarProvider({ id: 'owner' }),
      errorCodes: { OWNER_KEY_LOST: { httpStatus: 409, description: 'The key is gone.' } },
      redactionPatterns: [/^OWNER_SECRET_/],
    });
    expect(registeredErrorCode('OWNER_KEY_LOST')).toMatchObject({ owner: 'owner', httpStatus: 409 });
    expect(redact({ OWNER_SECRET_X: 'value-123456' }, new SecretRedactor())).toEqual({
      OWNER_SECRET_X: REDACTED,
    });
    expect(() =>
      registry.registerSidecar({
        ...createMockSidecarProvider({ id: 'thief' }),
        errorCodes: { OWNER_KEY_LOST: { httpStatus: 400, description: 'mine now' } },
      }),
    ).toThrow(/already registered by "owner"/);
    expect(registry.getSidecar('thief')).toBeUndefined();
    expect(() =>
      registry.registerSidecar({
        ...createMockSidecarProvider({ id: 'core-squatter' }),
        errorCodes: { INSTANCE_NOT_FOUND: { httpStatus: 404, description: 'ours' } },
      }),
    ).toThrow(/keyward's own/);
  });

  it('loads a v1 sidecar through the adapter: agent addresses, connections to its ports, the same secrets', async () => {
    const registry = new ProviderRegistry();
    const v1 = {
      specificationVersion: 'v1' as const,
      id: 'legacy',
      configSchema: z.object({}).strict(),
      capabilities: { networkModes: ['proxy-only', 'open'] as const },
      contribute: (context: { addressOf(container: string, port: number): string }) => ({
        containers: [
          {
            name: 'legacy',
            image: 'localhost/legacy:1',
            ports: [{ name: 'http', containerPort: 4500, publish: false }],
            egress: 'internet' as const,
          },
        ],
        secrets: [
          {
            name: 'legacy-token',
            value: 'agent-safe-token-1',
            visibleTo: ['agent'],
            agentSafe: true,
            delivery: { type: 'env' as const, variable: 'LEGACY_TOKEN' },
          },
        ],
        files: [],
        agentEnv: { LEGACY_URL: context.addressOf('legacy', 4500) },
        metadata: {},
      }),
      redactConfig: () => ({}),
    };
    registry.registerSidecar(v1).registerTarget(createMemoryTargetProvider());
    const adapted = registry.requireSidecar('legacy');
    expect(adapted.specificationVersion).toBe('v2');
    const plan = await composePlanV2({
      spec: parseInstanceSpec({
        name: 'legacy-plan',
        target: 'memory',
        agent: { image: 'localhost/agent:1', port: 18789 },
        sidecars: { legacy: {} },
      }),
      sidecars: registry,
      target: registry.requireTarget('memory'),
    });
    expect(plan.containers[0]?.env['LEGACY_URL']).toBe('http://legacy-plan-legacy.memory.invalid:4500');
    expect(plan.connections).toEqual([{ from: 'agent', to: 'legacy', port: 4500 }]);
    expect(plan.containers[1]?.egress).toEqual({ type: 'internet' });
    expect(plan.containers[1]?.ports).toEqual([{ name: 'http', containerPort: 4500 }]);
    expect(plan.containers[0]?.secretMounts).toEqual([
      { secret: 'legacy-token', delivery: { type: 'env', variable: 'LEGACY_TOKEN' } },
    ]);
  });
});

describe('a v1 target through the adapter', () => {
  // A v1 target that records what it is given, standing in for a third-party v1 target plugin.
  function recordingTargetV1() {
    const applied: DeploymentPlanV1[] = [];
    const rotations: SidecarRotationRequestV1[] = [];
    const detail = (plan: DeploymentPlanV1): InstanceDetailV1 => ({
      name: plan.instance.name,
      target: 'legacy-target',
      state: 'running',
      networkMode: plan.network.mode,
      containers: [],
      redactedSpec: plan.redactedSpec,
      sidecars: plan.sidecars.map((sidecar) => ({
        providerId: sidecar.providerId,
        metadata: sidecar.metadata,
      })),
    });
    const target: TargetProviderV1 = {
      specificationVersion: 'v1',
      id: 'legacy-target',
      capabilities: {
        networkModes: ['proxy-only', 'open'],
        rotation: true,
        render: false,
        verify: false,
        logsFollow: false,
      },
      detect: async () => ({ available: true, strategy: 'recording' }),
      apply: async (plan) => {
        applied.push(plan);
        return detail(plan);
      },
      list: async () => [],
      get: async () => detail(applied.at(-1) as DeploymentPlanV1),
      start: async () => undefined,
      stop: async () => undefined,
      restart: async () => undefined,
      logs: () => (async function* () {})(),
      delete: async () => undefined,
      readSidecarState: async () => ({ metadata: { port: 4100 }, secrets: {} }),
      rotateSecrets: async (_name, request) => {
        rotations.push(request);
        return detail(applied.at(-1) as DeploymentPlanV1);
      },
    };
    return { target, applied, rotations };
  }

  it('runs v2 plans with the names, networks and published port v1 computed', async () => {
    const { target, applied, rotations } = recordingTargetV1();
    const registry = new ProviderRegistry()
      .registerTarget(target)
      .registerSidecar(createMockSidecarProvider());
    const adapted = registry.requireTarget('legacy-target');
    expect(adapted.specificationVersion).toBe('v2');
    const spec = parseInstanceSpec({
      name: 'old-style',
      target: 'legacy-target',
      agent: { image: 'localhost/agent:1', port: 18789, skillsDirectory: '/skills' },
      network: { hostPort: 8080 },
      sidecars: { mock: {} },
    });
    const plan = await composePlanV2({ spec, sidecars: registry, target: adapted });
    expect(plan.containers[0]?.env['MOCK_URL']).toBe('http://mock:4100');
    const detail = await adapted.apply(plan);
    expect(detail.sidecars[0]?.exports).toEqual({});
    const received = applied[0];
    expect(received?.specificationVersion).toBe('v1');
    expect(received?.containers.map((container) => [container.runtimeName, container.egress])).toEqual([
      ['keyward-old-style-agent', 'none'],
      ['keyward-old-style-mock', 'internet'],
    ]);
    expect(received?.network).toEqual({
      mode: 'proxy-only',
      internalNetwork: 'keyward-old-style-internal',
      egressNetwork: 'keyward-old-style-egress',
    });
    expect(received?.publish).toEqual([
      { container: 'agent', containerPort: 18789, hostPort: 8080, hostAddress: '127.0.0.1' },
    ]);
    const request = await composeRotationV2({
      spec: parseInstanceSpec(plan.redactedSpec),
      providerId: 'mock',
      change: {},
      sidecars: registry,
      target: adapted,
      readState: (id) =>
        (adapted.readSidecarState as NonNullable<typeof adapted.readSidecarState>)('old-style', id),
    });
    await adapted.rotateSecrets?.('old-style', request);
    expect(rotations[0]?.containers[0]?.runtimeName).toBe('keyward-old-style-mock');
  });
});

describe('discoverPlugins', () => {
  it('finds plugins by keyword and by config file; a broken plugin is reported, not fatal', async () => {
    const root = fixtureProject();
    const registry = new ProviderRegistry();
    const result = await discoverPlugins({
      registry,
      nodeModulesDirectories: [join(root, 'node_modules')],
      configFile: join(root, 'keyward.config.json'),
    });
    expect(result.errors.find((error) => error.source.includes('echo'))).toBeUndefined();
    expect(registry.getSidecar('echo')?.id).toBe('echo');
    expect(result.loaded.map((plugin) => plugin.name).sort()).toEqual([
      '@acme/keyward-sidecar-echo',
      'keyward-config-only',
      'local',
    ]);
    const bySource = Object.fromEntries(result.errors.map((error) => [error.source, error]));
    expect(bySource['keyward-broken']).toMatchObject({
      code: 'PLUGIN_LOAD_FAILED',
      message: expect.stringContaining('boom at import'),
    });
    expect(bySource['keyward-future']).toMatchObject({ code: 'UNSUPPORTED_SPEC_VERSION' });
    expect(bySource['keyward-config-only']).toMatchObject({ code: 'UNSUPPORTED_SPEC_VERSION' });
    expect(bySource['not-installed']).toMatchObject({
      message: expect.stringContaining(`npm install --prefix ${root} not-installed`),
    });
    expect(bySource['unrelated']).toBeUndefined();
  });

  it('reports an unreadable config file and carries on', async () => {
    const root = mkdtempSync(join(tmpdir(), 'keyward-plugins-'));
    writeFileSync(join(root, 'keyward.config.json'), '{ not json');
    const result = await discoverPlugins({
      registry: new ProviderRegistry(),
      nodeModulesDirectories: [],
      configFile: join(root, 'keyward.config.json'),
    });
    expect(result.errors).toHaveLength(1);
    expect(result.errors[0]?.message).toMatch(/Could not read plugin config/);
  });
});
