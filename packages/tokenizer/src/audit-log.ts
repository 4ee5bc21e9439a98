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

export const stdoutAuditSink: AuditSink = (entry) => {
  process.stdout.write(`${JSON.stringify(entry)}\n`);
};
