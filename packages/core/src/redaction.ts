export const REDACTED = '[REDACTED]';

// Keys whose values are secret whatever they hold. Providers add their own
// (`registerRedactionPattern`); a public key such as a seal key is deliberately not matched.
const sensitiveKeyPattern =
  /^(secret|password|passwd|open_?key|openkey|api_?key|apikey|authorization|proxy-authorization|bearer_?password|private_?key|client_?secret|.*_(api_key|secret|password|token))$/i;

const registeredKeyPatterns: RegExp[] = [];

/** A provider's own secret key names (the tokenizer's `TOKENIZER_CRED_*`), redacted like core's. */
export function registerRedactionPattern(pattern: RegExp): void {
  if (
    !registeredKeyPatterns.some(
      (existing) => existing.source === pattern.source && existing.flags === pattern.flags,
    )
  ) {
    registeredKeyPatterns.push(pattern);
  }
}

function isSensitiveKey(key: string): boolean {
  return sensitiveKeyPattern.test(key) || registeredKeyPatterns.some((pattern) => pattern.test(key));
}

/** Values shorter than this are not tracked: redacting "ab" everywhere would destroy output. */
export const minimumRedactableLength = 6;

/**
 * Tracks secret values seen by this process and removes them from anything on
 * its way out: log lines, API responses and error messages all go through
 * `redact`, so there is one place to get right.
 */
export class SecretRedactor {
  readonly #values = new Set<string>();
  #sorted: string[] | null = null;

  register(value: string | undefined | null): void {
    if (typeof value !== 'string' || value.length < minimumRedactableLength) return;
    const variants = [
      value,
      encodeURIComponent(value),
      Buffer.from(value, 'utf8').toString('base64'),
      JSON.stringify(value).slice(1, -1),
    ];
    for (const variant of variants) {
      if (variant.length >= minimumRedactableLength) this.#values.add(variant);
    }
    this.#sorted = null;
  }

  has(value: string): boolean {
    return this.#values.has(value);
  }

  get size(): number {
    return this.#values.size;
  }

  clear(): void {
    this.#values.clear();
    this.#sorted = null;
  }

  redactString(text: string): string {
    if (this.#values.size === 0) return text;
    this.#sorted ??= [...this.#values].sort((a, b) => b.length - a.length);
    let result = text;
    for (const value of this.#sorted) {
      if (result.includes(value)) result = result.split(value).join(REDACTED);
    }
    return result;
  }

  redact<T>(input: T): T {
    return this.#redactValue(input, new WeakMap()) as T;
  }

  #redactValue(input: unknown, seen: WeakMap<object, unknown>): unknown {
    if (typeof input === 'string') return this.redactString(input);
    if (input === null || typeof input !== 'object') return input;
    if (seen.has(input)) return seen.get(input);
    if (input instanceof Error) {
      const copy: Record<string, unknown> = { name: input.name, message: this.redactString(input.message) };
      const code = (input as { code?: unknown }).code;
      if (code !== undefined) copy['code'] = code;
      seen.set(input, copy);
      return copy;
    }
    if (Array.isArray(input)) {
      const copy: unknown[] = [];
      seen.set(input, copy);
      for (const item of input) copy.push(this.#redactValue(item, seen));
      return copy;
    }
    if (input instanceof Uint8Array) return REDACTED;
    const copy: Record<string, unknown> = {};
    seen.set(input, copy);
    const looksLikeSecretEntry = 'value' in input && ('visibleTo' in input || 'delivery' in input);
    for (const [key, value] of Object.entries(input)) {
      if (
        (isSensitiveKey(key) || (looksLikeSecretEntry && key === 'value')) &&
        value !== '' &&
        value != null
      ) {
        copy[key] = REDACTED;
      } else {
        copy[key] = this.#redactValue(value, seen);
      }
    }
    return copy;
  }
}

/** The process-wide redactor. Providers register every secret value they handle. */
export const secretRedactor = new SecretRedactor();

/** The one redaction function: logs, API responses and errors all call it. */
export function redact<T>(input: T, redactor: SecretRedactor = secretRedactor): T {
  return redactor.redact(input);
}

export function registerSecret(
  value: string | undefined | null,
  redactor: SecretRedactor = secretRedactor,
): void {
  redactor.register(value);
}
