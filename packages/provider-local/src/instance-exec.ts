// exec(name, {container, command, stdin, timeoutSeconds}): what the self-tests run, in one container of an instance.
import { type ExecRequestV2, type ExecResultV2, KeywardError, redact } from '@keyward/core';
import { execInContainer } from './container-exec.js';
import { readInstance } from './instance-state.js';
import type { OperationContext } from './operation-context.js';
import { containerRuntimeName } from './runtime-names.js';

export async function execInInstance(
  context: OperationContext,
  name: string,
  request: ExecRequestV2,
  options: { signal?: AbortSignal } = {},
): Promise<ExecResultV2> {
  const { record } = await readInstance(context, name);
  const container = record.plan.containers.find((candidate) => candidate.name === request.container);
  if (!container) {
    throw new KeywardError({
      code: 'UNKNOWN_CONTAINER',
      providerId: context.providerId,
      message: `Instance "${name}" has no container "${request.container}"; it has: ${record.plan.containers.map((candidate) => candidate.name).join(', ')}.`,
    });
  }
  options.signal?.throwIfAborted();
  const runtimeName = containerRuntimeName(name, container.name);
  try {
    const result = await execInContainer(context.runtime.docker, runtimeName, request.command, {
      ...(request.stdin === undefined ? {} : { stdin: request.stdin }),
      timeoutMs: (request.timeoutSeconds ?? 60) * 1000,
    });
    return {
      exitCode: result.exitCode ?? -1,
      stdout: redact(result.stdout),
      stderr: redact(result.stderr),
      timedOut: false,
    };
  } catch (error) {
    if (/timed out/.test((error as Error).message)) {
      return { exitCode: -1, stdout: '', stderr: redact((error as Error).message), timedOut: true };
    }
    throw new KeywardError({
      code: 'RUNTIME_ERROR',
      providerId: context.providerId,
      message: redact(
        `Running ${request.command[0] ?? '(nothing)'} in ${runtimeName} failed: ${(error as Error).message}. Is the instance running (\`start\`)?`,
      ),
      cause: error,
    });
  }
}
