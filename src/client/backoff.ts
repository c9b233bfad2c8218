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
  const o = { ...DEFAULT_BACKOFF, ...options };
  const ceiling = Math.min(o.maxDelay, o.initialDelay * o.factor ** Math.min(attempt, 64));
  return Math.floor(random() * ceiling);
}
