import { KeywardError } from '../errors/keyward-error.js';
import type { SidecarRequirementV2 } from '../spec/v2/sidecar-provider-v2.js';

export interface DependencyNode {
  id: string;
  requires?: readonly SidecarRequirementV2[] | undefined;
}

/**
 * The providers of one plan in dependency order: each after the providers it requires,
 * ties broken by id so the same input always gives the same order. A missing required
 * provider and a cycle are errors that name what to change.
 */
export function dependencyOrder(nodes: readonly DependencyNode[]): string[] {
  const present = new Map(nodes.map((node) => [node.id, node]));
  const edges = new Map<string, string[]>();
  for (const node of nodes) {
    const required: string[] = [];
    for (const requirement of node.requires ?? []) {
      if (requirement.provider === node.id) {
        throw new KeywardError({
          code: 'PROVIDER_CONTRACT_VIOLATION',
          providerId: node.id,
          message: `Sidecar provider "${node.id}" requires itself; remove that requirement.`,
        });
      }
      if (present.has(requirement.provider)) {
        required.push(requirement.provider);
      } else if (!requirement.optional) {
        throw new KeywardError({
          code: 'MISSING_DEPENDENCY',
          providerId: node.id,
          message: `Sidecar "${node.id}" requires sidecar "${requirement.provider}", which the instance does not have; add "${requirement.provider}" under sidecars.`,
          details: { provider: node.id, requires: requirement.provider },
        });
      }
    }
    edges.set(node.id, [...new Set(required)].sort());
  }

  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const path: string[] = [];
  const visit = (id: string): void => {
    const seen = state.get(id);
    if (seen === 'done') return;
    if (seen === 'visiting') {
      const cycle = [...path.slice(path.indexOf(id)), id];
      throw new KeywardError({
        code: 'DEPENDENCY_CYCLE',
        providerId: id,
        message: `Sidecars depend on each other in a cycle: ${cycle.join(' → ')}; one of them must drop its requirement.`,
        details: { cycle },
      });
    }
    state.set(id, 'visiting');
    path.push(id);
    for (const required of edges.get(id) ?? []) visit(required);
    path.pop();
    state.set(id, 'done');
    order.push(id);
  };
  for (const id of [...present.keys()].sort()) visit(id);
  return order;
}

/** The providers of the plan that `id` requires, directly or through others. */
export function transitiveRequirements(id: string, nodes: readonly DependencyNode[]): Set<string> {
  const byId = new Map(nodes.map((node) => [node.id, node]));
  const found = new Set<string>();
  const pending = [id];
  while (pending.length > 0) {
    const current = byId.get(pending.pop() as string);
    for (const requirement of current?.requires ?? []) {
      if (byId.has(requirement.provider) && !found.has(requirement.provider)) {
        found.add(requirement.provider);
        pending.push(requirement.provider);
      }
    }
  }
  return found;
}
