import type { VerifyCheckV2 } from '@keyward/core';

/**
 * Runs inside the agent (with `node`, on stdin): sends one span as OTLP/HTTP JSON to the
 * collector and prints what came back. A collector that accepts it answers 200.
 */
export function telemetrySelfTestScript(endpoint: string): string {
  return `
const endpoint = ${JSON.stringify(endpoint)};
const random = (bytes) => Array.from({ length: bytes }, () => Math.floor(Math.random() * 256).toString(16).padStart(2, '0')).join('');
const now = BigInt(Date.now()) * 1000000n;
const body = JSON.stringify({ resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'keyward-self-test' } }] },
  scopeSpans: [{ scope: { name: 'keyward.verify' }, spans: [{ traceId: random(16), spanId: random(8), name: 'keyward self-test', kind: 1,
    startTimeUnixNano: String(now), endTimeUnixNano: String(now + 1000000n) }] }] }] });
const controller = new AbortController();
setTimeout(() => controller.abort(), 8000).unref();
fetch(endpoint + '/v1/traces', { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: controller.signal })
  .then(async (response) => { console.log(JSON.stringify({ status: response.status })); })
  .catch((error) => { console.log(JSON.stringify({ error: String(error && (error.cause?.code || error.name || error)) })); });
`;
}

export function telemetryChecks(endpoint: string): VerifyCheckV2[] {
  return [
    {
      name: 'telemetry-accepted',
      description: 'The agent can send a span to the OpenTelemetry Collector, which accepts it.',
      exec: {
        container: 'agent',
        command: ['node', '-'],
        stdin: telemetrySelfTestScript(endpoint),
        timeoutSeconds: 15,
      },
      judge: (result) => {
        if (result.exitCode !== 0 || result.timedOut) {
          return {
            passed: false,
            evidence: `the self-test did not run (exit ${result.exitCode}${result.timedOut ? ', timed out' : ''})`,
          };
        }
        try {
          const outcome = JSON.parse(result.stdout.trim().split('\n').at(-1) ?? '') as {
            status?: number;
            error?: string;
          };
          if (outcome.status === 200) return { passed: true, evidence: `POST ${endpoint}/v1/traces → 200` };
          return {
            passed: false,
            evidence: outcome.status
              ? `POST ${endpoint}/v1/traces → ${outcome.status}`
              : `POST ${endpoint}/v1/traces failed: ${outcome.error}`,
          };
        } catch {
          return { passed: false, evidence: 'the self-test printed no result' };
        }
      },
    },
  ];
}
