import type { VerifyCheckV2 } from '@keyward/core';

/**
 * Runs inside the agent (with `node`, on stdin): lists the gateway's models with the agent's
 * virtual key, read from the agent's own environment (never passed in argv).
 */
export function gatewaySelfTestScript(baseUrl: string, apiKeyVariable: string): string {
  return `
const baseUrl = ${JSON.stringify(baseUrl)};
const key = process.env[${JSON.stringify(apiKeyVariable)}] || '';
const controller = new AbortController();
setTimeout(() => controller.abort(), 10000).unref();
fetch(baseUrl + '/v1/models', { headers: { authorization: 'Bearer ' + key }, signal: controller.signal })
  .then(async (response) => {
    let models = [];
    try { models = ((await response.json()).data || []).map((item) => item.id); } catch {}
    console.log(JSON.stringify({ status: response.status, models }));
  })
  .catch((error) => { console.log(JSON.stringify({ error: String(error && (error.cause?.code || error.name || error)) })); });
`;
}

export function gatewayChecks(options: {
  baseUrl: string;
  apiKeyVariable: string;
  models: string[];
}): VerifyCheckV2[] {
  const target = `${options.baseUrl}/v1/models`;
  return [
    {
      name: 'gateway-serves-models',
      description:
        'The agent reaches the LLM gateway with its virtual key, and the gateway lists the configured models.',
      exec: {
        container: 'agent',
        command: ['node', '-'],
        stdin: gatewaySelfTestScript(options.baseUrl, options.apiKeyVariable),
        timeoutSeconds: 20,
      },
      judge: (result) => {
        if (result.exitCode !== 0 || result.timedOut) {
          return {
            passed: false,
            evidence: `the self-test did not run (exit ${result.exitCode}${result.timedOut ? ', timed out' : ''})`,
          };
        }
        let outcome: { status?: number; models?: string[]; error?: string };
        try {
          outcome = JSON.parse(result.stdout.trim().split('\n').at(-1) ?? '');
        } catch {
          return { passed: false, evidence: 'the self-test printed no result' };
        }
        if (outcome.status === undefined)
          return { passed: false, evidence: `GET ${target} failed: ${outcome.error}` };
        const missing = options.models.filter((model) => !(outcome.models ?? []).includes(model));
        return {
          passed: outcome.status === 200 && missing.length === 0,
          evidence: `GET ${target} → ${outcome.status}${outcome.status === 200 ? `, models: ${(outcome.models ?? []).join(', ') || 'none'}` : ''}${missing.length > 0 ? `; missing: ${missing.join(', ')}` : ''}`,
        };
      },
    },
  ];
}
