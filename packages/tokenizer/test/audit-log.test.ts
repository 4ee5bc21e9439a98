import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type AuditEntry, createStdoutAuditSink, isoTime, serializeAuditEntry } from '../src/audit-log.js';

// The audit line is written without JSON.stringify's generic walk and with the time formatted
// once per second: both must give exactly what JSON.stringify and Date#toISOString give.

const text = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary' }),
  fc.constantFrom('', 'GET', '/a"b\\c', '\u2028'),
);
const entry: fc.Arbitrary<AuditEntry> = fc
  .record({
    time: fc.oneof(
      fc.constant(''),
      fc.date({ noInvalidDate: true }).map((date) => date.toISOString()),
    ),
    credentials: fc.array(fc.oneof(fc.stringMatching(/^[0-9a-f]{16}$/), text), { maxLength: 3 }),
    method: text,
    host: text,
    path: text,
    status: fc.oneof(fc.integer({ min: 0, max: 599 }), fc.constant(Number.NaN)),
    // The proxy's durations are whole hundredths of a millisecond (written from integers).
    durationMs: fc.oneof(
      fc.double(),
      fc.constant(-0),
      fc.integer({ min: 0, max: 2_000_000_000 }).map((hundredths) => hundredths / 100),
      fc.integer({ min: 0, max: 1_000_000 }).map((hundredths) => Math.round(hundredths * 1.001) / 100 + 1e-9),
    ),
    decision: fc.constantFrom('forwarded' as const, 'denied' as const, 'error' as const),
    error: fc.option(text, { nil: undefined }),
    detail: fc.option(text, { nil: undefined }),
  })
  .map((fields) => {
    // The proxy sets error before detail, and leaves both off when they do not apply.
    const { error, detail, ...rest } = fields;
    const built: AuditEntry = { ...rest };
    if (error !== undefined) built.error = error;
    if (detail !== undefined) built.detail = detail;
    return built;
  });

describe('audit lines', () => {
  it('serializes an entry exactly as JSON.stringify does', () => {
    fc.assert(
      fc.property(entry, (value) => {
        expect(serializeAuditEntry(value)).toBe(JSON.stringify(value));
      }),
      { numRuns: 2000 },
    );
  });

  it('formats times exactly as Date#toISOString does, including fractions and times before 1970', () => {
    fc.assert(
      fc.property(fc.double({ min: -62_000_000_000_000, max: 250_000_000_000_000, noNaN: true }), (ms) => {
        expect(isoTime(ms)).toBe(new Date(ms).toISOString());
      }),
      { numRuns: 5000 },
    );
    // Consecutive calls within one second reuse the formatted prefix.
    const second = Date.UTC(2026, 11, 2, 7, 0, 5);
    for (const offset of [0, 7, 42, 999, 1000, 1001, -1])
      expect(isoTime(second + offset)).toBe(new Date(second + offset).toISOString());
  });

  it('writes one JSON line per entry through the batching stdout sink', async () => {
    let written = '';
    const sink = createStdoutAuditSink({ write: (chunk: string) => (written += chunk) } as never);
    const first: AuditEntry = {
      time: isoTime(Date.UTC(2026, 0, 1)),
      credentials: ['0123456789abcdef'],
      method: 'GET',
      host: 'api.example.com',
      path: '/v1/"quoted"',
      status: 200,
      durationMs: 1.25,
      decision: 'forwarded',
    };
    const second: AuditEntry = { ...first, status: 407, decision: 'denied', error: 'BAD_PROXY_AUTH' };
    sink(first);
    sink(second);
    sink.flush();
    expect(
      written
        .split('\n')
        .slice(0, -1)
        .map((line) => JSON.parse(line)),
    ).toEqual([first, second]);
  });
});
