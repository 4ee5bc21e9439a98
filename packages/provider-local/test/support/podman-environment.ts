// Shared set-up for this package's integration tests on top of
// `@keyward/provider-local/testing` (runtime, demo upstream): the locally built images,
// the upstream's throwaway certificates and tokenizer plans.
import { composePlan, type DeploymentPlanV1, parseInstanceSpec } from '@keyward/core';
import { buildImage, imageDefinitions, imageReference } from '@keyward/images';
import { createTokenizerProvider } from '@keyward/provider-tokenizer';
import { createThrowawayCertificates, type ThrowawayCertificates } from '@keyward/tokenizer/certificates';
import type Docker from 'dockerode';
import { demoUpstreamHost } from '../../src/testing/index.js';

export async function ensureImages(docker: Docker): Promise<void> {
  for (const definition of Object.values(imageDefinitions)) await buildImage(docker, definition);
}

export const demoUpstreamImage = imageReference(imageDefinitions.demoUpstream);

/** A throwaway CA and the demo upstream's server certificate (for api.demo.test). */
export function createUpstreamCertificates(): ThrowawayCertificates {
  return createThrowawayCertificates({ dnsNames: [demoUpstreamHost], validDays: 2 });
}

export interface TestCredential {
  name: string;
  secret: string;
  allowedHosts: string[];
}

export const tokenizerProvider = createTokenizerProvider();

export async function tokenizerPlan(options: {
  name: string;
  egress: 'proxy-only' | 'open';
  credentials: TestCredential[];
  caPem: string;
}): Promise<DeploymentPlanV1> {
  const spec = parseInstanceSpec({
    name: options.name,
    agent: { image: imageReference(imageDefinitions.agentStandIn), port: 18789, env: { AGENT_MODE: 'test' } },
    network: { egress: options.egress },
    sidecars: {
      tokenizer: {
        credentials: options.credentials,
        upstreamCaCertificates: options.caPem,
        // The demo upstream lives on a private container network.
        allowPrivateUpstreams: true,
      },
    },
  });
  return composePlan({
    spec,
    sidecars: { getSidecar: (id) => (id === 'tokenizer' ? tokenizerProvider : undefined) },
  });
}

/** A request through the tokenizer, made from INSIDE the agent container, using its own env. */
export const proxiedRequestScript = `
const http = require('node:http');
const key = process.env.CREDENTIAL_KEY;
const proxy = new URL(process.env.TOKENIZER_PROXY_URL);
const target = new URL(process.env.TARGET_URL);
const headers = { host: target.host };
if (key) {
  headers['proxy-tokenizer'] = process.env['TOKENIZER_CRED_' + key];
  if (process.env['TOKENIZER_AUTH_' + key]) headers['proxy-authorization'] = 'Bearer ' + process.env['TOKENIZER_AUTH_' + key];
}
const request = http.request({ host: proxy.hostname, port: proxy.port, path: target.href, headers }, (response) => {
  let body = '';
  response.on('data', (chunk) => { body += chunk; });
  response.on('end', () => console.log(JSON.stringify({ status: response.statusCode, body })));
});
request.on('error', (error) => console.log(JSON.stringify({ status: 0, body: error.code || error.message })));
request.end();
`;
