/** One line per proxied request. Never carries a credential value, only fingerprints. */
export interface AuditEntry {
  time: string;
  /** Fingerprints (short SHA-256 of the sealed token) of every Proxy-Tokenizer presented. */
  credentials: string[];
  method: string;
  host: string;
  /** Path only: query values may carry data the client considers sensitive. */
  path: string;
  status: number;
  durationMs: number;
  /** forwarded: sent upstream; denied: refused by policy (4xx); error: 5xx or upstream failure. */
  decision: 'forwarded' | 'denied' | 'error';
  /** TokenizerError code when refused. */
  error?: string;
  /** Non-secret detail for processor runtime failures (clients only see `bad request`). */
  detail?: string;
}

export type AuditSink = (entry: AuditEntry) => void;

let formattedSecond = Number.NaN;
let secondPrefix = '';

/**
 * `new Date(milliseconds).toISOString()`, with the part up to the second formatted once per
 * second: Date#toISOString costs more than the rest of an audit line.
 */
export function isoTime(milliseconds: number): string {
  const whole = Math.trunc(milliseconds);
  const second = Math.floor(whole / 1000);
  if (second !== formattedSecond) {
    const text = new Date(second * 1000).toISOString();
    // Everything up to the milliseconds ("….000Z"); six-digit years keep their own form.
    if (!text.endsWith('.000Z')) return new Date(whole).toISOString();
    formattedSecond = second;
    secondPrefix = text.slice(0, -4);
  }
  const millis = whole - second * 1000;
  return `${secondPrefix}${millis < 10 ? '00' : millis < 100 ? '0' : ''}${millis}Z`;
}

/** A JSON string literal; text that needs no escaping skips JSON.stringify. */
function jsonString(text: string): string {
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (code < 0x20 || code > 0x7e || code === 0x22 || code === 0x5c) return JSON.stringify(text);
  }
  return `"${text}"`;
}

/** JSON.stringify(value) for a number as it appears in an entry (non-finite numbers are null). */
function jsonNumber(value: number): string {
  // Durations are whole hundredths of a millisecond: written from integers, whose strings V8
  // caches, rather than by its double-to-shortest-string conversion. Same text.
  if (value >= 0 && value < 1e7) {
    const hundredths = Math.round(value * 100);
    if (hundredths / 100 === value) {
      const fraction = hundredths % 100;
      const whole = (hundredths - fraction) / 100;
      if (fraction === 0) return `${whole}`;
      if (fraction % 10 === 0) return `${whole}.${fraction / 10}`;
      return `${whole}.${fraction < 10 ? '0' : ''}${fraction}`;
    }
  }
  return Number.isFinite(value) ? `${value}` : 'null';
}

/**
 * The entry as JSON.stringify writes it (fields in the order the proxy sets them), without
 * its generic walk over the object: one line per request under load.
 */
export function serializeAuditEntry(entry: AuditEntry): string {
  let credentials = '';
  for (let index = 0; index < entry.credentials.length; index++)
    credentials += `${index === 0 ? '' : ','}${jsonString(entry.credentials[index] as string)}`;
  let line = `{"time":${jsonString(entry.time)},"credentials":[${credentials}],"method":${jsonString(entry.method)},"host":${jsonString(entry.host)},"path":${jsonString(entry.path)},"status":${jsonNumber(entry.status)},"durationMs":${jsonNumber(entry.durationMs)},"decision":${jsonString(entry.decision)}`;
  if (entry.error !== undefined) line += `,"error":${jsonString(entry.error)}`;
  if (entry.detail !== undefined) line += `,"detail":${jsonString(entry.detail)}`;
  return `${line}}`;
}

/**
 * JSON lines on stdout, batched: one write per event-loop turn instead of one per request
 * (a write per request is a measurable share of the proxy's CPU under load).
 */
export function createStdoutAuditSink(
  stream: NodeJS.WritableStream = process.stdout,
): AuditSink & { flush(): void } {
  let pending = '';
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (pending === '') return;
    const text = pending;
    pending = '';
    stream.write(text);
  };
  const sink = (entry: AuditEntry) => {
    pending += `${serializeAuditEntry(entry)}\n`;
    if (pending.length > 65_536) flush();
    else if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  };
  return Object.assign(sink, { flush });
}
