import {
  type AnySidecarProviderV2,
  type ExecResultV2,
  formatIssues,
  type InstanceDetailV2,
  KeywardError,
  type SidecarLookupV2,
  type TargetProviderV2,
  type VerifyCheckReportV2,
  type VerifyCheckV2,
  type VerifyReportV2,
} from '@keyward/core';

/**
 * `POST /api/instances/:id/verify`'s body: options by provider id. Any other top-level field is
 * an option of whichever sidecar's options schema takes it (the fields of older clients).
 */
export interface VerifyRequest {
  options?: Record<string, unknown>;
  [field: string]: unknown;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Each sidecar's verify options, validated by its own schema: `options[providerId]`, plus the
 * body's other top-level fields for every sidecar whose schema takes them all. A field no
 * sidecar takes, or options for a sidecar the instance lacks, are a 400.
 */
export function verifyOptionsOf(
  detail: InstanceDetailV2,
  sidecars: SidecarLookupV2,
  body: VerifyRequest,
): Map<string, unknown> {
  const { options: byProvider = {}, ...loose } = isPlainObject(body) ? body : ({} as VerifyRequest);
  if (!isPlainObject(byProvider)) {
    throw new KeywardError({
      code: 'INVALID_INPUT',
      message: 'Verify "options" must be an object keyed by sidecar id ({"options": {"<sidecar>": {…}}}).',
    });
  }
  const instanceSidecars = detail.sidecars.map((sidecar) => sidecar.providerId);
  for (const id of Object.keys(byProvider)) {
    if (!instanceSidecars.includes(id)) {
      throw new KeywardError({
        code: 'INVALID_INPUT',
        providerId: id,
        message: `Verify options for "${id}", which is not a sidecar of instance "${detail.name}" (targets take no verify options); its sidecars: ${instanceSidecars.join(', ') || 'none'}.`,
      });
    }
  }
  const looseFields = Object.keys(loose);
  let looseTaken = looseFields.length === 0;
  const parsed = new Map<string, unknown>();
  for (const id of instanceSidecars) {
    const provider: AnySidecarProviderV2 | undefined = sidecars.getSidecar(id);
    const explicit = byProvider[id] ?? {};
    if (!isPlainObject(explicit)) {
      throw new KeywardError({
        code: 'INVALID_INPUT',
        providerId: id,
        message: `Verify options.${id} must be an object.`,
      });
    }
    const schema = provider?.verification?.optionsSchema;
    if (!schema) {
      if (Object.keys(explicit).length > 0) {
        throw new KeywardError({
          code: 'INVALID_INPUT',
          providerId: id,
          message: `Sidecar "${id}" takes no verify options; remove options.${id}.`,
        });
      }
      continue;
    }
    if (looseFields.length > 0) {
      const merged = schema.safeParse({ ...loose, ...explicit });
      if (merged.success) {
        parsed.set(id, merged.data);
        looseTaken = true;
        continue;
      }
    }
    const own = schema.safeParse(explicit);
    if (!own.success) {
      const problems = formatIssues(own.error.issues, `options.${id}`);
      throw new KeywardError({
        code: 'INVALID_INPUT',
        providerId: id,
        message: `Invalid verify options for sidecar "${id}": ${problems.join('; ')}`,
        details: { problems },
      });
    }
    parsed.set(id, own.data);
  }
  if (!looseTaken) {
    throw new KeywardError({
      code: 'INVALID_INPUT',
      message: `No sidecar of instance "${detail.name}" takes the verify options ${looseFields.map((field) => `"${field}"`).join(', ')}; put each sidecar's options under options.<sidecar id> (GET /api/providers shows each sidecar's verify options schema).`,
      details: { fields: looseFields },
    });
  }
  return parsed;
}

export interface RunVerificationOptions {
  // biome-ignore lint/suspicious/noExplicitAny: targets carry their own option types.
  target: TargetProviderV2<any>;
  sidecars: SidecarLookupV2;
  detail: InstanceDetailV2;
  /** Parsed options by sidecar id (`verifyOptionsOf`). */
  options: ReadonlyMap<string, unknown>;
}

/**
 * The self-test: the target's own checks, then every sidecar's in the instance's (dependency)
 * order, each run by the target with `exec` and judged by the provider that made it. A check
 * that cannot run, or whose judge throws, fails with that as its evidence. Not redacted: the
 * caller redacts.
 */
export async function runVerification(options: RunVerificationOptions): Promise<VerifyReportV2> {
  const { target, detail } = options;
  const exec = target.exec?.bind(target);
  if (!target.capabilities.exec || !exec) {
    throw new KeywardError({
      code: 'UNSUPPORTED_CAPABILITY',
      providerId: target.id,
      message: `Target "${target.id}" cannot run commands in an instance, so it has no self-test.`,
    });
  }
  const planned: { providerId: string; check: VerifyCheckV2 }[] = [];
  for (const check of (await target.verificationChecks?.(detail)) ?? []) {
    planned.push({ providerId: target.id, check });
  }
  for (const sidecar of detail.sidecars) {
    const provider = options.sidecars.getSidecar(sidecar.providerId);
    if (!provider?.verification) continue;
    const checks = await provider.verification.checks(
      {
        instanceName: detail.name,
        networkMode: detail.networkMode,
        metadata: sidecar.metadata,
        exports: sidecar.exports ?? {},
      },
      options.options.get(sidecar.providerId),
    );
    for (const check of checks) planned.push({ providerId: sidecar.providerId, check });
  }
  const checks: VerifyCheckReportV2[] = [];
  // One at a time: checks share the agent container, and the report's order stays stable.
  for (const { providerId, check } of planned) {
    let result: ExecResultV2;
    try {
      result = await exec(detail.name, check.exec);
    } catch (error) {
      checks.push({
        name: check.name,
        providerId,
        description: check.description,
        passed: false,
        evidence: `could not run the check in container "${check.exec.container}": ${messageOf(error)}`,
      });
      continue;
    }
    let judged: { passed: boolean; evidence: string };
    try {
      judged = check.judge(result);
    } catch (error) {
      judged = { passed: false, evidence: `the check's judge failed: ${messageOf(error)}` };
    }
    checks.push({
      name: check.name,
      providerId,
      description: check.description,
      passed: judged.passed === true,
      evidence: String(judged.evidence),
    });
  }
  return { passed: checks.every((check) => check.passed), checks };
}
