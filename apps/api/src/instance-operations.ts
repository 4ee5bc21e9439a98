import { createHash } from 'node:crypto';
import {
  composePlanV2,
  composeRotationV2,
  type DeploymentPlanV2,
  type DetectionResultV2,
  type InstanceDetailV2,
  type InstanceSpec,
  type InstanceSummaryV2,
  type InterruptedOperationRecoveryV2,
  isKeywardError,
  KeywardError,
  type LogLineV2,
  type LogOptionsV2,
  type NetworkMode,
  type PlanWarningV2,
  type ProviderRegistry,
  parseInstanceSpec,
  type RenderedSecretV2,
  redact,
  registerSecret,
  type SecretRedactor,
  type SidecarRotationRequestV2,
  secretRedactor,
  type TargetProviderV2,
  type VerifyReportV2,
  withTimeout,
} from '@keyward/core';
import type { JobManager, JobSummary } from './jobs/job-manager.js';
import type { Logger } from './logger.js';
import { runVerification, type VerifyRequest, verifyOptionsOf } from './verification.js';

export type { VerifyRequest } from './verification.js';

// biome-ignore lint/suspicious/noExplicitAny: targets carry their own option types.
type AnyTargetProvider = TargetProviderV2<any>;

/** `omit`: no values (default). `include`: values in place. `separate`: values in `secretsContent`. */
export type RenderSecretValues = 'omit' | 'include' | 'separate';

export interface RenderResult {
  target: string;
  instance: string;
  secretValues: RenderSecretValues;
  /** The manifests; secret values only with `include`. */
  content: string;
  /** The objects that hold secret values: names, keys and readers, never a value. */
  secrets: RenderedSecretV2[];
  /** With `separate`: the Secrets with their values, from the same plan as `content`. */
  secretsContent?: string;
}

export interface InstanceOperationsOptions {
  registry: ProviderRegistry;
  jobs: JobManager;
  logger: Logger;
  /** How long a target's detect() may take before it counts as unavailable. */
  detectTimeoutMilliseconds?: number;
  randomBytes?: (length: number) => Uint8Array;
  /** Where secret values are registered for redaction. Default: core's process-wide redactor. */
  redactor?: SecretRedactor;
  /** The longest pause between reconciliation passes while something is left. Default 30 s. */
  reconcileRetryMilliseconds?: number;
}

/** The first pause before another reconciliation pass; it doubles up to the maximum. */
const initialRetryMilliseconds = 1000;

export interface TargetStatus {
  id: string;
  displayName?: string;
  capabilities: Omit<AnyTargetProvider['capabilities'], 'networkModes' | 'egress'> & {
    networkModes: NetworkMode[];
    egress: string[];
  };
  detection: DetectionResultV2;
}

export interface AcceptedJob {
  job: JobSummary;
  warnings: PlanWarningV2[];
}

// Field names whose values are secrets in any request body, whatever the provider.
const secretFieldPattern =
  /^(secret|password|apikey|api_key|privatekey|private_key|openkey|open_key|token|value)$/i;

/**
 * Registers every secret-looking value of a request body with the redactor before anything
 * else touches it, so it cannot come back in an error message, a log line or a job event.
 */
export function registerSecretsIn(
  input: unknown,
  redactor: SecretRedactor = secretRedactor,
  depth = 0,
): void {
  if (depth > 20 || input === null || typeof input !== 'object') return;
  for (const [key, value] of Object.entries(input)) {
    if (typeof value === 'string' && secretFieldPattern.test(key)) registerSecret(value, redactor);
    else registerSecretsIn(value, redactor, depth + 1);
  }
}

function notFound(name: string, detail: string): KeywardError {
  return new KeywardError({
    code: 'INSTANCE_NOT_FOUND',
    message: `No instance "${name}" ${detail}; "keyward ls" lists the instances.`,
  });
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * A digest of what a rotation changes (containers, their creation, the sidecars' metadata and
 * exports), taken from the redacted detail: equal before and after means nothing changed.
 */
function stateDigest(detail: InstanceDetailV2): string {
  const facts = {
    createdAt: detail.createdAt,
    containers: detail.containers.map((container) => [container.name, container.image]),
    sidecars: detail.sidecars,
  };
  return createHash('sha256').update(JSON.stringify(facts)).digest('hex');
}

/** Every container of the plan is there and the instance is running or stopped as a whole. */
function isWhole(detail: InstanceDetailV2): boolean {
  return (
    (detail.state === 'running' || detail.state === 'stopped') &&
    detail.containers.every((container) => container.state !== 'missing')
  );
}

/**
 * What the routes and the CLI do, independent of HTTP: deploy and rotation jobs, lifecycle,
 * logs, sidecar views, verify and render, over every registered target. Nothing here knows a
 * particular sidecar: composition, rotation, views and self-tests all go through the providers.
 */
export class InstanceOperations {
  readonly registry: ProviderRegistry;
  readonly jobs: JobManager;
  readonly redactor: SecretRedactor;
  readonly #logger: Logger;
  readonly #detectTimeout: number;
  readonly #randomBytes: ((length: number) => Uint8Array) | undefined;
  /** One deploy or rotation per instance at a time, keyed by `target/name`. */
  readonly #busy = new Map<string, JobSummary>();
  readonly #maximumRetryDelay: number;
  #retryDelay = initialRetryMilliseconds;
  #retryTimer: NodeJS.Timeout | undefined;
  #reconciling: Promise<string[]> | undefined;
  #stopped = false;

  constructor(options: InstanceOperationsOptions) {
    this.registry = options.registry;
    this.jobs = options.jobs;
    this.redactor = options.redactor ?? secretRedactor;
    this.#logger = options.logger;
    this.#detectTimeout = options.detectTimeoutMilliseconds ?? 5000;
    this.#randomBytes = options.randomBytes;
    this.#maximumRetryDelay = Math.max(
      options.reconcileRetryMilliseconds ?? 30_000,
      initialRetryMilliseconds,
    );
  }

  #redact<T>(value: T): T {
    const once = redact(value, this.redactor);
    // The process-wide redactor also knows the patterns and values providers registered.
    return this.redactor === secretRedactor ? once : redact(once);
  }

  async listTargets(): Promise<TargetStatus[]> {
    return Promise.all(
      this.registry.listTargets().map(async (target) => {
        let detection: DetectionResultV2;
        try {
          detection = await withTimeout(
            target.detect(),
            this.#detectTimeout,
            `Target "${target.id}" did not answer within ${this.#detectTimeout} ms`,
          );
        } catch (error) {
          detection = { available: false, reason: messageOf(error) };
        }
        return {
          id: target.id,
          ...(target.displayName ? { displayName: target.displayName } : {}),
          capabilities: {
            ...target.capabilities,
            networkModes: [...target.capabilities.networkModes],
            egress: [...target.capabilities.egress],
          },
          detection: this.#redact(detection),
        };
      }),
    );
  }

  async listInstances(): Promise<{
    instances: InstanceSummaryV2[];
    errors: { target: string; code: string; message: string }[];
  }> {
    const instances: InstanceSummaryV2[] = [];
    const errors: { target: string; code: string; message: string }[] = [];
    await Promise.all(
      this.registry.listTargets().map(async (target) => {
        try {
          instances.push(...(await target.list()));
        } catch (error) {
          errors.push({
            target: target.id,
            code: isKeywardError(error) ? error.code : 'RUNTIME_ERROR',
            message: messageOf(error),
          });
        }
      }),
    );
    instances.sort((a, b) => a.name.localeCompare(b.name) || a.target.localeCompare(b.target));
    return this.#redact({ instances, errors });
  }

  /** Finds which target holds the instance: the given one, or the first that knows it. */
  async locate(
    name: string,
    targetId?: string,
  ): Promise<{ target: AnyTargetProvider; detail: InstanceDetailV2 }> {
    if (targetId) {
      const target = this.registry.getTarget(targetId);
      if (!target) throw notFound(name, `on target "${targetId}" (no such target is installed)`);
      return { target, detail: await target.get(name) };
    }
    const unreachable: string[] = [];
    const targets = this.registry.listTargets();
    let firstFailure: unknown;
    for (const target of targets) {
      try {
        return { target, detail: await target.get(name) };
      } catch (error) {
        if (!isKeywardError(error, 'INSTANCE_NOT_FOUND')) {
          unreachable.push(target.id);
          firstFailure ??= error;
        }
      }
    }
    // No target could even be asked: that is the runtime's problem, not a missing instance.
    if (targets.length > 0 && unreachable.length === targets.length) throw firstFailure;
    throw notFound(
      name,
      unreachable.length > 0
        ? `on any reachable target (could not ask: ${unreachable.join(', ')})`
        : 'on any installed target',
    );
  }

  async getInstance(name: string, targetId?: string): Promise<InstanceDetailV2> {
    return this.#redact((await this.locate(name, targetId)).detail);
  }

  /** Validates and composes synchronously (errors come back as 4xx), then applies in a job. */
  async deploy(body: unknown, options: { replace?: boolean } = {}): Promise<AcceptedJob> {
    registerSecretsIn(body, this.redactor);
    const spec = parseInstanceSpec(body);
    const target = this.registry.requireTarget(spec.target);
    const key = `${target.id}/${spec.name}`;
    this.#assertIdle(key, spec.name, 'deploy');
    await this.#finishPendingRollbacks(target.id, spec.name);
    if (!options.replace) {
      const existing = await target.get(spec.name).then(
        () => true,
        (error: unknown) => {
          if (isKeywardError(error, 'INSTANCE_NOT_FOUND')) return false;
          throw error;
        },
      );
      if (existing) {
        throw new KeywardError({
          code: 'INSTANCE_EXISTS',
          providerId: target.id,
          message: `Instance "${spec.name}" already exists on target "${target.id}"; delete it first, or deploy with replace=true to apply the spec over it.`,
        });
      }
    }
    const plan = await this.#compose(spec, target);
    const job = this.jobs.create('deploy', spec.name, target.id, { replace: options.replace === true });
    this.#busy.set(key, job);
    for (const warning of plan.warnings) this.jobs.log(job.id, `Warning ${warning.code}: ${warning.message}`);
    this.#logger.log('info', 'deploy accepted', { job: job.id, instance: spec.name, target: target.id });
    void this.#run(job, key, () =>
      target.apply(plan, { onProgress: (event) => this.#progress(job.id, event) }),
    );
    return { job, warnings: this.#redact(plan.warnings) };
  }

  async #compose(spec: InstanceSpec, target: AnyTargetProvider): Promise<DeploymentPlanV2> {
    return composePlanV2({
      spec,
      sidecars: this.registry,
      target,
      redactor: this.redactor,
      ...(this.#randomBytes ? { randomBytes: this.#randomBytes } : {}),
    });
  }

  #progress(jobId: string, event: Parameters<JobManager['progress']>[1]): void {
    this.jobs.progress(jobId, event);
    this.#logger.log('info', 'progress', {
      job: jobId,
      step: event.step,
      status: event.status,
      detail: event.message,
    });
  }

  async #run(job: JobSummary, key: string, operation: () => Promise<InstanceDetailV2>): Promise<void> {
    try {
      const detail = await operation();
      this.jobs.succeed(job.id, this.#redact(detail));
      this.#logger.log('info', `${job.kind} succeeded`, { job: job.id, instance: job.instance });
    } catch (error) {
      if (isKeywardError(error) && error.details?.['rollback'] === 'incomplete') {
        // The target could not undo its work (its runtime stopped answering): done once it answers.
        this.jobs.fail(
          job.id,
          new KeywardError({
            code: error.code,
            ...(error.providerId ? { providerId: error.providerId } : {}),
            message: `${error.message} This server retries until the runtime answers; the job's "reconciliation" records when it is done.`,
            ...(error.details ? { details: error.details } : {}),
            cause: error,
          }),
          { rollbackPending: true },
        );
        this.#logger.log('error', `${job.kind} failed, rollback pending`, {
          job: job.id,
          instance: job.instance,
          error,
        });
        this.#reconcileLater();
      } else {
        this.jobs.fail(job.id, error);
        this.#logger.log('error', `${job.kind} failed`, { job: job.id, instance: job.instance, error });
      }
    } finally {
      if (this.#busy.get(key)?.id === job.id) this.#busy.delete(key);
    }
  }

  #assertIdle(key: string, name: string, wanted: 'deploy' | 'rotate'): void {
    const running = this.#busy.get(key);
    if (!running) return;
    const what = running.kind === 'rotate' ? 'A sidecar change (rotation)' : 'A deploy';
    throw new KeywardError({
      code: wanted === 'rotate' || running.kind === 'rotate' ? 'ROTATION_IN_PROGRESS' : 'INSTANCE_EXISTS',
      message: `${what} is already running for instance "${name}" (job ${running.id}); wait for it to finish.`,
      details: { jobId: running.id },
    });
  }

  /**
   * One reconciliation pass. Jobs a stopped process left running: a deploy is succeeded when the
   * target has the instance whole, else whatever is there is deleted (failed, rolled back); a
   * rotation is first recovered by the target (`recoverInterrupted`: the old containers back, or
   * the new ones finished), then its state tells what happened (whole and changed → completed,
   * whole and unchanged → the old credentials are in place, not whole → incomplete). Failed jobs
   * whose rollback waited for the runtime (`rollbackPending`) get it done. A job whose target
   * cannot be asked yet is left for the next pass. Returns the jobs left.
   */
  async reconcileInterrupted(): Promise<string[]> {
    const pending: string[] = [];
    const work = [
      ...this.jobs.interrupted().map((entry) => ({ ...entry, finish: true })),
      ...this.jobs.pendingRollbacks().map((entry) => ({ ...entry, finish: false })),
    ];
    for (const { job, context, finish } of work) {
      const key = `${job.target}/${job.instance}`;
      if (this.#busy.has(key)) {
        pending.push(job.id);
        continue;
      }
      this.#busy.set(key, job);
      try {
        if (finish) await this.#reconcile(job, context);
        else await this.#finishRollback(job, context);
      } catch (error) {
        pending.push(job.id);
        this.#logger.log('warn', 'reconciliation postponed', { job: job.id, instance: job.instance, error });
      } finally {
        if (this.#busy.get(key)?.id === job.id) this.#busy.delete(key);
      }
    }
    return pending;
  }

  /**
   * Reconciles now, then again while something is left (after 1 s, doubling up to
   * `reconcileRetryMilliseconds`), until `stopReconciliation`. Passes never overlap.
   */
  async reconcile(): Promise<string[]> {
    if (this.#reconciling) return this.#reconciling;
    this.#reconciling = this.reconcileInterrupted().finally(() => {
      this.#reconciling = undefined;
    });
    const pending = await this.#reconciling;
    if (pending.length > 0) this.#reconcileLater();
    else this.#retryDelay = initialRetryMilliseconds;
    return pending;
  }

  #reconcileLater(): void {
    if (this.#retryTimer || this.#stopped) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      void this.reconcile();
    }, this.#retryDelay);
    this.#retryTimer.unref();
    this.#retryDelay = Math.min(this.#retryDelay * 2, this.#maximumRetryDelay);
  }

  /** No more reconciliation passes (the server is closing). */
  stopReconciliation(): void {
    this.#stopped = true;
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
  }

  /**
   * Before a new job on an instance: the rollback an earlier job of it left to do is done first,
   * or the new job is refused (it would be undone by that rollback later).
   */
  async #finishPendingRollbacks(targetId: string, name: string): Promise<void> {
    const key = `${targetId}/${name}`;
    for (const { job, context } of this.jobs.pendingRollbacks()) {
      if (job.target !== targetId || job.instance !== name) continue;
      this.#assertIdle(key, name, job.kind);
      this.#busy.set(key, job);
      try {
        await this.#finishRollback(job, context);
      } catch (error) {
        throw new KeywardError({
          code: isKeywardError(error) ? error.code : 'RUNTIME_ERROR',
          message: `The ${job.kind === 'deploy' ? 'deploy' : 'sidecar change'} job ${job.id} of "${name}" left a rollback to do, which could not be done yet (${messageOf(error)}); it runs again once the runtime answers: retry then.`,
          details: { jobId: job.id },
          cause: error,
        });
      } finally {
        if (this.#busy.get(key)?.id === job.id) this.#busy.delete(key);
      }
    }
  }

  /** The rollback a failed job left to do because its runtime stopped answering. */
  async #finishRollback(job: JobSummary, context: Record<string, unknown>): Promise<void> {
    const target = this.registry.getTarget(job.target);
    if (!target) throw new Error(`target "${job.target}" is not installed`);
    if (job.kind === 'deploy') {
      try {
        await target.delete(job.instance, { removeVolumes: false });
      } catch (error) {
        if (!isKeywardError(error, 'INSTANCE_NOT_FOUND')) throw error;
      }
      this.jobs.settleRollback(job.id, {
        outcome: 'rolled-back',
        message: `The runtime answered again: everything labelled with "${job.instance}" that the failed deploy had made was removed (data volumes kept).`,
      });
      this.#logger.log('info', 'reconciled: deploy rolled back', { job: job.id, instance: job.instance });
      return;
    }
    const recovery = await target.recoverInterrupted?.(job.instance, {
      onProgress: (event) =>
        this.#logger.log('info', 'progress', { job: job.id, step: event.step, status: event.status }),
    });
    const detail = await target.get(job.instance);
    const whole = isWhole(detail);
    const outcome = !whole
      ? 'incomplete'
      : this.#rotationChanged(detail, context, recovery)
        ? 'completed'
        : 'unchanged';
    this.jobs.settleRollback(job.id, {
      outcome,
      message: `The runtime answered again: ${recovery?.message ?? `the instance is ${detail.state}.`}${whole ? '' : ` The instance is left ${detail.state}: check it with "keyward get ${job.instance}" and redeploy it to be sure of its state.`}`,
    });
    this.#logger.log('info', `reconciled: rotation ${outcome}`, { job: job.id, instance: job.instance });
  }

  /** What the target's recovery did decides; without one (or with nothing to do), the state digest. */
  #rotationChanged(
    detail: InstanceDetailV2,
    context: Record<string, unknown>,
    recovery: InterruptedOperationRecoveryV2 | undefined,
  ): boolean {
    return recovery && recovery.outcome !== 'none'
      ? recovery.outcome === 'completed'
      : stateDigest(this.#redact(detail)) !== context['stateBefore'];
  }

  async #reconcile(job: JobSummary, context: Record<string, unknown>): Promise<void> {
    const target = this.registry.getTarget(job.target);
    const what = job.kind === 'deploy' ? 'deploy' : 'sidecar change';
    const stopped = `The keyward process running this ${what} of "${job.instance}" stopped before it ended`;
    if (!target) {
      this.jobs.reconcile(
        job.id,
        {
          outcome: 'incomplete',
          message: `${stopped}; target "${job.target}" is no longer installed, so nothing was checked.`,
        },
        {
          error: new KeywardError({
            code: job.kind === 'deploy' ? 'DEPLOY_FAILED' : 'ROTATION_FAILED',
            message: `${stopped}; target "${job.target}" is not installed: install it and check the instance.`,
          }),
        },
      );
      return;
    }
    // A rotation the target can recover: its old containers back, or its new ones finished.
    let recovery: InterruptedOperationRecoveryV2 | undefined;
    if (job.kind === 'rotate' && target.recoverInterrupted) {
      try {
        recovery = await target.recoverInterrupted(job.instance, {
          onProgress: (event) => this.#progress(job.id, event),
        });
      } catch (error) {
        if (!isKeywardError(error, 'INSTANCE_NOT_FOUND')) throw error;
      }
    }
    let detail: InstanceDetailV2 | undefined;
    try {
      detail = await target.get(job.instance);
    } catch (error) {
      if (!isKeywardError(error, 'INSTANCE_NOT_FOUND')) throw error;
    }
    if (job.kind === 'deploy') {
      if (detail && isWhole(detail)) {
        this.jobs.reconcile(
          job.id,
          {
            outcome: 'completed',
            message: `${stopped}; the target has the instance whole (${detail.state}), so the deploy is done.`,
          },
          { result: this.#redact(detail) },
        );
        this.#logger.log('info', 'reconciled: deploy completed', { job: job.id, instance: job.instance });
        return;
      }
      try {
        await target.delete(job.instance, { removeVolumes: false });
      } catch (error) {
        if (!isKeywardError(error, 'INSTANCE_NOT_FOUND')) throw error;
      }
      this.jobs.reconcile(
        job.id,
        {
          outcome: 'rolled-back',
          message: `${stopped}; the instance was ${detail ? `left ${detail.state}` : 'not complete'}, so everything labelled with it was removed (data volumes kept).`,
        },
        {
          error: new KeywardError({
            code: 'DEPLOY_FAILED',
            message: `${stopped}; it was rolled back: nothing of "${job.instance}" is left. Deploy it again.`,
          }),
        },
      );
      this.#logger.log('warn', 'reconciled: deploy rolled back', { job: job.id, instance: job.instance });
      return;
    }
    if (detail && isWhole(detail)) {
      const changed = this.#rotationChanged(detail, context, recovery);
      const found = recovery && recovery.outcome !== 'none' ? ` ${recovery.message}` : '';
      if (changed) {
        this.jobs.reconcile(
          job.id,
          {
            outcome: 'completed',
            message: `${stopped}; the target has the instance whole in its new state, so the change is done.${found}`,
          },
          { result: this.#redact(detail) },
        );
      } else {
        this.jobs.reconcile(
          job.id,
          {
            outcome: 'unchanged',
            message: `${stopped}; the target has the instance whole and unchanged: the previous credentials are still in place.${found}`,
          },
          {
            error: new KeywardError({
              code: 'ROTATION_FAILED',
              message: `${stopped}; nothing changed, the previous credentials are still in place. Make the change again.`,
            }),
          },
        );
      }
      this.#logger.log('info', `reconciled: rotation ${changed ? 'completed' : 'unchanged'}`, {
        job: job.id,
        instance: job.instance,
      });
      return;
    }
    this.jobs.reconcile(
      job.id,
      {
        outcome: 'incomplete',
        message: `${stopped}; the target left the instance ${detail ? detail.state : 'without its agent'}: check it with "keyward get ${job.instance}" and redeploy the instance to be sure of its state.`,
      },
      {
        error: new KeywardError({
          code: 'ROTATION_FAILED',
          message: `${stopped}; the instance was left ${detail ? detail.state : 'without its agent'}.`,
        }),
      },
    );
    this.#logger.log('warn', 'reconciled: rotation incomplete', { job: job.id, instance: job.instance });
  }

  /** The job of a deploy or rotation running on the instance, if any. */
  runningJob(target: string, name: string): JobSummary | undefined {
    return this.#busy.get(`${target}/${name}`);
  }

  async lifecycle(
    name: string,
    action: 'start' | 'stop' | 'restart',
    targetId?: string,
  ): Promise<{ name: string; target: string; status: 'running' | 'stopped' }> {
    const { target } = await this.locate(name, targetId);
    // Stopping or restarting under a running deploy or rotation would break its rollback.
    this.#assertIdle(`${target.id}/${name}`, name, 'deploy');
    await target[action](name, {
      onProgress: (event) =>
        this.#logger.log('info', 'progress', { instance: name, step: event.step, status: event.status }),
    });
    this.#logger.log('info', `${action} done`, { instance: name, target: target.id });
    return { name, target: target.id, status: action === 'stop' ? 'stopped' : 'running' };
  }

  async remove(
    name: string,
    options: { removeVolumes?: boolean; target?: string } = {},
  ): Promise<{ name: string; target: string; status: 'deleted' }> {
    const { target } = await this.locate(name, options.target);
    const key = `${target.id}/${name}`;
    this.#assertIdle(key, name, 'deploy');
    await target.delete(name, { removeVolumes: options.removeVolumes ?? true });
    this.#logger.log('info', 'delete done', { instance: name, target: target.id });
    return { name, target: target.id, status: 'deleted' };
  }

  async logs(
    name: string,
    options: Omit<LogOptionsV2, 'signal'> & { signal?: AbortSignal; target?: string },
  ): Promise<AsyncIterable<LogLineV2>> {
    const { target } = await this.locate(name, options.target);
    const { target: _ignored, ...logOptions } = options;
    const source = target.logs(name, logOptions);
    const clean = <T>(value: T) => this.#redact(value);
    return (async function* () {
      for await (const line of source) yield clean(line);
    })();
  }

  /**
   * A sidecar's page: its provider's `view.build` over the stored metadata and exports (never a
   * secret value), or the raw metadata and exports for a provider without a view.
   */
  async sidecarView(name: string, providerId: string, targetId?: string): Promise<Record<string, unknown>> {
    const provider = this.registry.getSidecar(providerId);
    const { target, detail } = await this.locate(name, targetId);
    const sidecar = detail.sidecars.find((candidate) => candidate.providerId === providerId);
    const running = this.runningJob(target.id, name);
    const rotation = running?.kind === 'rotate' ? { rotationJobId: running.id } : {};
    if (!sidecar) {
      if (provider?.view?.absent) return this.#redact({ ...provider.view.absent, ...rotation });
      throw new KeywardError({
        code: 'NOT_FOUND',
        providerId,
        message: `Instance "${name}" has no sidecar "${providerId}"; it has: ${detail.sidecars.map((item) => item.providerId).join(', ') || 'none'}.`,
      });
    }
    const state = { metadata: sidecar.metadata, exports: sidecar.exports ?? {} };
    let view: Record<string, unknown>;
    if (provider?.view) {
      try {
        view = provider.view.build(state);
      } catch (error) {
        throw new KeywardError({
          code: 'PROVIDER_CONTRACT_VIOLATION',
          providerId,
          message: `Sidecar "${providerId}" could not build its view of instance "${name}" (${messageOf(error)}); this is a bug in sidecar "${providerId}".`,
          cause: error,
        });
      }
    } else {
      view = { providerId, ...state };
    }
    return this.#redact({ ...view, ...rotation });
  }

  /**
   * Lets the sidecar's provider build its new part from the current state (the change validated
   * by its change schema; dependents follow) and hands it to the target in a job. Everything up
   * to the job runs before the 202, so bad input is a 400.
   */
  async rotate(name: string, providerId: string, change: unknown, targetId?: string): Promise<AcceptedJob> {
    registerSecretsIn(change, this.redactor);
    const provider = this.registry.requireSidecar(providerId);
    if (!provider.rotation) {
      throw new KeywardError({
        code: 'ROTATION_NOT_SUPPORTED',
        providerId,
        message: `Sidecar "${providerId}" does not support changes after install.`,
      });
    }
    const { target, detail } = await this.locate(name, targetId);
    if (!detail.sidecars.some((sidecar) => sidecar.providerId === providerId)) {
      throw new KeywardError({
        code: 'INVALID_INPUT',
        providerId,
        message: `Sidecar "${providerId}" is not enabled on instance "${name}"; adding a sidecar after install is not supported, redeploy the instance with it.`,
      });
    }
    const readSidecarState = target.readSidecarState?.bind(target);
    const rotateSecrets = target.rotateSecrets?.bind(target);
    if (!target.capabilities.rotation || !readSidecarState || !rotateSecrets) {
      throw new KeywardError({
        code: 'UNSUPPORTED_CAPABILITY',
        providerId: target.id,
        message: `Target "${target.id}" cannot change sidecars after install.`,
      });
    }
    const key = `${target.id}/${name}`;
    this.#assertIdle(key, name, 'rotate');
    await this.#finishPendingRollbacks(target.id, name);
    this.#assertIdle(key, name, 'rotate');
    // Claim the instance before the first await, so a second request gets the 409.
    const job = this.jobs.create('rotate', name, target.id, {
      providerId,
      stateBefore: stateDigest(this.#redact(detail)),
    });
    this.#busy.set(key, job);
    let request: SidecarRotationRequestV2;
    try {
      request = await composeRotationV2({
        spec: parseInstanceSpec(detail.redactedSpec),
        providerId,
        change,
        sidecars: this.registry,
        target,
        readState: async (id) => {
          const state = await readSidecarState(name, id);
          for (const value of Object.values(state.secrets)) registerSecret(value, this.redactor);
          return state;
        },
        redactor: this.redactor,
        ...(this.#randomBytes ? { randomBytes: this.#randomBytes } : {}),
      });
    } catch (error) {
      this.jobs.fail(job.id, error);
      this.#busy.delete(key);
      throw error;
    }
    this.#logger.log('info', 'rotation accepted', {
      job: job.id,
      instance: name,
      sidecar: providerId,
      followers: request.parts.slice(1).map((part) => part.providerId),
    });
    void this.#run(job, key, () =>
      rotateSecrets(name, request, { onProgress: (event) => this.#progress(job.id, event) }),
    );
    return { job, warnings: [] };
  }

  /**
   * The self-test: the target's own checks, then every sidecar's (in dependency order), each run
   * by the target inside the instance and judged by the provider that made it.
   */
  async verify(name: string, body: VerifyRequest, targetId?: string): Promise<VerifyReportV2> {
    registerSecretsIn(body, this.redactor);
    const { target, detail } = await this.locate(name, targetId);
    const report = await runVerification({
      target,
      sidecars: this.registry,
      detail,
      options: verifyOptionsOf(detail, this.registry, body),
    });
    this.#logger.log('info', 'verify done', {
      instance: name,
      passed: report.passed,
      failed: report.checks
        .filter((check) => !check.passed)
        .map((check) => `${check.providerId}/${check.name}`),
    });
    return this.#redact(report);
  }

  #renderer(target: AnyTargetProvider): NonNullable<AnyTargetProvider['render']> {
    if (!target.capabilities.render || !target.render) {
      throw new KeywardError({
        code: 'UNSUPPORTED_CAPABILITY',
        providerId: target.id,
        message: `Target "${target.id}" cannot render manifests; only targets with manifests (such as k8s) can.`,
      });
    }
    return target.render.bind(target);
  }

  /**
   * The plan's manifests with secret values as asked: `omit` (default; safe to commit, redacted
   * once more), `include` (values in place) or `separate` (`content` without values and
   * `secretsContent` with the Secrets of the same plan, so the two fit together).
   */
  async #renderPlan(
    target: AnyTargetProvider,
    plan: DeploymentPlanV2,
    secretValues: RenderSecretValues,
  ): Promise<Omit<RenderResult, 'target' | 'instance'>> {
    const render = this.#renderer(target);
    if (!target.renderedSecrets) {
      if (secretValues !== 'omit') {
        throw new KeywardError({
          code: 'UNSUPPORTED_CAPABILITY',
          providerId: target.id,
          message: `Target "${target.id}" cannot render secret values apart from its manifests; render without secretValues (the default, values redacted).`,
        });
      }
      // A target that does not declare what it omits may print values: redact them.
      return { secretValues, content: this.#redact(await render(plan)), secrets: [] };
    }
    const secrets = this.#redact(await target.renderedSecrets(plan));
    if (secretValues === 'include') {
      return { secretValues, content: await render(plan, { secretValues: 'include' }), secrets };
    }
    const content = this.#redact(await render(plan, { secretValues: 'omit' }));
    if (secretValues === 'omit') return { secretValues, content, secrets };
    return { secretValues, content, secrets, secretsContent: await render(plan, { secretValues: 'only' }) };
  }

  /** Manifests of a spec that is not deployed (a GitOps user's file). */
  async renderSpec(body: unknown, secretValues: RenderSecretValues = 'omit'): Promise<RenderResult> {
    registerSecretsIn(body, this.redactor);
    const spec = parseInstanceSpec(body);
    const target = this.registry.requireTarget(spec.target);
    this.#renderer(target);
    const plan = await this.#compose(spec, target);
    return {
      target: target.id,
      instance: spec.name,
      ...(await this.#renderPlan(target, plan, secretValues)),
    };
  }

  /**
   * Manifests of a deployed instance, recomposed from the spec the target persisted. Always
   * without values: a new composition makes new keys, which are not the running instance's.
   */
  async renderInstance(name: string, targetId?: string): Promise<RenderResult> {
    const { target, detail } = await this.locate(name, targetId);
    this.#renderer(target);
    let plan: DeploymentPlanV2;
    try {
      plan = await this.#compose(parseInstanceSpec(detail.redactedSpec), target);
    } catch (error) {
      if (
        !isKeywardError(error, 'INVALID_PROVIDER_CONFIG') &&
        !isKeywardError(error, 'INVALID_INSTANCE_SPEC')
      ) {
        throw error;
      }
      throw new KeywardError({
        code: 'UNSUPPORTED_CAPABILITY',
        providerId: error.providerId ?? target.id,
        message: `The stored spec of "${name}" has its secrets removed, so it cannot be composed again (${error.message}); render the instance spec file instead (POST /api/render, "keyward render -f").`,
      });
    }
    return { target: target.id, instance: name, ...(await this.#renderPlan(target, plan, 'omit')) };
  }
}
