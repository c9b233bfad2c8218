/**
 * Proxies that failed recently, skipped for a while, as browsers keep a bad-proxy list (Chrome retries a bad
 * proxy after 5 minutes). A route through a bad proxy is not dropped: it is tried after every other route.
 */

export interface BadProxyEntry {
  readonly proxy: string;
  readonly since: number;
  readonly until: number;
  readonly reason: string;
}

/** Proxies that failed recently and for how long they are tried last (default 5 minutes, as Chrome does). */
export class BadProxyList {
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #entries = new Map<string, BadProxyEntry>();
  /** Bounded: the oldest entries go first. */
  readonly #max = 1000;

  constructor(options: { ttlMs?: number; now?: () => number } = {}) {
    this.#ttlMs = options.ttlMs ?? 5 * 60_000;
    this.#now = options.now ?? Date.now;
  }

  /** Marks `proxy` (its display URL) bad for the list's time to live. */
  mark(proxy: string, reason: string): void {
    const now = this.#now();
    this.#entries.delete(proxy);
    this.#entries.set(proxy, { proxy, since: now, until: now + this.#ttlMs, reason });
    if (this.#entries.size > this.#max) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
  }

  /** The entry while `proxy` is still bad, else undefined. */
  get(proxy: string): BadProxyEntry | undefined {
    const e = this.#entries.get(proxy);
    if (e && e.until <= this.#now()) {
      this.#entries.delete(proxy);
      return undefined;
    }
    return e;
  }

  /** Forgets `proxy` (it worked). */
  clear(proxy: string): void {
    this.#entries.delete(proxy);
  }

  get size(): number {
    return this.#entries.size;
  }
}

/** The list dials share unless given their own (`badProxies` option). */
export const sharedBadProxies = new BadProxyList();
