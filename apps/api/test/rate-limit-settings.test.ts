import { isKeywardError } from '@keyward/core';
import { describe, expect, it } from 'vitest';
import { rateLimitsFromEnvironment } from '../src/server.js';

describe('rate limits of `keyward serve` from the environment', () => {
  it('reads requests, deploys and rotations per minute; unset ones keep the defaults', () => {
    expect(rateLimitsFromEnvironment({})).toEqual({});
    expect(
      rateLimitsFromEnvironment({
        KEYWARD_REQUESTS_PER_MINUTE: '6000',
        KEYWARD_DEPLOYS_PER_MINUTE: '',
        KEYWARD_ROTATIONS_PER_MINUTE: '40',
      }),
    ).toEqual({
      requests: { limit: 6000, windowMilliseconds: 60_000 },
      rotation: { limit: 40, windowMilliseconds: 60_000 },
    });
  });

  it.each(['0', '-5', '1.5', 'many', '10000000000'])(
    'refuses %j with a message naming the variable',
    (value) => {
      let thrown: unknown;
      try {
        rateLimitsFromEnvironment({ KEYWARD_DEPLOYS_PER_MINUTE: value });
      } catch (error) {
        thrown = error;
      }
      expect(isKeywardError(thrown, 'INVALID_INPUT')).toBe(true);
      expect((thrown as Error).message).toBe(
        `KEYWARD_DEPLOYS_PER_MINUTE must be a whole number of requests per minute, at least 1 (got "${value}"); unset it for the default.`,
      );
    },
  );
});
