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
    pending += `${JSON.stringify(entry)}\n`;
    if (pending.length > 65_536) flush();
    else if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  };
  return Object.assign(sink, { flush });
}
