/**
 * The doctor's report: one entry per step of the path, a verdict and advice. `toJSON` gives the stable shape
 * scripts and monitoring read: `{ ok, code, summary, steps: [{ step, ok, ms, detail }], idle, advice }`.
 */
import type { ErrorCode } from '../errors.js';

/** The steps of the path the doctor checks, in order. */
export const STEP_NAMES = ['route', 'dns', 'tcp', 'proxy', 'tls', 'upgrade', 'roundtrip', 'idle'] as const;
/** One of {@link STEP_NAMES}. */
export type StepName = (typeof STEP_NAMES)[number];

/** The outcome of one step of the path. */
export interface DoctorStep {
  readonly step: StepName;
  readonly ok: boolean;
  /** Time the step took, in milliseconds (0.1 ms precision); 0 when nothing was waited for. */
  readonly ms: number;
  /** The key facts on one line. */
  readonly detail: string;
  /** Ok, but worth a look (an inspected path, a header an intermediary removed). */
  readonly warning?: boolean;
  /** Further lines for the readable report (headers, certificate chain); not in the JSON. */
  readonly more?: readonly string[];
}

/** How the path treats a silent WebSocket. */
export interface IdleResult {
  /** Seconds of silence after which the path cut a connection; null when none was cut. */
  readonly cutoffSeconds: number | null;
  /** The longest silence a connection survived (seconds). */
  readonly survivedSeconds: number;
  /** How it was cut: `close frame 1001`, `FIN`, `RST`, `black hole (ping unanswered)`, or `not cut`. */
  readonly how: string;
}

/** Where the idle probe is, told as each of its connections finishes (and once at the start, `done` 0). */
export interface IdleProgress {
  /** Probe connections finished so far, of `total`. */
  readonly done: number;
  readonly total: number;
  /** What the connection that just finished found (`silent 3 s: survived`); absent at the start. */
  readonly line?: string;
  /** The result from the connections finished so far. */
  readonly soFar: IdleResult;
}

/**
 * The doctor's diagnosis of a path: each step's outcome, a verdict with the first failure's error code, and advice.
 */
export interface DoctorReport {
  readonly ok: boolean;
  /** The error code of the first failure, as `wsvia connect` reports it; null when ok. */
  readonly code: ErrorCode | null;
  /** The status the failing peer answered, when it answered one: the exit code depends on it (401, 403). */
  readonly status?: number;
  readonly summary: string;
  readonly steps: readonly DoctorStep[];
  readonly idle: IdleResult | undefined;
  readonly advice: readonly string[];
}

/** The JSON interface: exactly these keys, steps without the readable report's extra lines. */
export function reportToJSON(r: DoctorReport): Record<string, unknown> {
  return {
    ok: r.ok,
    code: r.code,
    summary: r.summary,
    steps: r.steps.map((s) => ({ step: s.step, ok: s.ok, ms: s.ms, detail: s.detail })),
    idle: r.idle,
    advice: [...r.advice],
  };
}
