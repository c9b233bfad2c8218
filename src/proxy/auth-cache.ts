/**
 * Remembers Basic credentials that checked out, for a short while, as squid's `credentialsttl` does: an htpasswd
 * bcrypt check costs tens of milliseconds of CPU (bcryptjs is JavaScript), and a browser sends the same
 * `Proxy-Authorization` with every CONNECT. Entries are keyed by a SHA-256 of the header value (the credentials
 * themselves are never kept), bounded in number and in age. Failures are never cached.
 */
import { createHash } from 'node:crypto';

export class AuthCache {
  readonly #entries = new Map<string, { readonly user: string; readonly expires: number }>();
  readonly #ttl: number;
  readonly #max: number;

  constructor(options: { ttlMs?: number; maxEntries?: number } = {}) {
    this.#ttl = options.ttlMs ?? 60_000;
    this.#max = options.maxEntries ?? 1000;
  }

  static key(authorization: string): string {
    return createHash('sha256').update(authorization, 'latin1').digest('base64');
  }

  /** The user whose credentials these were, if checked within the TTL. */
  get(key: string, now = Date.now()): string | undefined {
    const e = this.#entries.get(key);
    if (!e) return undefined;
    if (e.expires <= now) {
      this.#entries.delete(key);
      return undefined;
    }
    return e.user;
  }

  set(key: string, user: string, now = Date.now()): void {
    // Map iteration order is insertion order: the first key is the oldest.
    if (this.#entries.size >= this.#max && !this.#entries.has(key)) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
    this.#entries.set(key, { user, expires: now + this.#ttl });
  }
}
