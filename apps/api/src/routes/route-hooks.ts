import type { Hook } from '@hono/zod-openapi';
import { formatIssues, KeywardError, type KeywardErrorCode } from '@keyward/core';

// biome-ignore lint/suspicious/noExplicitAny: the hook fits every route, whatever its input types.
type AnyHook = Hook<any, any, any, any>;

/**
 * Validation failures become KeywardErrors, so onError renders them like every
 * other error. The code says what was wrong: an instance spec (deploy, render),
 * a sidecar change (PUT), or anything else.
 */
export const validationHook: AnyHook = (result, c) => {
  if (result.success) return undefined;
  const isBody = result.target === 'json';
  const isSpec = isBody && c.req.method === 'POST' && /^\/api\/(instances|render)$/.test(c.req.path);
  const isChange = isBody && c.req.method === 'PUT';
  const code: KeywardErrorCode = isSpec
    ? 'INVALID_INSTANCE_SPEC'
    : isChange
      ? 'INVALID_PROVIDER_CONFIG'
      : 'INVALID_INPUT';
  const what = isSpec ? 'instance spec' : isChange ? 'sidecar change' : `request ${result.target}`;
  const problems = formatIssues(result.error.issues);
  throw new KeywardError({ code, message: `Invalid ${what}: ${problems.join('; ')}`, details: { problems } });
};
