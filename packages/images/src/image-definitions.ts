import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ImageDefinition, PrebuiltImageDefinition } from './image-definition.js';

// Entries are the programs' sources in a checkout (run from `src` with the `dev-source`
// condition, no build needed) and their built `dist` files in an npm install, which has no
// `src`. Find this package's root whether we run from src, dist or a bundled script.
function findPackageRoot(): string {
  let directory = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(directory, 'package.json');
    if (existsSync(manifest) && JSON.parse(readFileSync(manifest, 'utf8')).name === '@keyward/images') {
      return directory;
    }
    const parent = dirname(directory);
    if (parent === directory) break;
    directory = parent;
  }
  // Bundled into another package's script: resolve through node_modules instead.
  try {
    return dirname(createRequire(import.meta.url).resolve('@keyward/images/package.json'));
  } catch {
    throw new Error('Cannot find the @keyward/images package root (its programs are needed to build images)');
  }
}

const packageRoot = findPackageRoot();
/** The checkout this package lives in: prebuilt images' build scripts are under its `scripts/images`. */
export const repositoryRoot = join(packageRoot, '..', '..');

/** `src/<path>.ts` when the package has its sources (a checkout), else the built `dist/<path>.js`. */
function programEntry(root: string, path: string): string {
  const source = join(root, 'src', `${path}.ts`);
  return existsSync(source) ? source : join(root, 'dist', `${path}.js`);
}

const programPath = (name: string) => programEntry(packageRoot, join('programs', name));

// The tokenizer's CLI lives in its own package (a dependency of this one); this package only
// bundles it, from wherever node_modules resolves it.
function tokenizerCliPath(): string {
  const require = createRequire(join(packageRoot, 'package.json'));
  let root: string;
  try {
    root = dirname(require.resolve('@keyward/tokenizer/package.json'));
  } catch {
    throw new Error(
      'Cannot find @keyward/tokenizer next to @keyward/images; reinstall keyward (npm install -g @keyward/api).',
    );
  }
  return programEntry(root, 'cli');
}

/** Non-root uid used by every keyward image (the "nonroot" convention of distroless images). */
export const nonRootUser = '65532:65532';

export const tokenizerImage: ImageDefinition = {
  name: 'keyward-tokenizer',
  tag: '0.1.0',
  description: "keyward's credential-injecting proxy (`keyward-tokenizer serve`), configured from env.",
  entry: tokenizerCliPath(),
  args: ['serve'],
  user: nonRootUser,
  exposedPorts: [4001],
  env: {
    LISTEN_ADDRESS: '0.0.0.0:4001',
    // A larger young generation: with the default (16 MiB) short-lived request objects get
    // promoted under load and old-space collections double the proxy's p99 latency.
    NODE_OPTIONS: '--max-semi-space-size=64',
  },
};

/**
 * A STAND-IN for a real agent image (OpenClaw cannot be pulled here): it offers only
 * the interface a deployer relies on — a port (18789) and a health path (/health) —
 * and keeps `node` in the image so self-tests can `exec` a Node script inside it.
 */
export const agentStandInImage: ImageDefinition = {
  name: 'keyward-agent-standin',
  tag: '0.1.0',
  description: 'Stand-in agent: HTTP on 18789 with /health, node available for exec.',
  entry: programPath('agent-standin'),
  args: [],
  user: nonRootUser,
  exposedPorts: [18789],
  env: { PORT: '18789' },
};

/** A small HTTPS API for demos and tests: 200 only with the right bearer token; records what it got. */
export const demoUpstreamImage: ImageDefinition = {
  name: 'keyward-demo-upstream',
  // 0.2.0: also answers OpenAI-style chat completions and model lists (the LiteLLM chain).
  tag: '0.2.0',
  description:
    'Demo HTTPS upstream: checks a bearer token, records received headers on an admin port; answers OpenAI-style chat completions.',
  entry: programPath('demo-upstream'),
  args: [],
  user: nonRootUser,
  exposedPorts: [8443, 9090],
  env: { LISTEN_PORT: '8443', ADMIN_PORT: '9090' },
};

/**
 * keyward's own network helper: publishes the agent's port in `proxy-only` mode
 * (containers on an internal network cannot publish ports on podman, so this helper
 * sits on both networks and forwards TCP to the agent) and holds the shared network
 * namespace in `open` mode (like a pod's infra container).
 */
export const networkHelperImage: ImageDefinition = {
  name: 'keyward-network-helper',
  tag: '0.2.0',
  description:
    'Port forwarder, TCP/unix-socket relay and network namespace holder used by @keyward/provider-local.',
  entry: programPath('network-helper'),
  args: [],
  user: nonRootUser,
  exposedPorts: [],
  env: {},
};

export const imageDefinitions = {
  tokenizer: tokenizerImage,
  agentStandIn: agentStandInImage,
  demoUpstream: demoUpstreamImage,
  networkHelper: networkHelperImage,
} as const satisfies Record<string, ImageDefinition>;

/**
 * The real OpenTelemetry Collector, built from Go modules by the collector builder
 * (`packages/images/otel-collector/builder-config.yaml`): OTLP receiver (gRPC 4317, HTTP
 * 4318), batch processor, debug, file, OTLP gRPC and OTLP HTTP exporters. Static binary,
 * `FROM scratch`.
 */
export const otelCollectorImage: PrebuiltImageDefinition = {
  kind: 'prebuilt',
  name: 'keyward-otel-collector',
  tag: '0.165.0',
  description:
    'OpenTelemetry Collector (OTLP in; batch; debug, file, OTLP out) built with the collector builder.',
  buildScript: 'scripts/images/build-otel-collector.sh',
  user: nonRootUser,
  exposedPorts: [4317, 4318],
};

/**
 * The real LiteLLM proxy from PyPI, pinned by version and hash
 * (`packages/images/litellm/requirements.txt`), with the OpenTelemetry SDK and OTLP/HTTP
 * exporter its `otel` callback needs, in a venv on a Debian bookworm base made with
 * debootstrap (no registry). `litellm --config …` on port 4000. The tag names LiteLLM's
 * version and the SDK's, as `scripts/images/build-litellm.sh` does for its cache.
 */
export const litellmImage: PrebuiltImageDefinition = {
  kind: 'prebuilt',
  name: 'keyward-litellm',
  tag: '1.108.7-otel1.45.1',
  description:
    'LiteLLM proxy from PyPI (hash-pinned) with the OpenTelemetry SDK, on a debootstrapped Debian bookworm.',
  buildScript: 'scripts/images/build-litellm.sh',
  user: nonRootUser,
  exposedPorts: [4000],
};

/**
 * Images whose programs are built by scripts (minutes when cold), kept apart from
 * `imageDefinitions` so suites that build every node image do not pay for them.
 */
export const prebuiltImageDefinitions = {
  otelCollector: otelCollectorImage,
  litellm: litellmImage,
} as const satisfies Record<string, PrebuiltImageDefinition>;
