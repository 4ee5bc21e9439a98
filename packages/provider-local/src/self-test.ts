// verify(): the self-test script runs inside the agent container and reports each check with evidence.
import {
  KeywardError,
  redact,
  type VerifyCheckV1,
  type VerifyOptionsV1,
  type VerifyResultV1,
} from '@keyward/core';
import { execInContainer } from './container-exec.js';
import { instanceNotFound, readInstance } from './instance-state.js';
import type { OperationContext } from './operation-context.js';
import { verifyScript } from './verify-script.js';

/** The environment-variable form of a credential name, as the agent sees its sealed token. */
function credentialKey(name: string): string {
  return name.toUpperCase().replace(/[^A-Z0-9]/g, '_');
}

export async function verifyInstance(
  context: OperationContext,
  name: string,
  options: VerifyOptionsV1,
): Promise<VerifyResultV1> {
  const { record } = await readInstance(context, name);
  const agent = record.plan.containers.find((container) => container.role === 'agent');
  if (!agent) throw instanceNotFound(context.providerId, name);
  const config = {
    mode: record.plan.network.mode,
    ...(options.allowedUrl ? { allowedUrl: options.allowedUrl } : {}),
    ...(options.unboundUrl ? { unboundUrl: options.unboundUrl } : {}),
    ...(options.directUrl ? { directUrl: options.directUrl } : {}),
    ...(options.credential ? { credentialKey: credentialKey(options.credential) } : {}),
    ...(options.selfSealedToken ? { selfSealedToken: options.selfSealedToken } : {}),
  };
  // The script travels on stdin and its settings in the exec's env: nothing in argv.
  const result = await execInContainer(context.runtime.docker, agent.runtimeName, ['node', '-'], {
    stdin: verifyScript,
    env: [`KEYWARD_VERIFY=${JSON.stringify(config)}`],
    timeoutMs: 60_000,
  });
  const lastLine = result.stdout.trim().split('\n').pop() ?? '';
  let checks: VerifyCheckV1[];
  try {
    checks = (JSON.parse(lastLine) as { checks: VerifyCheckV1[] }).checks;
  } catch {
    throw new KeywardError({
      code: 'VERIFY_FAILED',
      providerId: context.providerId,
      message: redact(
        `The self-test could not run inside ${agent.runtimeName} (exit code ${result.exitCode}): ${(result.stderr || result.stdout).trim().slice(0, 400)}. The agent image needs \`node\` on its PATH.`,
      ),
    });
  }
  const redacted = checks.map((check) => ({ ...check, evidence: redact(check.evidence) }));
  return { passed: redacted.every((check) => check.passed), checks: redacted };
}
