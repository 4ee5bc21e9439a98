/**
 * `proxy-only`: the agent has no route out; sidecars live in a separate network
 * identity the agent reaches by name. `open`: one shared network namespace; the
 * agent can go around the proxy.
 */
export const networkModes = ['proxy-only', 'open'] as const;
export type NetworkMode = (typeof networkModes)[number];
