import type { AnySidecarProviderV2, NetworkMode, ProviderRegistry, TargetProviderV2 } from '@keyward/core';
import * as z from 'zod';

export type JsonSchemaObject = Record<string, unknown>;

/**
 * A provider's zod schema as JSON Schema, for the OpenAPI document and generated forms. `input`
 * for what a user writes (config, change, options), `output` for what the API answers (views).
 * A schema zod cannot express says so instead of failing the whole document.
 */
export function jsonSchemaOf(schema: z.ZodType, io: 'input' | 'output'): JsonSchemaObject {
  try {
    const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Record<
      string,
      unknown
    >;
    return rest;
  } catch (error) {
    return {
      description: `This schema has no JSON Schema form (${error instanceof Error ? error.message : String(error)}); the provider still validates it.`,
    };
  }
}

/** The OpenAPI component that holds a sidecar's schema of that kind. */
export function componentName(
  kind: 'Config' | 'Change' | 'View' | 'VerifyOptions',
  providerId: string,
): string {
  return `Sidecar${kind}_${providerId}`;
}

/** A reference to a component schema of the OpenAPI document. */
export const schemaReference = (name: string) => ({ $ref: `#/components/schemas/${name}` });

export interface SidecarDescription {
  id: string;
  displayName?: string;
  networkModes: NetworkMode[];
  requires: { provider: string; optional: boolean }[];
  rotation: boolean;
  verification: boolean;
  routeAliases: string[];
  roles: string[];
  errorCodes: Record<string, { httpStatus: number; description: string }>;
  schemas: {
    config: JsonSchemaObject;
    change?: JsonSchemaObject;
    view?: JsonSchemaObject;
    verifyOptions?: JsonSchemaObject;
  };
}

export function describeSidecar(provider: AnySidecarProviderV2): SidecarDescription {
  const verifyOptions = provider.verification?.optionsSchema;
  return {
    id: provider.id,
    ...(provider.displayName ? { displayName: provider.displayName } : {}),
    networkModes: [...provider.capabilities.networkModes],
    requires: (provider.requires ?? []).map((requirement) => ({
      provider: requirement.provider,
      optional: requirement.optional === true,
    })),
    rotation: provider.rotation !== undefined,
    verification: provider.verification !== undefined,
    routeAliases: [...(provider.routeAliases ?? [])],
    roles: [...(provider.roles ?? [])],
    errorCodes: Object.fromEntries(
      Object.entries(provider.errorCodes ?? {}).map(([code, { httpStatus, description }]) => [
        code,
        { httpStatus, description },
      ]),
    ),
    schemas: {
      config: jsonSchemaOf(provider.configSchema, 'input'),
      ...(provider.rotation ? { change: jsonSchemaOf(provider.rotation.changeSchema, 'input') } : {}),
      ...(provider.view ? { view: jsonSchemaOf(provider.view.schema, 'output') } : {}),
      ...(verifyOptions ? { verifyOptions: jsonSchemaOf(verifyOptions, 'input') } : {}),
    },
  };
}

// biome-ignore lint/suspicious/noExplicitAny: targets carry their own option types.
export function describeTarget(target: TargetProviderV2<any>) {
  return {
    id: target.id,
    ...(target.displayName ? { displayName: target.displayName } : {}),
    capabilities: {
      ...target.capabilities,
      networkModes: [...target.capabilities.networkModes],
      egress: [...target.capabilities.egress],
    },
    schemas: { options: jsonSchemaOf(target.configSchema, 'input') },
  };
}

/** `GET /api/providers`: what is installed, with the schemas a UI builds its forms from, and what failed to load. */
export function describeProviders(registry: ProviderRegistry) {
  return {
    sidecars: registry.listSidecars().map(describeSidecar),
    targets: registry.listTargets().map(describeTarget),
    loadErrors: [...registry.loadErrors],
  };
}

/** Paths under /api/instances/{id}/ that are the API's own and cannot be a sidecar's alias. */
export const reservedInstancePaths = new Set([
  'logs',
  'verify',
  'render',
  'start',
  'stop',
  'restart',
  'sidecars',
]);

/** Alias → provider id, first provider first; aliases that collide are reported, not served. */
export function routeAliases(registry: ProviderRegistry): {
  aliases: Map<string, AnySidecarProviderV2>;
  refused: { alias: string; providerId: string; reason: string }[];
} {
  const aliases = new Map<string, AnySidecarProviderV2>();
  const refused: { alias: string; providerId: string; reason: string }[] = [];
  for (const provider of registry.listSidecars()) {
    for (const alias of provider.routeAliases ?? []) {
      const owner = aliases.get(alias);
      const reason = !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(alias)
        ? 'an alias must be a DNS label'
        : reservedInstancePaths.has(alias)
          ? 'the API uses that path itself'
          : owner
            ? `sidecar "${owner.id}" already has it`
            : undefined;
      if (reason) refused.push({ alias, providerId: provider.id, reason });
      else aliases.set(alias, provider);
    }
  }
  return { aliases, refused };
}
