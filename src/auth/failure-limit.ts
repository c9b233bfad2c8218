/**
 * Counts failed logins per client address over a sliding minute, as fail2ban does for sshd: past the limit, the
 * address is refused (429 with Retry-After) before any password is checked, so one address guessing passwords
 * neither learns much nor takes the CPU from everyone else. Bounded: at most `maxKeys` addresses are tracked
 * (the least recently failing forgotten first).
 */
export class FailureLimit {
  /** Failure times per key, oldest first; the Map is kept in order of last failure. */
  readonly #failures = new Map<string, number[]>();
  readonly #limit: number;
  readonly #windowMs: number;
  readonly #maxKeys: number;

  /** `perMinute` failures are allowed in any minute; 0 turns the limit off. */
  constructor(perMinute: number, options: { windowMs?: number; maxKeys?: number } = {}) {
    this.#limit = perMinute;
    this.#windowMs = options.windowMs ?? 60_000;
    this.#maxKeys = options.maxKeys ?? 10_000;
  }

  /** Seconds until `key` may try again, or undefined when it may try now. */
  retryAfter(key: string, now = Date.now()): number | undefined {
    if (this.#limit <= 0) return undefined;
    const times = this.#recent(key, now);
    if (times.length < this.#limit) return undefined;
    const freedAt = (times[times.length - this.#limit] as number) + this.#windowMs;
    return Math.max(1, Math.ceil((freedAt - now) / 1000));
  }

  fail(key: string, now = Date.now()): void {
    if (this.#limit <= 0) return;
    const times = this.#recent(key, now);
    times.push(now);
    if (times.length > this.#limit) times.splice(0, times.length - this.#limit);
    this.#failures.delete(key);
    this.#failures.set(key, times);
    while (this.#failures.size > this.#maxKeys) {
      const oldest = this.#failures.keys().next().value;
      if (oldest === undefined) break;
      this.#failures.delete(oldest);
    }
  }

  #recent(key: string, now: number): number[] {
    const times = this.#failures.get(key);
    if (!times) return [];
    const kept = times.filter((t) => now - t < this.#windowMs);
    if (kept.length === 0) this.#failures.delete(key);
    else this.#failures.set(key, kept);
    return kept;
  }
}
