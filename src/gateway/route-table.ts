/**
 * Which route a request takes: the longest path prefix that matches wins, as nginx's prefix `location`s do. A
 * prefix matches at a segment boundary or anywhere when it ends with `/`: `/chat` matches `/chat`, `/chat/x` and
 * `/chat?q`, not `/chatter`. Pure: the table is rebuilt on reload, never mutated.
 */
import type { RouteSpec } from './config.js';

export class RouteTable {
  readonly #routes: readonly RouteSpec[];

  constructor(routes: readonly RouteSpec[]) {
    // Longest first, so the first match is the longest.
    this.#routes = [...routes].sort((a, b) => b.path.length - a.path.length);
  }

  /** The route for a request-target (origin-form: path and query), or undefined. */
  match(target: string): RouteSpec | undefined {
    const q = target.search(/[?#]/);
    const path = q < 0 ? target : target.slice(0, q);
    for (const r of this.#routes) {
      if (!path.startsWith(r.path)) continue;
      if (r.path.endsWith('/') || path.length === r.path.length || path[r.path.length] === '/') return r;
    }
    return undefined;
  }
}
