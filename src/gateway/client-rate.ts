/**
 * `rate-per-client`: new connections a second from one client address, as a token bucket per address that holds
 * as many tokens as the rate (the burst) and refills continuously. Pure (the caller passes the time), and
 * bounded: at most `maxClients` buckets are kept, the least recently used dropped first. A dropped bucket costs
 * nothing but a fresh burst for an address that has been quiet longest, and a bucket that has refilled is the
 * same as none, so idle ones are dropped as they are met.
 */

interface Bucket {
  tokens: number;
  /** When `tokens` was computed (ms). */
  at: number;
}

export const DEFAULT_MAX_CLIENTS = 100_000;

export class ClientRateLimiter {
  /** In least-recently-used order: a touched bucket is moved to the end. */
  readonly #buckets = new Map<string, Bucket>();
  readonly #maxClients: number;

  constructor(maxClients = DEFAULT_MAX_CLIENTS) {
    this.#maxClients = maxClients;
  }

  /** Buckets held now. */
  get size(): number {
    return this.#buckets.size;
  }

  /**
   * Takes a token for `client` at `now` (ms) with `rate` per second. Returns 0 when the connection may go on,
   * otherwise the milliseconds until a token is there (for Retry-After).
   */
  take(client: string, rate: number, now: number): number {
    const burst = Math.max(1, rate);
    const b = this.#buckets.get(client) ?? { tokens: burst, at: now };
    this.#buckets.delete(client);
    b.tokens = Math.min(burst, b.tokens + (Math.max(0, now - b.at) * rate) / 1000);
    b.at = now;
    let wait = 0;
    if (b.tokens >= 1) b.tokens -= 1;
    else wait = Math.ceil(((1 - b.tokens) * 1000) / rate);
    this.#buckets.set(client, b);
    this.#evict(rate, now);
    return wait;
  }

  #evict(rate: number, now: number): void {
    const burst = Math.max(1, rate);
    // The oldest first: a full one is dropped; over the bound, the oldest go whatever they hold.
    for (const [client, b] of this.#buckets) {
      const full = b.tokens + ((now - b.at) * rate) / 1000 >= burst;
      if (!full && this.#buckets.size <= this.#maxClients) break;
      this.#buckets.delete(client);
    }
  }
}
