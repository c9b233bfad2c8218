/**
 * The Digest nonces a server has handed out, with the highest nonce count (`nc`) each has been used with, so that
 * a response is good once (RFC 7616 §3.4: "the server ... SHOULD check that the nc value is greater than the last
 * nc value it received for that nonce, to detect replays"). Bounded twice: entries expire after the nonce
 * lifetime, and past `maxEntries` the oldest is forgotten (its client is told `stale=true` and retries with a fresh
 * nonce), so a flood of unauthenticated requests costs memory in proportion to the bound, not to the flood.
 */
export type NonceUse = 'fresh' | 'replayed' | 'unknown';

export class NonceTable {
  /** nonce -> { issued at (ms), highest nc accepted (0 before the first use) }, oldest first (insertion order). */
  readonly #entries = new Map<string, { readonly issued: number; nc: number }>();
  readonly #lifetime: number;
  readonly #max: number;

  constructor(options: { lifetimeMs: number; maxEntries: number }) {
    this.#lifetime = options.lifetimeMs;
    this.#max = options.maxEntries;
  }

  get size(): number {
    return this.#entries.size;
  }

  issue(nonce: string, now = Date.now()): void {
    this.#prune(now);
    while (this.#entries.size >= this.#max) {
      const oldest = this.#entries.keys().next().value;
      if (oldest === undefined) break;
      this.#entries.delete(oldest);
    }
    this.#entries.set(nonce, { issued: now, nc: 0 });
  }

  /** Whether `nc` may be accepted for `nonce`: above every count seen so far, for a nonce still held. */
  check(nonce: string, nc: number, now = Date.now()): NonceUse {
    this.#prune(now);
    const e = this.#entries.get(nonce);
    if (!e) return 'unknown';
    return nc > e.nc ? 'fresh' : 'replayed';
  }

  /** Records a response that checked out, so the same `nc` (or a lower one) is refused from now on. */
  accept(nonce: string, nc: number): void {
    const e = this.#entries.get(nonce);
    if (e && nc > e.nc) e.nc = nc;
  }

  #prune(now: number): void {
    for (const [nonce, e] of this.#entries) {
      if (now - e.issued <= this.#lifetime) break;
      this.#entries.delete(nonce);
    }
  }
}
