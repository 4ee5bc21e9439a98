import type { Api, JobEvent } from './api.js';
import { describeError } from './api.js';
import { h } from './dom.js';

export interface JobOutcome {
  succeeded: boolean;
  failedStep?: string;
  message?: string;
  rolledBack: string[];
  result?: unknown;
}

/**
 * The live steps of a deploy or rotation job (the API's event stream), one row per step with
 * its latest status; a failure names the step that failed and what the rollback did.
 */
export class JobProgressView {
  readonly element: HTMLElement;
  readonly #steps = new Map<string, HTMLLIElement>();
  readonly #list: HTMLOListElement;
  readonly #summary: HTMLElement;

  constructor(title: string) {
    this.#list = h('ol', { class: 'steps' });
    this.#summary = h('p', { class: 'job-summary', role: 'status', 'aria-live': 'polite' }, 'Starting…');
    this.element = h(
      'section',
      { class: 'job', 'aria-label': title },
      h('h3', {}, title),
      this.#list,
      this.#summary,
    );
  }

  apply(event: JobEvent, outcome: JobOutcome): void {
    if (event.type === 'progress') {
      let row = this.#steps.get(event.step);
      if (!row) {
        row = h('li', { class: 'step' });
        this.#steps.set(event.step, row);
        this.#list.append(row);
      }
      row.dataset['status'] = event.status;
      row.replaceChildren(
        h('span', { class: `badge ${event.status}` }, event.status),
        ' ',
        h('strong', {}, event.step),
        ' ',
        event.message,
      );
      if (event.step === 'rollback') outcome.rolledBack.push(event.message);
      if (event.status === 'failed' && event.step !== 'rollback') outcome.failedStep ??= event.step;
      this.#summary.textContent = `Running: ${event.step}…`;
    } else if (event.type === 'log') {
      this.#list.append(h('li', { class: 'step log' }, event.message));
    } else if (event.type === 'result') {
      outcome.succeeded = true;
      outcome.result = event.result;
    } else if (event.type === 'error') {
      outcome.succeeded = false;
      outcome.message = `${event.error.message} (${event.error.code})`;
      if (event.error.step) outcome.failedStep = event.error.step;
    }
  }

  finish(outcome: JobOutcome, successText: string, failureExtra = ''): void {
    this.#summary.classList.add(outcome.succeeded ? 'success' : 'failure');
    if (outcome.succeeded) {
      this.#summary.textContent = successText;
      return;
    }
    const rolledBack =
      outcome.rolledBack.length > 0
        ? ` Rolled back: ${outcome.rolledBack.join(' → ')}.`
        : ' Nothing was rolled back.';
    this.#summary.textContent = `Failed${outcome.failedStep ? ` at step "${outcome.failedStep}"` : ''}: ${outcome.message ?? 'unknown error'}.${rolledBack}${failureExtra}`;
  }
}

/** Follows a job's events to its end. */
export async function followJob(api: Api, jobId: string, view: JobProgressView): Promise<JobOutcome> {
  const outcome: JobOutcome = { succeeded: false, rolledBack: [] };
  try {
    for await (const event of api.jobEvents(jobId)) {
      view.apply(event, outcome);
      if (event.type === 'result' || event.type === 'error') break;
    }
  } catch (error) {
    outcome.succeeded = false;
    outcome.message = `lost the job's event stream: ${describeError(error)}`;
  }
  return outcome;
}
