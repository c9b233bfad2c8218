/**
 * Reconnect delays: exponential backoff with full jitter (a uniform draw between 0 and the capped exponential),
 * so that many clients cut at once do not return at once.
 */

export interface BackoffOptions {
  /** First delay's upper bound, ms. */
  readonly initialDelay?: number;
  /** Cap on any delay, ms. */
  readonly maxDelay?: number;
  readonly factor?: number;
}

export const DEFAULT_BACKOFF: Required<BackoffOptions> = { initialDelay: 500, maxDelay: 30_000, factor: 2 };

/** Delay before attempt `attempt` (0-based). `random` returns [0, 1). */
export function backoffDelay(
  attempt: number,
  options: BackoffOptions = {},
  random: () => number = Math.random,
): number {
  const pick = (v: number | undefined, d: number, min: number): number =>
    v !== undefined && v >= min && !Number.isNaN(v) ? v : d;
  const initial = Math.min(pick(options.initialDelay, DEFAULT_BACKOFF.initialDelay, 0), MAX_TIMER_DELAY);
  const factor = Math.min(pick(options.factor, DEFAULT_BACKOFF.factor, 1), 1e6);
  // setTimeout fires at once for a delay above 2^31 - 1 ms: an uncapped ceiling (maxDelay: Infinity, or a long run
  // of attempts) would turn backoff into a tight reconnect loop. NaN or negative options fall back to the defaults.
  const max = Math.min(pick(options.maxDelay, DEFAULT_BACKOFF.maxDelay, 0), MAX_TIMER_DELAY);
  const ceiling = Math.min(max, initial * factor ** Math.min(Math.max(attempt, 0), 64));
  return Math.floor(random() * ceiling);
}

/** The longest delay a Node timer honours (2^31 - 1 ms, about 24.8 days). */
export const MAX_TIMER_DELAY = 2 ** 31 - 1;
