import fc from 'fast-check';
import { expect } from 'vitest';

// The harness both parser differential tests share: random heads go to the proxy's parser and
// to Node's (llhttp); the proxy must never accept what Node refuses, and where both accept,
// `compare` checks they agree.

export interface DifferentialOptions<Ours, Theirs> {
  heads: fc.Arbitrary<string>;
  ours(head: string): Ours | undefined;
  node(head: string): Promise<Theirs | undefined>;
  /** We accept, Node refuses: true when the difference is a known one that does not touch framing. */
  tolerated?(head: string, ours: Ours): Promise<boolean>;
  /** Both accept: assert agreement; false when Node's answer cannot be compared (it is not counted). */
  compare(ours: Ours, node: Theirs): boolean;
  numRuns: number;
  /** The generator must exercise the comparison this often, and produce heads only Node accepts. */
  minimumBothAccepted: number;
}

export async function expectNeverMoreLenientThanNode<Ours, Theirs>(
  options: DifferentialOptions<Ours, Theirs>,
): Promise<void> {
  let bothAccepted = 0;
  let onlyNodeAccepted = 0;
  await fc.assert(
    fc.asyncProperty(options.heads, async (text) => {
      const ours = options.ours(text);
      const node = await options.node(text);
      if (ours === undefined) {
        if (node !== undefined) onlyNodeAccepted++;
        return;
      }
      if (node === undefined && (await options.tolerated?.(text, ours))) return;
      expect(node, `we accept what node refuses: ${JSON.stringify(text)}`).toBeDefined();
      if (node === undefined) return;
      if (options.compare(ours, node)) bothAccepted++;
    }),
    { numRuns: options.numRuns },
  );
  expect(bothAccepted).toBeGreaterThan(options.minimumBothAccepted);
  expect(onlyNodeAccepted).toBeGreaterThan(0);
}

/** [name, value, name, value…] as pairs. */
export function headerPairs(flat: readonly string[]): [string, string][] {
  const pairs: [string, string][] = [];
  for (let index = 0; index < flat.length; index += 2) {
    pairs.push([flat[index] as string, flat[index + 1] as string]);
  }
  return pairs;
}
