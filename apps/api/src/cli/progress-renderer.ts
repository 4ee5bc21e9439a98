import type { JobEvent } from '../client.js';

export interface ProgressRendererOptions {
  stream: NodeJS.WriteStream | { write(text: string): boolean; isTTY?: boolean };
  /** Force plain lines even on a terminal. */
  plain?: boolean;
}

const frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/**
 * Step-by-step progress of a job: on a terminal, a spinner on the running step
 * and a ✔/✖ line per finished step; elsewhere (CI, pipes), one plain line per event.
 */
export class ProgressRenderer {
  readonly #stream: ProgressRendererOptions['stream'];
  readonly #interactive: boolean;
  #current: { step: string; message: string } | undefined;
  #frame = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: ProgressRendererOptions) {
    this.#stream = options.stream;
    this.#interactive = !options.plain && options.stream.isTTY === true;
  }

  handle(event: JobEvent): void {
    if (!this.#interactive) {
      this.#stream.write(`${this.#plain(event)}\n`);
      return;
    }
    if (event.type === 'progress' && event.status === 'started') {
      this.#clear();
      this.#current = { step: event.step, message: event.message };
      this.#draw();
      this.#timer ??= setInterval(() => this.#draw(), 80);
      return;
    }
    this.#clear();
    if (event.type === 'progress') {
      const mark = event.status === 'succeeded' ? '✔' : event.status === 'failed' ? '✖' : '•';
      this.#stream.write(`${mark} ${event.message}\n`);
      if (this.#current?.step === event.step) this.#current = undefined;
    } else if (event.type !== 'result' && event.type !== 'error') {
      this.#stream.write(`${this.#plain(event)}\n`);
    }
    if (event.type === 'result' || event.type === 'error') this.stop();
    else this.#draw();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#clear();
    this.#current = undefined;
  }

  #plain(event: JobEvent): string {
    switch (event.type) {
      case 'progress':
        return `[${event.status}] ${event.step}: ${event.message}`;
      case 'log':
        return event.message;
      case 'gap':
        return `… ${event.dropped} progress lines skipped …`;
      case 'result':
        return '[done]';
      case 'error':
        return `[failed] ${event.error.step ?? ''} ${event.error.code}: ${event.error.message}`.replace(
          '  ',
          ' ',
        );
    }
  }

  #draw(): void {
    if (!this.#current) return;
    this.#frame = (this.#frame + 1) % frames.length;
    this.#stream.write(`\r\x1b[2K${frames[this.#frame]} ${this.#current.message}`);
  }

  #clear(): void {
    if (this.#current) this.#stream.write('\r\x1b[2K');
  }
}
