/**
 * The gateway's routes as the operator writes them, in a config file (`routes:` entries, keys named like the
 * flags, kebab-case) or as `--route [HOST]/PATH=UP[,UP...]`, turned into validated {@link RouteSpec}s: the host
 * and path a route matches, its upstreams with weights and path rewrites, how it balances, and the options that
 * override the top-level ones for that route alone.
 */
import { ConfigNode } from '../config.js';
import { HOP_BY_HOP_FIELDS, isToken, isValidFieldValue } from '../protocol/headers.js';
import { configError, MAX_WARM } from './config.js';

export const UPSTREAM_SCHEMES = ['ws:', 'wss:', 'http:', 'https:'] as const;
/** The ways a route can spread new connections over its upstreams (the `balance` key). */
export const BALANCES = ['round-robin', 'least-connections', 'hash'] as const;
/** How a route spreads new connections over its upstreams. */
export type Balance = (typeof BALANCES)[number];

/** What a `hash` route hashes to pick an upstream: the client's address or one part of the request. */
export type HashKey =
  { readonly kind: 'client-ip' } | { readonly kind: 'header' | 'cookie' | 'query'; readonly name: string };

/** One upstream of a route: where the gateway connects, and whether with TLS. */
export interface UpstreamSpec {
  /** As written, for logs and /routes; also its identity for health and hashing. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly tls: boolean;
  /**
   * The path written on the upstream URL: it replaces the route's matched prefix (nginx `proxy_pass` with a URI).
   * Undefined when the URL has none: the request path goes through unchanged.
   */
  readonly path: string | undefined;
  /** Its share of new connections against the route's other upstreams (1 to 1000; default 1). */
  readonly weight: number;
}

/**
 * What a route may set for itself. Undefined: the top-level value applies. Durations in milliseconds.
 */
export interface RouteOptions {
  readonly idleTimeout: number | undefined;
  readonly maxLifetime: number | undefined;
  readonly ping: number | undefined;
  readonly pingTimeout: number | undefined;
  readonly allowOrigins: readonly string[] | undefined;
  /** Request header fields sent to the upstream, replacing any of the same name. */
  readonly setHeaders: readonly (readonly [string, string])[];
  /** Request header fields (lowercase names) never sent to the upstream. */
  readonly removeHeaders: readonly string[];
  /** Warm connections per upstream of this route (`--warm`). */
  readonly warm?: number | undefined;
}

/** A host and path prefix, the upstreams that serve them, how they are balanced, and the route's own options. */
export interface RouteSpec {
  /** `HOST/PATH` or `PATH`: the route's name in metrics, logs and /routes. */
  readonly name: string;
  /** An exact name or `*.suffix` (lowercase); undefined matches any host. */
  readonly host: string | undefined;
  /** A path prefix, always starting with `/`. */
  readonly path: string;
  readonly upstreams: readonly UpstreamSpec[];
  readonly balance: Balance;
  /** Set when `balance` is `hash`. */
  readonly hashKey: HashKey | undefined;
  readonly options: RouteOptions;
}

export const NO_ROUTE_OPTIONS: RouteOptions = {
  idleTimeout: undefined,
  maxLifetime: undefined,
  ping: undefined,
  pingTimeout: undefined,
  allowOrigins: undefined,
  setHeaders: [],
  removeHeaders: [],
};

const ROUTE_KEYS = [
  'host',
  'path',
  'upstream',
  'balance',
  'hash-key',
  'idle-timeout',
  'max-lifetime',
  'ping',
  'ping-timeout',
  'allow-origin',
  'set-headers',
  'remove-headers',
  'warm',
] as const;

/** Keys an older or a guessed spelling might use, and the key to write instead. */
const RENAMED: Readonly<Record<string, string>> = {
  hashKey: 'hash-key',
  idleTimeout: 'idle-timeout',
  maxLifetime: 'max-lifetime',
  pingTimeout: 'ping-timeout',
  allowOrigin: 'allow-origin',
  allowOrigins: 'allow-origin',
  setHeaders: 'set-headers',
  removeHeaders: 'remove-headers',
  upstreams: 'upstream',
};

/** Fields a route may neither set nor remove: they frame the message or make the WebSocket handshake. */
const FIXED_FIELDS = new Set<string>([
  ...HOP_BY_HOP_FIELDS,
  'content-length',
  'transfer-encoding',
  'sec-websocket-key',
  'sec-websocket-version',
]);

export function routeName(host: string | undefined, path: string): string {
  return host === undefined ? path : `${host}${path}`;
}

/**
 * Parses `ws://h:p`, `wss://h/v2/`, `http://...`, `https://...`. A path on the URL replaces the route's matched
 * prefix; without one the request's path goes through unchanged.
 */
export function parseUpstream(text: string, source: string, where: string, weight = 1): UpstreamSpec {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw configError(source, where, `invalid upstream URL ${JSON.stringify(text)}`);
  }
  if (!(UPSTREAM_SCHEMES as readonly string[]).includes(url.protocol)) {
    throw configError(source, where, `upstream ${text} must be ws://, wss://, http:// or https://`);
  }
  if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    throw configError(
      source,
      where,
      `upstream ${text} must be scheme://host[:port][/path] only: no query, fragment or credentials`,
    );
  }
  // `http://u` and `http://u/` parse alike; as in nginx, only a written path rewrites.
  const written = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*(\/[^?#]*)?/i.exec(text)?.[1];
  const tls = url.protocol === 'wss:' || url.protocol === 'https:';
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return {
    url: text,
    host,
    port: url.port === '' ? (tls ? 443 : 80) : Number(url.port),
    tls,
    path: written === undefined ? undefined : url.pathname,
    weight,
  };
}

export function checkPath(path: string, source: string, where: string): string {
  if (!path.startsWith('/') || /[\s?#]/.test(path)) {
    throw configError(
      source,
      where,
      `a route path must start with / and hold no spaces, ? or #, got ${path}`,
    );
  }
  return path;
}

/** A route's host: an exact name or `*.suffix`, case-insensitive, without a port or a final dot. */
export function checkHost(host: string, source: string, where: string): string {
  const h = host.toLowerCase().replace(/\.$/, '');
  if (!/^(\*\.)?[a-z0-9_-]+(\.[a-z0-9_-]+)*$/.test(h)) {
    throw configError(
      source,
      where,
      `invalid host ${JSON.stringify(host)}: a name such as app.example.com or *.example.com, no port`,
    );
  }
  return h;
}

/** `[HOST]/PATH=UPSTREAM[,UPSTREAM...]` as given to --route. */
export function parseRouteFlag(text: string): RouteSpec {
  const eq = text.indexOf('=');
  if (eq <= 0) throw configError('--route', text, 'expected [HOST]/PATH=UPSTREAM[,UPSTREAM...]');
  const left = text.slice(0, eq);
  const slash = left.indexOf('/');
  if (slash < 0) {
    throw configError('--route', text, `a route path must start with / (HOST/PATH for a host), got ${left}`);
  }
  const host = slash === 0 ? undefined : checkHost(left.slice(0, slash), '--route', text);
  const path = checkPath(left.slice(slash), '--route', text);
  const list = text
    .slice(eq + 1)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (list.length === 0) throw configError('--route', text, 'no upstream after =');
  return {
    name: routeName(host, path),
    host,
    path,
    upstreams: list.map((u) => parseUpstream(u, '--route', text)),
    balance: 'round-robin',
    hashKey: undefined,
    options: NO_ROUTE_OPTIONS,
  };
}

/** `client-ip`, `header:NAME`, `cookie:NAME` or `query:NAME`. */
export function parseHashKey(text: string, source: string, where: string): HashKey {
  if (text === 'client-ip') return { kind: 'client-ip' };
  const m = /^(header|cookie|query):(.+)$/.exec(text);
  const kind = m?.[1] as 'header' | 'cookie' | 'query' | undefined;
  const name = m?.[2] ?? '';
  if (kind === undefined || (kind !== 'query' && !isToken(name))) {
    throw configError(
      source,
      where,
      `expected client-ip, header:NAME, cookie:NAME or query:NAME, got ${JSON.stringify(text)}`,
    );
  }
  return { kind, name: kind === 'header' ? name.toLowerCase() : name };
}

/** Seconds in the file, milliseconds inside. */
export function seconds(node: ConfigNode, key: string): number | undefined {
  const v = node.number(key, { min: 0, max: 31 * 24 * 3600 });
  return v === undefined ? undefined : Math.round(v * 1000);
}

function checkKeys(r: ConfigNode): void {
  const raw = r.raw;
  if (raw !== null && typeof raw === 'object' && !Array.isArray(raw)) {
    for (const k of Object.keys(raw)) {
      const instead = RENAMED[k];
      if (instead !== undefined) throw r.error(`use ${instead} (keys are the flags' names, kebab-case)`, k);
    }
  }
  r.onlyKeys(ROUTE_KEYS);
}

function upstreamsFromNode(r: ConfigNode, source: string): UpstreamSpec[] {
  const node = r.get('upstream');
  const raw = node.raw;
  if (raw === undefined || raw === null || (Array.isArray(raw) && raw.length === 0))
    throw r.error('missing key (a URL, { url, weight }, or a list of them)', 'upstream');
  const items = Array.isArray(raw) ? r.list('upstream') : [new ConfigNode(raw, source, `${node.path}[0]`)];
  return items.map((item) => {
    const v = item.raw;
    if (typeof v === 'string' || typeof v === 'number') return parseUpstream(String(v), source, item.path);
    if (v === null || typeof v !== 'object' || Array.isArray(v))
      throw item.error('expected a URL or { url, weight }');
    item.onlyKeys(['url', 'weight']);
    const url = item.string('url');
    if (url === undefined) throw item.error('missing key', 'url');
    const weight = item.number('weight', { min: 1, max: 1000, integer: true }) ?? 1;
    return parseUpstream(url, source, `${item.path}.url`, weight);
  });
}

function headerName(name: string, where: ConfigNode, key: string): string {
  const lower = name.toLowerCase();
  if (!isToken(name)) throw where.error(`invalid header name ${JSON.stringify(name)}`, key);
  if (FIXED_FIELDS.has(lower))
    throw where.error(`${name} is set by the gateway itself (framing or the WebSocket handshake)`, key);
  return lower;
}

function setHeadersFromNode(r: ConfigNode): [string, string][] {
  const node = r.get('set-headers');
  const raw = node.raw;
  if (raw === undefined || raw === null) return [];
  if (typeof raw !== 'object' || Array.isArray(raw))
    throw r.error('expected a mapping of header names to values', 'set-headers');
  return Object.keys(raw).map((name) => {
    headerName(name, node, name);
    const value = node.string(name);
    if (value === undefined || !isValidFieldValue(value))
      throw node.error('expected a header value (no control characters)', name);
    return [name, value];
  });
}

function optionsFromNode(r: ConfigNode): RouteOptions {
  const remove = (r.strings('remove-headers') ?? []).map((n, i) => headerName(n, r, `remove-headers[${i}]`));
  if (remove.includes('host'))
    throw r.error('Host cannot be removed (HTTP/1.1 requires it)', 'remove-headers');
  return {
    idleTimeout: seconds(r, 'idle-timeout'),
    maxLifetime: seconds(r, 'max-lifetime'),
    ping: seconds(r, 'ping'),
    pingTimeout: seconds(r, 'ping-timeout'),
    allowOrigins: r.strings('allow-origin'),
    setHeaders: setHeadersFromNode(r),
    removeHeaders: remove,
    warm: r.number('warm', { min: 0, max: MAX_WARM, integer: true }),
  };
}

/** One `routes:` entry of a config file. */
export function routeFromNode(r: ConfigNode, source: string): RouteSpec {
  checkKeys(r);
  const pathText = r.string('path');
  if (pathText === undefined) throw r.error('missing key', 'path');
  const path = checkPath(pathText, source, `${r.path}.path`);
  const hostText = r.string('host');
  const host = hostText === undefined ? undefined : checkHost(hostText, source, `${r.path}.host`);
  const balanceText = r.string('balance') ?? 'round-robin';
  if (!(BALANCES as readonly string[]).includes(balanceText))
    throw r.error(`expected one of ${BALANCES.join(', ')}, got ${JSON.stringify(balanceText)}`, 'balance');
  const balance = balanceText as Balance;
  const keyText = r.string('hash-key');
  if (keyText !== undefined && balance !== 'hash') throw r.error('needs balance: hash', 'hash-key');
  const hashKey =
    balance === 'hash' ? parseHashKey(keyText ?? 'client-ip', source, `${r.path}.hash-key`) : undefined;
  return {
    name: routeName(host, path),
    host,
    path,
    upstreams: upstreamsFromNode(r, source),
    balance,
    hashKey,
    options: optionsFromNode(r),
  };
}

function hashKeyText(k: HashKey): string {
  return k.kind === 'client-ip' ? k.kind : `${k.kind}:${k.name}`;
}

/** A route as the config file would write it, for `/routes`. */
export function routeToJson(r: RouteSpec): Record<string, unknown> {
  const o = r.options;
  const s = (ms: number | undefined): number | null => (ms === undefined ? null : ms / 1000);
  return {
    name: r.name,
    host: r.host ?? null,
    path: r.path,
    upstream: r.upstreams.map((u) => ({ url: u.url, weight: u.weight })),
    balance: r.balance,
    'hash-key': r.hashKey === undefined ? null : hashKeyText(r.hashKey),
    'idle-timeout': s(o.idleTimeout),
    'max-lifetime': s(o.maxLifetime),
    ping: s(o.ping),
    'ping-timeout': s(o.pingTimeout),
    'allow-origin': o.allowOrigins ?? null,
    'set-headers': Object.fromEntries(o.setHeaders),
    'remove-headers': o.removeHeaders,
    warm: o.warm ?? null,
  };
}
