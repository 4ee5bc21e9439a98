import { randomUUID } from 'node:crypto';
import {
  isKeywardError,
  type ProgressEventV1,
  redact,
  type SecretRedactor,
  secretRedactor,
} from '@keyward/core';
import type { JobStore } from './job-store.js';

export type JobKind = 'deploy' | 'rotate';
export type JobStatus = 'running' | 'succeeded' | 'failed';

export type JobEventBody =
  | { type: 'progress'; step: string; status: ProgressEventV1['status']; message: string }
  | { type: 'log'; message: string }
  | { type: 'result'; result: unknown }
  | { type: 'error'; error: { code: string; message: string; step?: string } }
  /** Only in a replay: events dropped from the middle of a long job to keep the buffer bounded. */
  | { type: 'gap'; dropped: number };

export type JobEvent = JobEventBody & { sequence: number; time: string };

export interface JobSummary {
  id: string;
  kind: JobKind;
  instance: string;
  target: string;
  status: JobStatus;
  createdAt: string;
  finishedAt?: string;
  /** The step that failed, when the job failed during one. */
  failedStep?: string;
  error?: { code: string; message: string; step?: string };
  /**
   * Set when the process running the job stopped before it ended and a later start finished it,
   * or when the job failed with its rollback left to do (the runtime stopped answering) and that
   * was done once the runtime answered again.
   */
  reconciliation?: JobReconciliation;
}

/**
 * What start-up reconciliation found for a job its process left running. Deploy: `completed`
 * (the target had the instance whole) or `rolled-back` (what was there was deleted). Rotation:
 * `completed` (the instance is whole in its new state), `unchanged` (whole in its old state: the
 * old credentials are in place) or `incomplete` (the target left it partial; see the message).
 */
export interface JobReconciliation {
  outcome: 'completed' | 'rolled-back' | 'unchanged' | 'incomplete';
  message: string;
  time: string;
}

export interface JobManagerOptions {
  /** The first events of a job are always kept, so a late subscriber sees how it began. */
  headCapacity?: number;
  /** The most recent events kept after the head. */
  tailCapacity?: number;
  /** Finished jobs kept for late subscribers; the oldest finished job goes first. */
  maximumJobs?: number;
  now?: () => Date;
  /** Also redacts with this one (the app's), on top of core's process-wide redactor. */
  redactor?: SecretRedactor;
  /**
   * Where jobs and their events outlive the process (`SqliteJobStore`). The jobs it holds are
   * loaded at construction; everything written to it is redacted first.
   */
  store?: JobStore;
  /** Whether a process is alive, to tell an interrupted job from one another process runs. */
  isProcessAlive?: (pid: number) => boolean;
  /** The process id recorded as the jobs' owner. Default: this process's. */
  processId?: number;
  /**
   * Called when the store could not record part of a running job (a full disk): the job goes on
   * in memory. Called once per job until a write of it succeeds again.
   */
  onStoreError?: (error: unknown, job: JobSummary) => void;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

interface JobRecord {
  summary: JobSummary;
  head: JobEvent[];
  tail: JobEvent[];
  dropped: number;
  nextSequence: number;
  lastStartedStep: string | undefined;
  waiters: Set<() => void>;
  ownerPid: number;
  ownerRun: string;
  context: Record<string, unknown>;
  /** A write of this job to the store failed and was reported; reset by the next that succeeds. */
  storeFailed: boolean;
}

/**
 * In-memory jobs with a bounded event buffer each. Every event is redacted on
 * its way in, so neither a replay nor a live subscriber can see a secret.
 */
export class JobManager {
  readonly #jobs = new Map<string, JobRecord>();
  readonly #headCapacity: number;
  readonly #tailCapacity: number;
  readonly #maximumJobs: number;
  readonly #now: () => Date;
  readonly #redactor: SecretRedactor;
  readonly #store: JobStore | undefined;
  readonly #isProcessAlive: (pid: number) => boolean;
  readonly #processId: number;
  readonly #onStoreError: ((error: unknown, job: JobSummary) => void) | undefined;
  readonly #run = randomUUID();

  constructor(options: JobManagerOptions = {}) {
    this.#headCapacity = options.headCapacity ?? 200;
    this.#tailCapacity = options.tailCapacity ?? 1000;
    this.#maximumJobs = options.maximumJobs ?? 200;
    this.#now = options.now ?? (() => new Date());
    this.#redactor = options.redactor ?? secretRedactor;
    this.#store = options.store;
    this.#isProcessAlive = options.isProcessAlive ?? processAlive;
    this.#processId = options.processId ?? process.pid;
    this.#onStoreError = options.onStoreError;
    for (const stored of this.#store?.load(this.#maximumJobs) ?? []) {
      const head = stored.events.filter((event) => event.sequence <= this.#headCapacity);
      const tail = stored.events.filter((event) => event.sequence > this.#headCapacity);
      this.#jobs.set(stored.summary.id, {
        summary: stored.summary,
        head,
        tail,
        dropped: 0,
        nextSequence: stored.nextSequence,
        lastStartedStep: undefined,
        waiters: new Set(),
        ownerPid: stored.ownerPid,
        ownerRun: stored.ownerRun,
        context: stored.context,
        storeFailed: false,
      });
    }
  }

  /** Whether jobs outlive this process. */
  get persistent(): boolean {
    return this.#store !== undefined;
  }

  #redact<T>(value: T): T {
    const once = redact(value);
    return this.#redactor === secretRedactor ? once : redact(once, this.#redactor);
  }

  /**
   * A write of a running job to the store. A failure (a full disk) never stops the job, which
   * goes on in memory: it is reported once, and the store catches up with the next write that
   * succeeds (a restarted server reconciles a job whose end was not recorded).
   */
  #persist(record: JobRecord, write: (store: JobStore) => void): void {
    if (!this.#store) return;
    try {
      write(this.#store);
      record.storeFailed = false;
    } catch (error) {
      if (record.storeFailed) return;
      record.storeFailed = true;
      this.#onStoreError?.(error, { ...record.summary });
    }
  }

  /**
   * `context`: non-secret facts a later process needs to reconcile the job if this one stops
   * before it ends (stored redacted).
   */
  create(kind: JobKind, instance: string, target: string, context: Record<string, unknown> = {}): JobSummary {
    this.#evict();
    const summary: JobSummary = {
      id: `${kind}-${randomUUID()}`,
      kind,
      instance,
      target,
      status: 'running',
      createdAt: this.#now().toISOString(),
    };
    // Recorded before anything starts: a job the store cannot hold could not be reconciled after
    // a crash, so it is refused (the error says why) and nothing is started.
    this.#store?.insertJob({
      summary,
      nextSequence: 1,
      ownerPid: this.#processId,
      ownerRun: this.#run,
      context: this.#redact(context),
    });
    this.#jobs.set(summary.id, {
      summary,
      head: [],
      tail: [],
      dropped: 0,
      nextSequence: 1,
      lastStartedStep: undefined,
      waiters: new Set(),
      ownerPid: this.#processId,
      ownerRun: this.#run,
      context: this.#redact(context),
      storeFailed: false,
    });
    return { ...summary };
  }

  get(id: string): JobSummary | undefined {
    const record = this.#jobs.get(id);
    return record ? { ...record.summary } : undefined;
  }

  list(): JobSummary[] {
    return [...this.#jobs.values()].map((record) => ({ ...record.summary }));
  }

  progress(id: string, event: ProgressEventV1): void {
    const record = this.#jobs.get(id);
    if (!record) return;
    if (event.status === 'started') record.lastStartedStep = event.step;
    if (event.status === 'succeeded' && record.lastStartedStep === event.step)
      record.lastStartedStep = undefined;
    if (event.status === 'failed' && record.summary.failedStep === undefined) {
      record.summary.failedStep = event.step;
      this.#persist(record, (store) => store.updateJob(record.summary));
    }
    this.#append(record, {
      type: 'progress',
      step: event.step,
      status: event.status,
      message: event.message,
    });
  }

  log(id: string, message: string): void {
    const record = this.#jobs.get(id);
    if (record) this.#append(record, { type: 'log', message });
  }

  succeed(id: string, result: unknown): void {
    const record = this.#jobs.get(id);
    if (record?.summary.status !== 'running') return;
    record.summary.status = 'succeeded';
    record.summary.finishedAt = this.#now().toISOString();
    this.#persist(record, (store) => store.updateJob(record.summary));
    this.#append(record, { type: 'result', result });
  }

  /** `context`: facts merged into the job's context (`rollbackPending: true`, see `pendingRollbacks`). */
  fail(id: string, error: unknown, context?: Record<string, unknown>): void {
    const record = this.#jobs.get(id);
    if (record?.summary.status !== 'running') return;
    if (context) record.context = { ...record.context, ...this.#redact(context) };
    const step = record.summary.failedStep ?? record.lastStartedStep;
    const described = {
      code: isKeywardError(error) ? error.code : 'INTERNAL_ERROR',
      message: error instanceof Error ? error.message : String(error),
      ...(step ? { step } : {}),
    };
    record.summary.status = 'failed';
    record.summary.finishedAt = this.#now().toISOString();
    if (step) record.summary.failedStep = step;
    record.summary.error = this.#redact(described);
    this.#persist(record, (store) => store.updateJob(record.summary, context ? record.context : undefined));
    this.#append(record, { type: 'error', error: described });
  }

  /**
   * Running jobs whose process is gone (a crash or a kill): start-up reconciliation finishes
   * them. A job another live process runs is not ours to touch.
   */
  interrupted(): { job: JobSummary; context: Record<string, unknown> }[] {
    return [...this.#jobs.values()]
      .filter(
        (record) =>
          record.summary.status === 'running' &&
          record.ownerRun !== this.#run &&
          // Our own pid with another run id is an earlier process that had it (pid 1 in a container).
          (record.ownerPid === this.#processId || !this.#isProcessAlive(record.ownerPid)),
      )
      .map((record) => ({ job: { ...record.summary }, context: { ...record.context } }));
  }

  /**
   * Failed jobs whose rollback was left to do (`rollbackPending` in their context: the runtime
   * stopped answering), of this process or of one that is gone.
   */
  pendingRollbacks(): { job: JobSummary; context: Record<string, unknown> }[] {
    return [...this.#jobs.values()]
      .filter(
        (record) =>
          record.summary.status === 'failed' &&
          record.context['rollbackPending'] === true &&
          (record.ownerRun === this.#run ||
            record.ownerPid === this.#processId ||
            !this.#isProcessAlive(record.ownerPid)),
      )
      .map((record) => ({ job: { ...record.summary }, context: { ...record.context } }));
  }

  /** Records the rollback a failed job left to do as done (see `pendingRollbacks`). */
  settleRollback(id: string, reconciliation: Omit<JobReconciliation, 'time'>): void {
    const record = this.#jobs.get(id);
    if (record?.summary.status !== 'failed' || record.context['rollbackPending'] !== true) return;
    record.summary.reconciliation = this.#redact({ ...reconciliation, time: this.#now().toISOString() });
    record.context = { ...record.context, rollbackPending: false };
    this.#persist(record, (store) => store.updateJob(record.summary, record.context));
  }

  /** Records what reconciliation found, then ends the job with `result` (completed) or `error`. */
  reconcile(
    id: string,
    reconciliation: Omit<JobReconciliation, 'time'>,
    end: { result: unknown } | { error: unknown },
  ): void {
    const record = this.#jobs.get(id);
    if (record?.summary.status !== 'running') return;
    record.summary.reconciliation = this.#redact({ ...reconciliation, time: this.#now().toISOString() });
    this.#append(record, {
      type: 'progress',
      step: 'reconcile',
      status: reconciliation.outcome === 'incomplete' ? 'failed' : 'succeeded',
      message: reconciliation.message,
    });
    if ('result' in end) this.succeed(id, end.result);
    else this.fail(id, end.error);
  }

  /**
   * Every event of the job from the first (or after `afterSequence`, for a
   * reconnecting client), then live ones, ending after the result or error.
   */
  async *follow(
    id: string,
    options: { afterSequence?: number; signal?: AbortSignal } = {},
  ): AsyncGenerator<JobEvent> {
    const record = this.#jobs.get(id);
    if (!record) return;
    let after = options.afterSequence ?? 0;
    for (;;) {
      const pending = this.#eventsAfter(record, after);
      if (pending.length === 0) {
        // Checked synchronously right before waiting, so no event can slip in between.
        if (record.summary.status !== 'running' || options.signal?.aborted) return;
        await new Promise<void>((resolve) => {
          const wake = () => {
            record.waiters.delete(wake);
            options.signal?.removeEventListener('abort', wake);
            resolve();
          };
          record.waiters.add(wake);
          options.signal?.addEventListener('abort', wake, { once: true });
        });
        continue;
      }
      for (const event of pending) {
        yield event;
        after = event.sequence;
        if (event.type === 'result' || event.type === 'error') return;
      }
    }
  }

  #eventsAfter(record: JobRecord, after: number): JobEvent[] {
    const head = record.head.filter((event) => event.sequence > after);
    const tail = record.tail.filter((event) => event.sequence > after);
    const firstTail = tail[0];
    const lastSeen = Math.max(after, record.head.at(-1)?.sequence ?? 0);
    // Events between what the client saw and the tail's start fell out of the buffer.
    const dropped = firstTail ? firstTail.sequence - lastSeen - 1 : 0;
    const gap: JobEvent[] =
      dropped > 0 ? [{ type: 'gap', dropped, sequence: firstTail!.sequence - 1, time: firstTail!.time }] : [];
    return [...head, ...gap, ...tail];
  }

  #append(record: JobRecord, body: JobEventBody): void {
    const event = this.#redact({
      ...body,
      sequence: record.nextSequence++,
      time: this.#now().toISOString(),
    }) as JobEvent;
    this.#persist(record, (store) =>
      store.appendEvent(record.summary.id, event, {
        keepHead: this.#headCapacity,
        keepTail: this.#tailCapacity,
      }),
    );
    if (record.head.length < this.#headCapacity) record.head.push(event);
    else {
      record.tail.push(event);
      if (record.tail.length > this.#tailCapacity) {
        record.tail.shift();
        record.dropped += 1;
      }
    }
    for (const wake of [...record.waiters]) wake();
  }

  #evict(): void {
    if (this.#jobs.size < this.#maximumJobs) return;
    for (const [id, record] of this.#jobs) {
      if (record.summary.status !== 'running') {
        this.#jobs.delete(id);
        // A job the store keeps for now is trimmed at a later start.
        this.#persist(record, (store) => store.deleteJob(id));
        if (this.#jobs.size < this.#maximumJobs) return;
      }
    }
  }
}
