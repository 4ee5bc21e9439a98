import { KeywardError, type PlannedContainerV2 } from '@keyward/core';

/**
 * The plan's containers in the order they start: each after those its `startAfter` names
 * (ties keep the plan's order, which is dependency order), the agent after every sidecar.
 */
export function startOrder<T extends Pick<PlannedContainerV2, 'name' | 'role' | 'startAfter'>>(
  containers: readonly T[],
): T[] {
  const names = new Set(containers.map((container) => container.name));
  const sidecars = containers.filter((container) => container.role !== 'agent');
  const ordered: T[] = [];
  const placed = new Set<string>();
  while (ordered.length < sidecars.length) {
    const next = sidecars.find(
      (container) =>
        !placed.has(container.name) &&
        container.startAfter.every((before) => placed.has(before) || !names.has(before)),
    );
    if (!next) {
      throw new KeywardError({
        code: 'INVALID_INPUT',
        message: `The plan's containers wait for each other in a cycle (${sidecars
          .filter((container) => !placed.has(container.name))
          .map((container) => container.name)
          .join(', ')}); compose the plan with composePlanV2.`,
      });
    }
    ordered.push(next);
    placed.add(next.name);
  }
  return [...ordered, ...containers.filter((container) => container.role === 'agent')];
}
