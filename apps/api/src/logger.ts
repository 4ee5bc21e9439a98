import { appendFileSync, chmodSync, existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { redact, type SecretRedactor, secretRedactor } from '@keyward/core';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  log(level: LogLevel, message: string, fields?: Record<string, unknown>): void;
}

export interface JsonLoggerOptions {
  /** Where each finished line goes. Default: stderr. */
  write?: (line: string) => void;
  level?: LogLevel;
  /** Also redacts with this one (an app's own), on top of core's process-wide redactor. */
  redactor?: SecretRedactor;
}

const order: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

function describeError(error: unknown): unknown {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return { name: error.name, message: error.message, ...(code === undefined ? {} : { code }) };
  }
  return error;
}

/**
 * One JSON object per line. Every line goes through core's `redact` twice: the
 * structured fields before serialising and the finished text after, so a secret
 * that hid in an error message or a nested string never reaches the sink.
 */
export function createJsonLogger(options: JsonLoggerOptions = {}): Logger {
  const write = options.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  const minimum = order[options.level ?? 'info'];
  return {
    log(level, message, fields = {}) {
      if (order[level] < minimum) return;
      const entry: Record<string, unknown> = { time: new Date().toISOString(), level, message };
      for (const [key, value] of Object.entries(fields)) entry[key] = describeError(value);
      const own = options.redactor;
      const clean = own && own !== secretRedactor ? redact(redact(entry), own) : redact(entry);
      const text = secretRedactor.redactString(JSON.stringify(clean));
      write(own && own !== secretRedactor ? own.redactString(text) : text);
    },
  };
}

/** A logger that drops everything, for in-process CLI runs that print their own output. */
export const silentLogger: Logger = { log() {} };

/**
 * Appends each line to a file (created mode 0600, its directory 0700). A line that cannot be
 * written is dropped: logging never fails the command it describes.
 */
export function fileLineWriter(path: string): (line: string) => void {
  let ready = false;
  return (line) => {
    try {
      if (!ready) {
        const directory = dirname(path);
        if (!existsSync(directory)) mkdirSync(directory, { recursive: true, mode: 0o700 });
        appendFileSync(path, '', { mode: 0o600 });
        chmodSync(path, 0o600);
        ready = true;
      }
      appendFileSync(path, `${line}\n`);
    } catch {
      // A full disk or a read-only data directory: the command still runs.
    }
  };
}
