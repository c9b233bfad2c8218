/**
 * Which route a request takes, and what the upstream is sent. Routes match on the request's host (an exact name,
 * then `*.suffix` names, longest suffix first, then routes without a host) and, within the most specific host that
 * has a match, on the longest path prefix, as nginx's `server_name` and prefix `location`s do. A prefix matches at
 * a segment boundary or anywhere when it ends with `/`: `/chat` matches `/chat`, `/chat/x` and `/chat?q`, not
 * `/chatter`. Pure: the table is rebuilt on reload, never mutated.
 */
import type { HeaderList } from '../protocol/headers.js';
import type { RouteOptions, RouteSpec, UpstreamSpec } from './route-config.js';

/** The lowercase name in a Host header (or `:authority`), without its port, brackets or final dot. */
export function requestHost(host: string | undefined): string | undefined {
  if (host === undefined) return undefined;
  const h = host.trim().toLowerCase();
  const name = h.startsWith('[') ? h.slice(1, h.indexOf(']')) : h.replace(/:\d*$/, '');
  return name.replace(/\.$/, '') || undefined;
}

/** Routes that share a host pattern, longest path first. */
class PathList {
  readonly #routes: RouteSpec[] = [];

  add(r: RouteSpec): void {
    this.#routes.push(r);
    this.#routes.sort((a, b) => b.path.length - a.path.length);
  }

  match(path: string): RouteSpec | undefined {
    for (const r of this.#routes) {
      if (!path.startsWith(r.path)) continue;
      if (r.path.endsWith('/') || path.length === r.path.length || path[r.path.length] === '/') return r;
    }
    return undefined;
  }
}

export class RouteTable {
  readonly #exact = new Map<string, PathList>();
  /** By suffix (`.example.com`), longest first. */
  readonly #wildcards: { readonly suffix: string; readonly routes: PathList }[] = [];
  readonly #anyHost = new PathList();

  constructor(routes: readonly RouteSpec[]) {
    const wild = new Map<string, PathList>();
    for (const r of routes) {
      if (r.host === undefined) this.#anyHost.add(r);
      else if (r.host.startsWith('*.')) listFor(wild, r.host.slice(1)).add(r);
      else listFor(this.#exact, r.host).add(r);
    }
    for (const [suffix, list] of wild) this.#wildcards.push({ suffix, routes: list });
    this.#wildcards.sort((a, b) => b.suffix.length - a.suffix.length);
  }

  /** The route for a request-target (origin-form: path and query) on `host` (a Host header), or undefined. */
  match(target: string, host?: string): RouteSpec | undefined {
    const q = target.search(/[?#]/);
    const path = q < 0 ? target : target.slice(0, q);
    const name = requestHost(host);
    if (name !== undefined) {
      const exact = this.#exact.get(name)?.match(path);
      if (exact) return exact;
      for (const w of this.#wildcards) {
        if (name.length <= w.suffix.length || !name.endsWith(w.suffix)) continue;
        const r = w.routes.match(path);
        if (r) return r;
      }
    }
    return this.#anyHost.match(path);
  }
}

function listFor(map: Map<string, PathList>, key: string): PathList {
  let list = map.get(key);
  if (!list) map.set(key, (list = new PathList()));
  return list;
}

/**
 * The request-target the upstream is sent: unchanged, or with the route's matched prefix replaced by the path on
 * the upstream's URL (nginx `proxy_pass http://u/v2/;` under `location /api/` sends `/api/x?q` as `/v2/x?q`).
 */
export function upstreamTarget(route: RouteSpec, upstream: UpstreamSpec, target: string): string {
  if (upstream.path === undefined || !target.startsWith(route.path)) return target;
  return upstream.path + target.slice(route.path.length);
}

/** The route's `remove-headers` and `set-headers` applied to the header fields bound for the upstream. */
export function applyHeaderOptions(headers: HeaderList, o: RouteOptions): [string, string][] {
  if (o.setHeaders.length === 0 && o.removeHeaders.length === 0) return headers.map(([k, v]) => [k, v]);
  const replaced = new Set([...o.removeHeaders, ...o.setHeaders.map(([k]) => k.toLowerCase())]);
  const out: [string, string][] = headers
    .filter(([k]) => !replaced.has(k.toLowerCase()))
    .map(([k, v]) => [k, v]);
  for (const [k, v] of o.setHeaders) out.push([k, v]);
  return out;
}
