import type { ProviderRegistry } from '@keyward/core';
import { componentName, schemaReference } from './provider-descriptions.js';

type JsonObject = Record<string, unknown>;

const isObject = (value: unknown): value is JsonObject =>
  value !== null && typeof value === 'object' && !Array.isArray(value);

/**
 * The instance spec's zod schema can only say that `sidecars` is keyed by DNS labels; the
 * server knows which sidecars are installed. This narrows `sidecars` in every request body that
 * is an instance spec (deploy, render) to the installed providers, each with its own config
 * schema (the `SidecarConfig_<id>` components): what the server accepts, said in the contract,
 * so clients and fuzzers build bodies that get past the first check.
 */
export function withInstalledSidecars<T extends object>(document: T, registry: ProviderRegistry): T {
  const ids = registry.listSidecars().map((provider) => provider.id);
  const sidecars = {
    type: 'object',
    description: 'Config per installed sidecar, keyed by provider id; each provider validates its own part.',
    properties: Object.fromEntries(ids.map((id) => [id, schemaReference(componentName('Config', id))])),
    additionalProperties: false,
    default: {},
  };
  const { paths: documentPaths } = document as { paths?: unknown };
  const paths = isObject(documentPaths) ? documentPaths : {};
  for (const pathItem of Object.values(paths)) {
    if (!isObject(pathItem)) continue;
    for (const operation of Object.values(pathItem)) {
      const schema = isObject(operation) ? jsonBodySchema(operation['requestBody']) : undefined;
      const properties = schema?.['properties'];
      // An instance spec: it has an agent and sidecars.
      if (isObject(properties) && isObject(properties['agent']) && isObject(properties['sidecars'])) {
        properties['sidecars'] = sidecars;
      }
    }
  }
  return document;
}

function jsonBodySchema(requestBody: unknown): JsonObject | undefined {
  if (!isObject(requestBody) || !isObject(requestBody['content'])) return undefined;
  const json = requestBody['content']['application/json'];
  return isObject(json) && isObject(json['schema']) ? json['schema'] : undefined;
}
