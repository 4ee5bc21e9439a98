// Loaded into the proxy under test by the benchmark when BENCH_DIAGNOSTICS=1 (node --require):
// event-loop delay and garbage-collection pauses over each measured round. On SIGUSR2 it writes
// one line to stderr, `BENCH_DIAGNOSTICS {json}`, and starts over. Not part of the package.
const { monitorEventLoopDelay, PerformanceObserver, constants } = require('node:perf_hooks');

const delay = monitorEventLoopDelay({ resolution: 1 });
delay.enable();
const kinds = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'scavenge',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'mark-compact',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental marking',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weak callbacks',
};
let pauses = [];
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) pauses.push([kinds[entry.detail?.kind] ?? 'other', entry.duration]);
}).observe({ entryTypes: ['gc'] });

process.on('SIGUSR2', () => {
  const milliseconds = (nanoseconds) => Math.round(nanoseconds / 1e4) / 100;
  const gc = {};
  for (const [kind, duration] of pauses) {
    gc[kind] ??= { count: 0, totalMs: 0, maxMs: 0 };
    const summary = gc[kind];
    summary.count++;
    summary.totalMs = Math.round((summary.totalMs + duration) * 100) / 100;
    summary.maxMs = Math.max(summary.maxMs, Math.round(duration * 100) / 100);
  }
  const report = {
    loopDelayMs: {
      p50: milliseconds(delay.percentile(50)),
      p99: milliseconds(delay.percentile(99)),
      max: milliseconds(delay.max),
    },
    gc,
  };
  process.stderr.write(`BENCH_DIAGNOSTICS ${JSON.stringify(report)}\n`);
  delay.reset();
  pauses = [];
});
