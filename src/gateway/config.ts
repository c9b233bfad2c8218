/**
 * The gateway's configuration: one shape whether it comes from flags or from a YAML file, validated before it is
 * used, at start and at every reload. Validation names the key and the problem; nothing is half-applied.
 */
import { ConfigNode } from '../config.js';
import { WsviaError } from '../errors.js';
import { parseCidr, type Cidr } from '../route/cidr.js';
import { DEFAULT_ADMISSION } from '../serve/admission.js';
import { routeFromNode, routeToJson, seconds, type RouteSpec } from './route-config.js';

export {
  BALANCES,
  parseRouteFlag,
  parseUpstream,
  UPSTREAM_SCHEMES,
  type Balance,
  type HashKey,
  type RouteOptions,
  type RouteSpec,
  type UpstreamSpec,
} from './route-config.js';

/** A TLS listener route by server name: connections for `name` are passed, still encrypted, to `host:port`. */
export interface SniRoute {
  /** A server name, or `*.example.com` for any one label in front of example.com. */
  readonly name: string;
  readonly host: string;
  readonly port: number;
}

export interface Limits {
  /** Open client connections at once; over it: 503 + Retry-After (a close for TLS). 0: no limit. */
  readonly maxConnections: number;
  /** Open connections per client address; over it: 429 + Retry-After (a close for TLS). 0: no limit. */
  readonly maxPerClient: number;
  /** Request head size; over it: 431. */
  readonly maxHeaderBytes: number;
  /** Milliseconds from accept to a complete request head; over it: 408. */
  readonly handshakeTimeout: number;
  /** Milliseconds to connect to an upstream (TCP and TLS); over it, for every pool member: 504. */
  readonly connectTimeout: number;
  /** Milliseconds without a byte either way before a WebSocket is closed. 0: never (the default). */
  readonly idleTimeout: number;
  /** Milliseconds a WebSocket may live. 0: forever (the default). */
  readonly maxLifetime: number;
  /** Milliseconds to wait for WebSockets to close on SIGTERM. */
  readonly drainTimeout: number;
  /** Milliseconds over which the 1001 closes are spread on SIGTERM. */
  readonly drainSpread: number;
}

export interface TlsSpec {
  readonly listen: string | undefined;
  readonly cert: string | undefined;
  readonly key: string | undefined;
}

/** The gateway's whole configuration, validated: listeners, routes, origins, keepalive, limits, operations. */
export interface GatewayConfig {
  readonly listen: string | undefined;
  readonly tls: TlsSpec;
  readonly routes: readonly RouteSpec[];
  readonly sni: readonly SniRoute[];
  /** Empty: every Origin is allowed. */
  readonly allowOrigins: readonly string[];
  /** Milliseconds between pings to both sides of each WebSocket; 0: no pings. */
  readonly ping: number;
  /** Milliseconds to wait for a pong; default the ping interval. */
  readonly pingTimeout: number;
  readonly admin: string | undefined;
  readonly trustProxy: readonly Cidr[];
  readonly proxyProtocol: boolean;
  readonly limits: Limits;
  /** Milliseconds between health checks of an upstream marked dead. */
  readonly healthInterval: number;
  /** `-` for stdout, a file path, or undefined for none. */
  readonly accessLog: string | undefined;
  /** Trust these CA certificates (PEM file) for wss:// and https:// upstreams. */
  readonly upstreamCa: string | undefined;
  /** New connections a second from one client address (a burst of as many), then 429. 0: no limit. */
  readonly ratePerClient: number;
}

export const DEFAULT_LIMITS: Limits = {
  ...DEFAULT_ADMISSION,
  maxHeaderBytes: 16 * 1024,
  handshakeTimeout: 10_000,
  connectTimeout: 5_000,
  idleTimeout: 0,
  maxLifetime: 0,
  drainTimeout: 10_000,
  drainSpread: 5_000,
};

export function configError(source: string, where: string, problem: string): WsviaError {
  return new WsviaError('CONFIG_INVALID', `${source}: ${where}: ${problem}`, {
    hop: 'config',
    hint: 'fix it; the running configuration, if any, is kept',
  });
}

/** `NAME=HOST:PORT` as given to --sni. */
export function parseSniFlag(text: string, source = '--sni'): SniRoute {
  const eq = text.indexOf('=');
  if (eq <= 0) throw configError(source, text, 'expected NAME=HOST:PORT');
  return sniRoute(text.slice(0, eq), text.slice(eq + 1), source, text);
}

function sniRoute(name: string, backend: string, source: string, where: string): SniRoute {
  const n = name.toLowerCase();
  if (!/^(\*\.)?[a-z0-9-]+(\.[a-z0-9-]+)*$/.test(n)) {
    throw configError(
      source,
      where,
      `invalid server name ${JSON.stringify(name)} (wildcards: *.example.com)`,
    );
  }
  const { host, port } = parseHostPort(backend, source, where);
  return { name: n, host, port };
}

export function parseHostPort(text: string, source: string, where: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const port = Number(m?.[3]);
  if (!m || port > 65535) throw configError(source, where, `expected HOST:PORT, got ${JSON.stringify(text)}`);
  return { host: (m[1] ?? m[2]) as string, port };
}

export function parseTrust(list: readonly string[], source: string, where: string): Cidr[] {
  return list.map((t) => {
    const c = parseCidr(t);
    if (!c) throw configError(source, where, `invalid address or CIDR ${JSON.stringify(t)}`);
    return c;
  });
}

/** Checks what flags and files have in common: something to listen on, and listeners that can work. */
export function validateConfig(c: GatewayConfig, source: string): GatewayConfig {
  if (c.listen === undefined && c.tls.listen === undefined) {
    throw configError(source, 'listen', 'nothing to listen on: give listen (--listen) or tls.listen');
  }
  if (c.listen !== undefined) parseHostPort(c.listen, source, 'listen');
  if (c.admin !== undefined) parseHostPort(c.admin, source, 'admin');
  if (c.tls.listen !== undefined) {
    parseHostPort(c.tls.listen, source, 'tls.listen');
    if ((c.tls.cert === undefined) !== (c.tls.key === undefined))
      throw configError(source, 'tls', 'cert and key go together');
    if (c.tls.cert === undefined && c.sni.length === 0)
      throw configError(source, 'tls', 'a TLS listener needs a cert and key, or SNI passthrough routes');
  } else if (c.sni.length > 0) {
    throw configError(source, 'sni', 'SNI passthrough routes need a TLS listener (tls.listen, --tls-listen)');
  }
  if (c.routes.length === 0 && c.sni.length === 0) {
    throw configError(source, 'routes', 'no routes: give at least one (--route PATH=UPSTREAM)');
  }
  const seen = new Set<string>();
  for (const r of c.routes) {
    const what = r.host === undefined ? `path ${r.path}` : `host ${r.host} with path ${r.path}`;
    if (seen.has(r.name)) throw configError(source, 'routes', `${what} appears twice`);
    seen.add(r.name);
  }
  return c;
}

const TOP_KEYS = [
  'listen',
  'tls',
  'routes',
  'sni',
  'allowOrigins',
  'ping',
  'pingTimeout',
  'admin',
  'trustProxy',
  'proxyProtocol',
  'limits',
  'healthInterval',
  'accessLog',
  'upstreamCa',
  'rate-per-client',
] as const;
const LIMIT_KEYS = [
  'maxConnections',
  'maxPerClient',
  'maxHeaderBytes',
  'handshakeTimeout',
  'connectTimeout',
  'idleTimeout',
  'maxLifetime',
  'drainTimeout',
  'drainSpread',
] as const;

/** A YAML document to a validated config. Durations are in seconds; `limits.*Timeout`, `ping` too. */
export function configFromNode(
  root: ConfigNode,
  source: string,
  options: { validate?: boolean } = {},
): GatewayConfig {
  root.onlyKeys(TOP_KEYS);
  const tls = root.get('tls').onlyKeys(['listen', 'cert', 'key']);
  const limitsNode = root.get('limits').onlyKeys(LIMIT_KEYS);
  const routes = root.list('routes').map((r) => routeFromNode(r, source));
  const sni = root.list('sni').map((s, i) => {
    s.onlyKeys(['name', 'backend']);
    const name = s.string('name');
    const backend = s.string('backend');
    if (name === undefined) throw s.error('missing key', 'name');
    if (backend === undefined) throw s.error('missing key (HOST:PORT)', 'backend');
    return sniRoute(name, backend, source, `sni[${i}]`);
  });
  const d = DEFAULT_LIMITS;
  const ms = (key: string, dflt: number): number => seconds(limitsNode, key) ?? dflt;
  const count = (key: string, dflt: number): number =>
    limitsNode.number(key, { min: 0, integer: true }) ?? dflt;
  const ping = seconds(root, 'ping') ?? 0;
  const config: GatewayConfig = {
    listen: root.string('listen'),
    tls: { listen: tls.string('listen'), cert: tls.string('cert'), key: tls.string('key') },
    routes,
    sni,
    allowOrigins: root.strings('allowOrigins') ?? [],
    ping,
    pingTimeout: seconds(root, 'pingTimeout') ?? ping,
    admin: root.string('admin'),
    trustProxy: parseTrust(root.strings('trustProxy') ?? [], source, 'trustProxy'),
    proxyProtocol: root.boolean('proxyProtocol') ?? false,
    limits: {
      maxConnections: count('maxConnections', d.maxConnections),
      maxPerClient: count('maxPerClient', d.maxPerClient),
      maxHeaderBytes:
        limitsNode.number('maxHeaderBytes', { min: 1024, max: 1 << 20, integer: true }) ?? d.maxHeaderBytes,
      handshakeTimeout: ms('handshakeTimeout', d.handshakeTimeout),
      connectTimeout: ms('connectTimeout', d.connectTimeout),
      idleTimeout: ms('idleTimeout', d.idleTimeout),
      maxLifetime: ms('maxLifetime', d.maxLifetime),
      drainTimeout: ms('drainTimeout', d.drainTimeout),
      drainSpread: ms('drainSpread', d.drainSpread),
    },
    healthInterval: seconds(root, 'healthInterval') ?? 2_000,
    accessLog: root.string('accessLog'),
    upstreamCa: root.string('upstreamCa'),
    ratePerClient: root.number('rate-per-client', { min: 0, max: 1_000_000 }) ?? 0,
  };
  return options.validate === false ? config : validateConfig(config, source);
}

/** The running config as JSON for `/routes` (no key material: file paths only). */
export function configToJson(c: GatewayConfig): Record<string, unknown> {
  return {
    listen: c.listen ?? null,
    tls: { listen: c.tls.listen ?? null, cert: c.tls.cert ?? null },
    routes: c.routes.map(routeToJson),
    sni: c.sni.map((s) => ({ name: s.name, backend: `${s.host}:${s.port}` })),
    allowOrigins: c.allowOrigins,
    pingSeconds: c.ping / 1000,
    trustProxy: c.trustProxy.map((t) => t.text),
    proxyProtocol: c.proxyProtocol,
    limits: c.limits,
    'rate-per-client': c.ratePerClient,
  };
}

/** What a WebSocket on `route` runs with: the route's own values over the top-level ones (milliseconds). */
export interface Keepalive {
  readonly ping: number;
  readonly pingTimeout: number;
  readonly idleTimeout: number;
  readonly maxLifetime: number;
}

export function routeKeepalive(c: GatewayConfig, route: RouteSpec): Keepalive {
  const o = route.options;
  const ping = o.ping ?? c.ping;
  // A route that sets its own ping and no timeout waits one of its own intervals, as the top level does.
  const pingTimeout = o.pingTimeout ?? (o.ping !== undefined ? o.ping : c.pingTimeout || c.ping);
  return {
    ping,
    pingTimeout: pingTimeout || ping,
    idleTimeout: o.idleTimeout ?? c.limits.idleTimeout,
    maxLifetime: o.maxLifetime ?? c.limits.maxLifetime,
  };
}

/** The Origins a route admits: its own list, or the top-level one. */
export function routeOrigins(c: GatewayConfig, route: RouteSpec): readonly string[] {
  return route.options.allowOrigins ?? c.allowOrigins;
}
