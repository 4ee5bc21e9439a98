import type { z } from 'zod';
import type { JsonObject } from '../v1/json-value.js';
import type { NetworkMode } from '../v1/network-mode.js';

/** "Run this in that container": the one thing a target offers the self-tests. */
export interface ExecRequestV2 {
  /** Logical container name; `agent` for the agent. */
  container: string;
  command: string[];
  /** Written to the command's standard input (scripts go here, never in argv). */
  stdin?: string;
  timeoutSeconds?: number;
}

export interface ExecResultV2 {
  exitCode: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export interface VerifyCheckResultV2 {
  passed: boolean;
  /** What was observed (status codes, error codes), never a secret. */
  evidence: string;
}

/** One self-test check: what to run and how to judge what came back. */
export interface VerifyCheckV2 {
  /** Stable, kebab-case (`proxied-request-injected`). */
  name: string;
  /** One sentence saying what passing proves. */
  description: string;
  exec: ExecRequestV2;
  judge(result: ExecResultV2): VerifyCheckResultV2;
}

export interface VerificationContextV2 {
  instanceName: string;
  networkMode: NetworkMode;
  /** The sidecar's stored metadata and exports (no secret values). */
  metadata: JsonObject;
  exports: JsonObject;
}

export interface SidecarVerificationV2<TOptions = unknown> {
  /** Options a caller may pass (`allowedUrl`), validated before `checks`. */
  optionsSchema?: z.ZodType<TOptions>;
  checks(context: VerificationContextV2, options: TOptions): Promise<VerifyCheckV2[]> | VerifyCheckV2[];
}

/** A check as the API reports it. */
export interface VerifyCheckReportV2 extends VerifyCheckResultV2 {
  name: string;
  /** `agent`-side provider that owns the check: a sidecar id, or the target's id. */
  providerId: string;
  description: string;
}

export interface VerifyReportV2 {
  passed: boolean;
  checks: VerifyCheckReportV2[];
}
