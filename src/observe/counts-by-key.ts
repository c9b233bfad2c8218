/**
 * How many of something each key holds open at once (connections or tunnels per client address), for the
 * per-client limits of the proxy, the gateway and the bridge. A key whose count drops to zero is forgotten, so
 * the map holds only clients with something open.
 */
export class CountsByKey {
  readonly #counts = new Map<string, number>();

  /** The count for `key` (0 when it holds nothing). */
  get(key: string): number {
    return this.#counts.get(key) ?? 0;
  }

  add(key: string): void {
    this.#counts.set(key, this.get(key) + 1);
  }

  /** One less for `key`; at zero the key is forgotten. */
  remove(key: string): void {
    const n = (this.#counts.get(key) ?? 1) - 1;
    if (n <= 0) this.#counts.delete(key);
    else this.#counts.set(key, n);
  }
}
