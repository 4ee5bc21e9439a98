import { describe, expect, it } from 'vitest';
import { checkSidecarProvider, type SidecarConformanceOptions } from './sidecar-conformance.js';
import { checkTargetProvider, type TargetConformanceOptions } from './target-conformance.js';

/** The conformance suite every sidecar provider runs in its own tests. */
export function testSidecarProvider(options: SidecarConformanceOptions): void {
  describe(`sidecar provider "${options.provider.id}" conformance`, () => {
    it('follows every rule of SidecarProviderV2', async () => {
      expect(await checkSidecarProvider(options)).toEqual([]);
    });
  });
}

/** The conformance suite every target provider runs against its real runtime. */
export function testTargetProvider(options: TargetConformanceOptions & { timeout?: number }): void {
  describe('target provider conformance', () => {
    it(
      'follows the lifecycle of TargetProviderV2',
      async () => {
        expect(await checkTargetProvider(options)).toEqual([]);
      },
      options.timeout ?? 300_000,
    );
  });
}
