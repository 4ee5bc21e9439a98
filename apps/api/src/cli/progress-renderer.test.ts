import { describe, expect, it } from 'vitest';
import type { JobEvent } from '../client.js';
import { ProgressRenderer } from './progress-renderer.js';

const time = '2026-01-01T00:00:00.000Z';
const events: JobEvent[] = [
  {
    type: 'progress',
    sequence: 1,
    time,
    step: 'network.create',
    status: 'started',
    message: 'Create network',
  },
  {
    type: 'progress',
    sequence: 2,
    time,
    step: 'network.create',
    status: 'succeeded',
    message: 'Create network',
  },
  {
    type: 'progress',
    sequence: 3,
    time,
    step: 'container.start:agent',
    status: 'started',
    message: 'Start agent',
  },
  {
    type: 'progress',
    sequence: 4,
    time,
    step: 'container.start:agent',
    status: 'failed',
    message: 'Start agent failed',
  },
  {
    type: 'error',
    sequence: 5,
    time,
    error: { code: 'DEPLOY_FAILED', message: 'rolled back', step: 'container.start:agent' },
  },
];

function sink(isTTY: boolean) {
  const written: string[] = [];
  return { stream: { isTTY, write: (text: string) => written.push(text) > 0 }, written };
}

describe('ProgressRenderer', () => {
  it('writes one plain line per event when not on a terminal', () => {
    const { stream, written } = sink(false);
    const renderer = new ProgressRenderer({ stream });
    for (const event of events) renderer.handle(event);
    expect(written.join('')).toBe(
      [
        '[started] network.create: Create network',
        '[succeeded] network.create: Create network',
        '[started] container.start:agent: Start agent',
        '[failed] container.start:agent: Start agent failed',
        '[failed] container.start:agent DEPLOY_FAILED: rolled back',
        '',
      ].join('\n'),
    );
  });

  it('draws a spinner for the running step and a mark per finished step on a terminal', () => {
    const { stream, written } = sink(true);
    const renderer = new ProgressRenderer({ stream });
    for (const event of events) renderer.handle(event);
    const output = written.join('');
    expect(output).toMatch(/\r\x1b\[2K[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] Create network/);
    expect(output).toContain('✔ Create network\n');
    expect(output).toContain('✖ Start agent failed\n');
    // The spinner stops with the job: nothing is left drawing.
    const length = written.length;
    return new Promise<void>((resolve) =>
      setTimeout(() => {
        expect(written.length).toBe(length);
        resolve();
      }, 200),
    );
  });
});
