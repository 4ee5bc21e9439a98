import { type ProgressListenerV2, redact } from '@keyward/core';
import type { LocalProviderSettings } from './local-provider-settings.js';

export type Emit = ((
  step: string,
  status: 'started' | 'succeeded' | 'failed' | 'info',
  message: string,
) => void) & {
  /** Aborting stops before the next step; the caller's rollback then removes what was made. */
  signal?: AbortSignal;
};

/** A failure inside a named step, so rollback messages and `details.step` can name it. */
export class StepError extends Error {
  constructor(
    readonly step: string,
    readonly original: unknown,
  ) {
    super(original instanceof Error ? original.message : String(original));
  }
}

/** Progress events for a listener, redacted and timed by the settings' clock. */
export function createEmitter(
  settings: LocalProviderSettings,
  listener: ProgressListenerV2 | undefined,
  signal?: AbortSignal,
): Emit {
  const emit: Emit = (step, status, message) =>
    listener?.({
      step,
      status,
      message: redact(message),
      time: (settings.clock?.() ?? new Date()).toISOString(),
    });
  if (signal) emit.signal = signal;
  return emit;
}

/** Runs one named step with started/succeeded/failed events; failures carry the step. */
export async function runStep<T>(
  emit: Emit,
  step: string,
  message: string,
  action: () => Promise<T>,
): Promise<T> {
  try {
    emit.signal?.throwIfAborted();
    emit(step, 'started', message);
    const result = await action();
    emit(step, 'succeeded', message);
    return result;
  } catch (error) {
    emit(step, 'failed', `${message}: ${(error as Error).message}`);
    throw error instanceof StepError ? error : new StepError(step, error);
  }
}

/** The step a failure happened in and the error behind it. */
export function failedStep(error: unknown, fallback: string): { step: string; original: unknown } {
  return error instanceof StepError
    ? { step: error.step, original: error.original }
    : { step: fallback, original: error };
}
