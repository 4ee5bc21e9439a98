import { describe, expect, it } from 'vitest';
import { withTimeout } from './timeout.js';

describe('withTimeout', () => {
  it('settles like the promise when it settles in time', async () => {
    await expect(withTimeout(Promise.resolve('answer'), 1000)).resolves.toBe('answer');
    await expect(withTimeout(Promise.reject(new Error('refused')), 1000)).rejects.toThrow('refused');
  });

  it('rejects with the default or the given message when the promise does not settle in time', async () => {
    const never = new Promise<never>(() => undefined);
    await expect(withTimeout(never, 10)).rejects.toThrow('no answer within 10 ms');
    await expect(withTimeout(never, 10, 'Target "local" did not answer within 10 ms')).rejects.toThrow(
      'Target "local" did not answer within 10 ms',
    );
  });
});
