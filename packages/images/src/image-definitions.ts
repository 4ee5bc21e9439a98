import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ImageDefinition } from './image-definition.js';

// Entries are source files of this repository; find this package's root whether we
// run from src, dist or a bundled script.
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
    throw new Error(
      'Cannot find the @keyward/images package root (its program sources are needed to build images)',
    );
  }
}

const packageRoot = findPackageRoot();
const programPath = (file: string) => join(packageRoot, 'src', 'programs', file);

// The tokenizer's CLI lives in its own package; this package only bundles it.
const tokenizerCliPath = join(packageRoot, '..', 'tokenizer', 'src', 'cli.ts');

/** Non-root uid used by every keyward image (the "nonroot" convention of distroless images). */
export const nonRootUser = '65532:65532';

export const tokenizerImage: ImageDefinition = {
  name: 'keyward-tokenizer',
  tag: '0.1.0',
  description: "keyward's credential-injecting proxy (`keyward-tokenizer serve`), configured from env.",
  entry: tokenizerCliPath,
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
  entry: programPath('agent-standin.ts'),
  args: [],
  user: nonRootUser,
  exposedPorts: [18789],
  env: { PORT: '18789' },
};

/** A small HTTPS API for demos and tests: 200 only with the right bearer token; records what it got. */
export const demoUpstreamImage: ImageDefinition = {
  name: 'keyward-demo-upstream',
  tag: '0.1.0',
  description: 'Demo HTTPS upstream: checks a bearer token, records received headers on an admin port.',
  entry: programPath('demo-upstream.ts'),
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
  entry: programPath('network-helper.ts'),
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
