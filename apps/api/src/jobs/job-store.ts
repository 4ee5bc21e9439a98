import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { dataDirectoryError, isDataDirectoryFull } from '../data-directory-errors.js';
import type { JobEvent, JobSummary } from './job-manager.js';

/** A job as the store keeps it: its summary, its (bounded) events and which process ran it. */
export interface StoredJob {
  summary: JobSummary;
  events: JobEvent[];
  nextSequence: number;
  /** The process that ran the job; a running job whose process is gone was interrupted. */
  ownerPid: number;
  /** A random id of that process's job manager: a later process can have the same pid (pid 1 in a container). */
  ownerRun: string;
  /** Non-secret facts the job needs to be reconciled after a crash (a digest of the state before). */
  context: Record<string, unknown>;
}

/**
 * Where jobs outlive the process. Everything handed to a store is already redacted by the
 * job manager: a store never sees a secret.
 */
export interface JobStore {
  /** The last `limit` jobs, oldest first, with their events in order. */
  load(limit: number): StoredJob[];
  insertJob(job: Omit<StoredJob, 'events'>): void;
  updateJob(summary: JobSummary, context?: Record<string, unknown>): void;
  /** Adds an event; events after the first `keepHead` and before the last `keepTail` are dropped. */
  appendEvent(jobId: string, event: JobEvent, bounds: { keepHead: number; keepTail: number }): void;
  deleteJob(id: string): void;
  close(): void;
}

export const jobStoreFileName = 'keyward.sqlite';

export function jobStorePath(dataDirectory: string): string {
  return join(dataDirectory, jobStoreFileName);
}

const schema = `
CREATE TABLE IF NOT EXISTS jobs (
  position INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  summary TEXT NOT NULL,
  next_sequence INTEGER NOT NULL,
  owner_pid INTEGER NOT NULL,
  owner_run TEXT NOT NULL,
  context TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS events (
  job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  sequence INTEGER NOT NULL,
  body TEXT NOT NULL,
  PRIMARY KEY (job_id, sequence)
) WITHOUT ROWID;
`;

/**
 * Jobs in SQLite (better-sqlite3, synchronous): `<data dir>/keyward.sqlite`, WAL mode, one
 * connection that is this process's only writer. The file and its WAL are mode 0600.
 */
export class SqliteJobStore implements JobStore {
  readonly path: string;
  readonly #database: Database.Database;
  readonly #statements;

  readonly #directory: string;

  constructor(path: string) {
    this.path = path;
    const directory = join(path, '..');
    this.#directory = directory;
    let database: Database.Database | undefined;
    try {
      if (!existsSync(directory)) mkdirSync(directory, { recursive: true, mode: 0o700 });
      database = new Database(path);
      database.pragma('journal_mode = WAL');
      database.pragma('synchronous = NORMAL');
      database.pragma('foreign_keys = ON');
      database.pragma('busy_timeout = 5000');
      database.exec(schema);
      for (const file of [path, `${path}-wal`, `${path}-shm`]) {
        if (existsSync(file)) chmodSync(file, 0o600);
      }
    } catch (error) {
      database?.close();
      throw dataDirectoryError(error, {
        directory,
        doing: `open the job store ${path}`,
        consequence: 'The server did not start; the jobs already in the store are kept.',
      });
    }
    this.#database = database;
    this.#statements = {
      jobs: database.prepare(
        'SELECT id, summary, next_sequence, owner_pid, owner_run, context FROM jobs ORDER BY position DESC LIMIT ?',
      ),
      events: database.prepare('SELECT body FROM events WHERE job_id = ? ORDER BY sequence'),
      insertJob: database.prepare(
        'INSERT INTO jobs (id, summary, next_sequence, owner_pid, owner_run, context) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      updateJob: database.prepare('UPDATE jobs SET summary = ? WHERE id = ?'),
      updateJobContext: database.prepare('UPDATE jobs SET summary = ?, context = ? WHERE id = ?'),
      insertEvent: database.prepare(
        'INSERT OR REPLACE INTO events (job_id, sequence, body) VALUES (?, ?, ?)',
      ),
      advance: database.prepare('UPDATE jobs SET next_sequence = ? WHERE id = ?'),
      prune: database.prepare('DELETE FROM events WHERE job_id = ? AND sequence > ? AND sequence <= ?'),
      deleteJob: database.prepare('DELETE FROM jobs WHERE id = ?'),
      trim: database.prepare(
        'DELETE FROM jobs WHERE position NOT IN (SELECT position FROM jobs ORDER BY position DESC LIMIT ?)',
      ),
    };
  }

  /** Runs a write; a full or read-only disk becomes a `KeywardError` that says so. */
  #write<T>(doing: string, write: () => T, consequence?: string): T {
    try {
      return write();
    } catch (error) {
      throw dataDirectoryError(error, {
        directory: this.#directory,
        doing: `${doing} in ${this.path}`,
        ...(consequence ? { consequence } : {}),
      });
    }
  }

  load(limit: number): StoredJob[] {
    // Older rows beyond the limit are gone for good: the store stays bounded across restarts.
    // On a full disk the trim waits for the next start; the jobs can still be read.
    try {
      this.#statements.trim.run(limit);
    } catch (error) {
      if (!isDataDirectoryFull(error)) throw error;
    }
    const rows = this.#statements.jobs.all(limit) as {
      id: string;
      summary: string;
      next_sequence: number;
      owner_pid: number;
      owner_run: string;
      context: string;
    }[];
    return rows.reverse().map((row) => ({
      summary: JSON.parse(row.summary) as JobSummary,
      events: (this.#statements.events.all(row.id) as { body: string }[]).map(
        (event) => JSON.parse(event.body) as JobEvent,
      ),
      nextSequence: row.next_sequence,
      ownerPid: row.owner_pid,
      ownerRun: row.owner_run,
      context: JSON.parse(row.context) as Record<string, unknown>,
    }));
  }

  insertJob(job: Omit<StoredJob, 'events'>): void {
    if (!this.#database.open) return; // closed with the server: a job still ending stays in memory
    this.#write(
      `record the new ${job.summary.kind} job of "${job.summary.instance}"`,
      () =>
        this.#statements.insertJob.run(
          job.summary.id,
          JSON.stringify(job.summary),
          job.nextSequence,
          job.ownerPid,
          job.ownerRun,
          JSON.stringify(job.context),
        ),
      // Jobs are recorded before they start (so a crash can be reconciled).
      'Nothing was started.',
    );
  }

  updateJob(summary: JobSummary, context?: Record<string, unknown>): void {
    if (!this.#database.open) return; // closed with the server: a job still ending stays in memory
    this.#write(`update job ${summary.id}`, () => {
      if (context)
        this.#statements.updateJobContext.run(JSON.stringify(summary), JSON.stringify(context), summary.id);
      else this.#statements.updateJob.run(JSON.stringify(summary), summary.id);
    });
  }

  readonly #append = (jobId: string, event: JobEvent, bounds: { keepHead: number; keepTail: number }) => {
    this.#statements.insertEvent.run(jobId, event.sequence, JSON.stringify(event));
    this.#statements.advance.run(event.sequence + 1, jobId);
    const lastDropped = event.sequence - bounds.keepTail;
    if (lastDropped > bounds.keepHead) this.#statements.prune.run(jobId, bounds.keepHead, lastDropped);
  };

  appendEvent(jobId: string, event: JobEvent, bounds: { keepHead: number; keepTail: number }): void {
    if (!this.#database.open) return; // closed with the server: a job still ending stays in memory
    this.#write(`record an event of job ${jobId}`, () =>
      this.#database.transaction(this.#append)(jobId, event, bounds),
    );
  }

  deleteJob(id: string): void {
    if (!this.#database.open) return; // closed with the server: a job still ending stays in memory
    this.#write(`delete job ${id}`, () => this.#statements.deleteJob.run(id));
  }

  close(): void {
    if (this.#database.open) this.#database.close();
  }
}
