import { describe, expect, it } from 'vitest';
import { type DemoOutput, formatProgress, formatResult, parseDemoExtras } from './demo-command.js';
import type { DemoResult } from './run-demo.js';

const plain: DemoOutput = { write() {}, error() {}, color: false };

function result(overrides: Partial<DemoResult> = {}): DemoResult {
  return {
    instance: 'demo',
    passed: true,
    checks: [
      { name: 'proxied-request-injected', title: 'Through the proxy', passed: true, evidence: '-> 200' },
      { name: 'direct-egress-blocked', title: 'Direct', passed: true, evidence: '-> ENETUNREACH' },
    ],
    runtime: { name: 'podman', version: '4.3.1', endpoint: 'unix:///run/keyward-podman.sock' },
    images: { built: [], reused: [] },
    replacedExisting: false,
    agentContainer: 'keyward-demo-agent',
    demoApi: { hostname: 'api.demo.keyward.test', port: 8443, adminUrl: 'http://127.0.0.1:40000' },
    apiAddress: 'http://127.0.0.1:7878',
    webUi: true,
    cliCommand: 'keyward',
    cleanupCommand: 'keyward rm demo',
    durationMs: 14_000,
    credentialFingerprint: 'abcdef012345',
    extras: [],
    ...overrides,
  };
}

describe('demo command output', () => {
  it('lists every check with its evidence, the API address, and how to clean up', () => {
    const text = formatResult(result(), plain);
    expect(text).toMatch(/✔ PASS {2}1\. Through the proxy\n\s+-> 200/);
    expect(text).toMatch(/✔ PASS {2}2\. Direct\n\s+-> ENETUNREACH/);
    expect(text).toContain('The promise holds');
    expect(text).toContain('listens on http://127.0.0.1:7878');
    expect(text).toContain('the web UI is at http://127.0.0.1:7878/');
    expect(text).toMatch(/clean up\s+keyward rm demo/);
  });

  it('names no web UI where the install has none (the npm packages do not include it)', () => {
    const text = formatResult(result({ webUi: false }), plain);
    expect(text).toContain('listens on http://127.0.0.1:7878');
    expect(text).not.toContain('web UI');
  });

  it('says which check failed, keeps the instance for a look, and carries the DOCKER_HOST the runtime needs', () => {
    const failed = result({
      passed: false,
      checks: [{ name: 'direct-egress-blocked', title: 'Direct', passed: false, evidence: '-> connected' }],
      dockerHostHint: 'DOCKER_HOST=unix:///run/keyward-podman.sock',
      cliCommand: 'pnpm keyward',
      cleanupCommand: 'pnpm keyward rm demo',
    });
    const text = formatResult(failed, plain);
    expect(text).toMatch(/✖ FAIL {2}1\. Direct/);
    expect(text).toContain('Some checks failed');
    expect(text).not.toContain('The promise holds');
    expect(text).toMatch(/clean up\s+DOCKER_HOST=unix:\/\/\/run\/keyward-podman\.sock pnpm keyward rm demo/);
  });

  it('shows each target step once when it starts, failures always, and build output only with --verbose', () => {
    const time = new Date().toISOString();
    const step = (status: 'started' | 'succeeded' | 'failed') => ({
      step: 'deploy' as const,
      status: 'info' as const,
      message: `Starting keyward-demo-agent (${status})`,
      time,
      detail: { step: 'container.start:agent', status, message: 'Starting', time },
    });
    expect(formatProgress(step('started'), plain, false)).toContain('Starting keyward-demo-agent');
    expect(formatProgress(step('succeeded'), plain, false)).toBeUndefined();
    expect(formatProgress(step('failed'), plain, false)).toContain('(failed)');
    const output = {
      step: 'images' as const,
      status: 'info' as const,
      message: '  STEP 1/4: FROM scratch',
      time,
      detail: { type: 'output' as const, image: 'x', line: 'STEP 1/4: FROM scratch' },
    };
    expect(formatProgress(output, plain, false)).toBeUndefined();
    expect(formatProgress(output, plain, true)).toContain('STEP 1/4');
  });

  it('reads --with as a list of known sidecars and says what to write otherwise', () => {
    expect(parseDemoExtras(undefined)).toEqual([]);
    expect(parseDemoExtras('litellm, OTEL')).toEqual(['litellm', 'otel']);
    expect(() => parseDemoExtras('litellm,jaeger')).toThrow(
      /not jaeger; write for example --with litellm,otel/,
    );
    expect(() => parseDemoExtras('otel')).toThrow(/write --with litellm,otel/);
  });

  it('names LiteLLM and the collector in the summary when they were added', () => {
    const plainText = formatResult(result(), plain);
    expect(plainText).not.toContain('LiteLLM');
    const text = formatResult(
      result({ extras: ['litellm', 'otel'], modelKeyFingerprint: '0123456789ab' }),
      plain,
    );
    expect(text).toMatch(/LiteLLM\s+the agent's model gateway .*sha256:0123456789ab is sealed for LiteLLM/);
    expect(text).toMatch(
      /telemetry\s+OpenTelemetry Collector; spans in \/var\/lib\/otelcol\/telemetry\.jsonl of container keyward-demo-otel/,
    );
  });
});
