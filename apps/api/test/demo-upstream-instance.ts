// An instance whose tokenizer holds one credential (`demo`) bound to the demo upstream, and the
// agent's request through the proxy to it, for the podman fault tests of the API.
import { imageDefinitions, imageReference } from '@keyward/images';
import { type DemoUpstream, demoUpstreamHost, demoUpstreamPort } from '@keyward/provider-local/testing';

export const demoUpstreamAddress = `${demoUpstreamHost}:${demoUpstreamPort}`;

/** The deploy body: the stand-in agent, the tokenizer with credential `demo` for the demo upstream. */
export function demoUpstreamInstanceSpec(name: string, secret: string, caCertificatePem: string) {
  return {
    name,
    target: 'local',
    agent: {
      image: imageReference(imageDefinitions.agentStandIn),
      port: 18789,
      skillsDirectory: '/home/node/skills',
    },
    sidecars: {
      tokenizer: {
        credentials: [{ name: 'demo', secret, allowedHosts: [demoUpstreamAddress] }],
        upstreamCaCertificates: caCertificatePem,
        // The demo upstream lives on a private container network.
        allowPrivateUpstreams: true,
      },
    },
  };
}

/**
 * One request of the agent through the proxy with its sealed `demo` credential (the tokenizer's
 * self-test `proxied-request-injected`, run inside the agent), and the Authorization header the
 * upstream got.
 */
export async function agentProxiedRequest(
  call: (method: string, path: string, body?: unknown) => Promise<Response>,
  upstream: DemoUpstream,
  name: string,
): Promise<{ passed: boolean; evidence: string; authorization?: string }> {
  await upstream.clear();
  const response = await call('POST', `/api/instances/${name}/verify`, {
    options: { tokenizer: { allowedUrl: `https://${demoUpstreamAddress}/v1/verify`, credential: 'demo' } },
  });
  const report = (await response.json()) as {
    checks?: { name: string; passed: boolean; evidence: string }[];
  };
  const check = report.checks?.find((candidate) => candidate.name === 'proxied-request-injected');
  if (!check) throw new Error(`no proxied-request-injected check: ${JSON.stringify(report)}`);
  const authorization = (await upstream.received()).at(-1)?.headers['authorization'];
  return { passed: check.passed, evidence: check.evidence, ...(authorization ? { authorization } : {}) };
}
