import type { AddressRequestV2, JsonObject } from '@keyward/core';
import * as z from 'zod';

/** The instance's `targetOptions` for the local target (moved here from the spec's `network`). */
export const localTargetOptionsSchema = z
  .object({
    /** Host port the agent is published on; absent or null: a free port the runtime picks. */
    hostPort: z
      .number({ error: 'hostPort must be a number such as 18789; leave it out for a free port' })
      .int({ error: 'hostPort must be a whole number such as 18789' })
      .min(1, { error: 'hostPort must be between 1 and 65535' })
      .max(65535, { error: 'hostPort must be between 1 and 65535' })
      .nullable()
      .optional(),
    /** Host address the agent is published on. Default `127.0.0.1` (this machine only). */
    hostAddress: z
      .string()
      .min(1, 'hostAddress must be an IP address such as 127.0.0.1; leave it out for 127.0.0.1')
      .optional(),
  })
  .strict();

export type LocalTargetOptions = z.output<typeof localTargetOptionsSchema>;

/** Where the plan's ingress (the agent's port) is published on the host. */
export interface PublishedPort {
  container: string;
  containerPort: number;
  hostPort: number | null;
  hostAddress: string;
}

export function publishedPorts(plan: {
  ingress: readonly { container: string; port: number }[];
  targetOptions: JsonObject;
}): PublishedPort[] {
  const options = localTargetOptionsSchema.parse(plan.targetOptions ?? {});
  return plan.ingress.map((entry, index) => ({
    container: entry.container,
    containerPort: entry.port,
    // One fixed host port can only serve one ingress; the others get free ports.
    hostPort: index === 0 ? (options.hostPort ?? null) : null,
    hostAddress: options.hostAddress ?? '127.0.0.1',
  }));
}

/**
 * proxy-only: for a sidecar, the container's DNS name on the instance's internal network (its
 * logical name is an alias there); for the agent, `localhost`: its namespace has only loopback,
 * where the agent-network helper relays each allowed connection (ports are unique within an
 * instance, so they cannot collide). open: one shared namespace, so `localhost`.
 */
export function localAddressOf(request: AddressRequestV2): string {
  if (request.networkMode === 'open' || request.from.role === 'agent') return `localhost:${request.port}`;
  return `${request.to.container}:${request.port}`;
}
