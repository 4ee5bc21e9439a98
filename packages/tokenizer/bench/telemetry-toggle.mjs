// @ts-check
// Loaded into the proxy under test by run-benchmark.mjs (node --import) to measure what
// OpenTelemetry costs inside one process under one constant load: the proxy's telemetry is
// switched on and off every BENCH_TOGGLE_PHASE_MS, and each phase's requests, time and CPU are
// written as JSON lines to BENCH_TOGGLE_FILE. Both conditions then share the process (heap, JIT
// state, connections), the load generator and the machine's noise of the same seconds.
// Not part of the package; it reaches into the proxy's request handler, and fails loudly if that
// changes.
//
// Phases: after BENCH_TOGGLE_WARMUP_MS with telemetry on, `on` and `off` alternate. The first
// BENCH_TOGGLE_SETTLE_MS of every phase are not measured (what the phase before left behind: its
// garbage, requests already under way). The measured part of an `on` phase starts and ends with
// an export of the queued spans, so it pays the export of exactly the spans it made.
import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const distDirectory = process.env.BENCH_TOGGLE_DIST;
const file = process.env.BENCH_TOGGLE_FILE;
if (!distDirectory || !file)
  throw new Error('telemetry-toggle.mjs: set BENCH_TOGGLE_DIST and BENCH_TOGGLE_FILE');
const PHASE_MS = Number(process.env.BENCH_TOGGLE_PHASE_MS ?? 1000);
const SETTLE_MS = Number(process.env.BENCH_TOGGLE_SETTLE_MS ?? 200);
const WARMUP_MS = Number(process.env.BENCH_TOGGLE_WARMUP_MS ?? 3000);
writeFileSync(file, '');

const { ProxyRequestHandler } = await import(join(distDirectory, 'proxy-request-handler.js'));
const original = ProxyRequestHandler.prototype.onRequest;
// The first request hands over the handler; the prototype gets its own method back at once, so
// the measured requests run no wrapper.
ProxyRequestHandler.prototype.onRequest = function capture(req, res) {
  ProxyRequestHandler.prototype.onRequest = original;
  start(this);
  return original.call(this, req, res);
};

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** @param {any} handler */
async function start(handler) {
  const telemetry = handler.telemetry;
  if (telemetry === undefined) {
    throw new Error(
      'telemetry-toggle.mjs: the proxy runs without telemetry (set OTEL_EXPORTER_OTLP_ENDPOINT)',
    );
  }
  // Builds from before flushSpans() (BENCH_CLI, before/after comparisons) flush their tracer provider.
  const flushSpans =
    typeof telemetry.flushSpans === 'function'
      ? () => telemetry.flushSpans()
      : typeof telemetry.tracerProvider?.forceFlush === 'function'
        ? () => telemetry.tracerProvider.forceFlush()
        : undefined;
  if (flushSpans === undefined) throw new Error("telemetry-toggle.mjs: no way to flush the proxy's spans");
  if (typeof handler.metrics?.snapshot !== 'function') {
    throw new Error('telemetry-toggle.mjs: the request handler has no metrics.snapshot() any more');
  }
  const completed = () => handler.metrics.snapshot({ hits: 0, misses: 0, size: 0 }).durationCount;
  const sample = () => ({ at: performance.now(), cpu: process.cpuUsage(), requests: completed() });
  await sleep(WARMUP_MS);
  for (let phase = 0; ; phase++) {
    const on = phase % 2 === 0;
    handler.telemetry = on ? telemetry : undefined;
    await sleep(SETTLE_MS);
    // Spans of requests that ended before the measured part leave before it starts.
    if (on) await flushSpans();
    const begin = sample();
    await sleep(PHASE_MS - SETTLE_MS);
    // An `on` phase's spans leave before it is measured: their export is part of its cost.
    if (on) {
      handler.telemetry = undefined;
      await flushSpans();
    }
    const end = sample();
    const cpu = process.cpuUsage(begin.cpu);
    appendFileSync(
      file,
      `${JSON.stringify({
        phase,
        telemetry: on,
        endedAt: Date.now(),
        ms: end.at - begin.at,
        requests: end.requests - begin.requests,
        cpuMicroseconds: cpu.user + cpu.system,
      })}\n`,
    );
  }
}
