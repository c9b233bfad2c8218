/**
 * The gateway's configuration: one shape whether it comes from flags or from a YAML file, validated before it is
 * used, at start and at every reload. Validation names the key and the problem; nothing is half-applied.
 */
import { flagValuesFromConfig, type ConfigNode, type FlagValues } from '../config.js';
import { invalidArgument, WsviaError } from '../errors.js';
import { parseCidr, type Cidr } from '../route/cidr.js';
import { DEFAULT_ADMISSION } from '../serve/admission.js';
import { formatListen, parseListen } from '../serve/listen-address.js';
import { routeFromNode, routeToJson, type RouteSpec } from './route-config.js';

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
  /** Connections dialed ahead of need per plain upstream, each used for one WebSocket upgrade. 0: dial on demand. */
  readonly warm: number;
  /**
   * The WebSocket relay: `native` (the addon scans frame headers and splices payloads, JavaScript handles every
   * event; plain TCP both sides, routes without ping), `js`, or `auto` (native where it can run).
   */
  readonly relay: GatewayRelayChoice;
}

/** Warm connections per upstream when neither `--warm` nor a route's `warm` says otherwise. */
export const DEFAULT_WARM = 2;
/** At most this many per upstream: warm connections are for latency, not a connection pool to size for load. */
export const MAX_WARM = 64;

export const GATEWAY_RELAY_CHOICES = ['auto', 'js', 'native'] as const;
export type GatewayRelayChoice = (typeof GATEWAY_RELAY_CHOICES)[number];

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

/**
 * The gateway's flags that are also its config file's top-level keys, by the same names (`--max-connections 100`
 * is `max-connections: 100`), with their util.parseArgs shapes. `routes:` and `sni:` are lists of mappings, read
 * apart.
 */
export const GATEWAY_FLAGS = {
  listen: { type: 'string' },
  'tls-listen': { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'allow-origin': { type: 'string', multiple: true },
  'trust-proxy': { type: 'string', multiple: true },
  'proxy-protocol': { type: 'boolean' },
  'upstream-ca': { type: 'string' },
  ping: { type: 'string' },
  'ping-timeout': { type: 'string' },
  'idle-timeout': { type: 'string' },
  'max-lifetime': { type: 'string' },
  'drain-timeout': { type: 'string' },
  'drain-spread': { type: 'string' },
  'max-connections': { type: 'string' },
  'max-per-client': { type: 'string' },
  'rate-per-client': { type: 'string' },
  'max-header-bytes': { type: 'string' },
  'handshake-timeout': { type: 'string' },
  'connect-timeout': { type: 'string' },
  'health-interval': { type: 'string' },
  warm: { type: 'string' },
  admin: { type: 'string' },
  'access-log': { type: 'string' },
  relay: { type: 'string' },
} as const;

/** Nothing to listen on and no routes: what flags and a file fill in. */
export const EMPTY_CONFIG: GatewayConfig = {
  listen: undefined,
  tls: { listen: undefined, cert: undefined, key: undefined },
  routes: [],
  sni: [],
  allowOrigins: [],
  ping: 0,
  pingTimeout: 0,
  admin: undefined,
  trustProxy: [],
  proxyProtocol: false,
  limits: DEFAULT_LIMITS,
  healthInterval: 2_000,
  accessLog: undefined,
  upstreamCa: undefined,
  ratePerClient: 0,
  warm: DEFAULT_WARM,
  relay: 'auto',
};

/** How a bad value is reported: against a flag (`--ping expects seconds`) or a file's key. */
type Fail = (key: string, problem: string) => WsviaError;

/** Errors for command-line flags, `--ping expects seconds, got "soon"`, `--listen: port 99999 is out of range` (exit 2). */
export const flagFailure: Fail = (key, problem) =>
  invalidArgument(`--${key}${problem.startsWith('expects') ? ' ' : ': '}${problem}`);

/** Reads flag values (the command line's or a file's) as numbers, addresses and lists, failing through `fail`. */
class FlagReader {
  constructor(
    readonly values: FlagValues,
    readonly fail: Fail,
  ) {}

  string(key: string): string | undefined {
    const v = this.values[key];
    return typeof v === 'string' ? v : undefined;
  }

  list(key: string): string[] | undefined {
    const v = this.values[key];
    return Array.isArray(v) ? v : undefined;
  }

  /** Seconds (fractions allowed) as milliseconds. */
  seconds(key: string): number | undefined {
    const v = this.string(key);
    if (v === undefined) return undefined;
    if (!/^\d+(\.\d+)?$/.test(v) || Number(v) > 31 * 24 * 3600)
      throw this.fail(key, `expects seconds (0 to 31 days), got ${JSON.stringify(v)}`);
    return Math.round(Number(v) * 1000);
  }

  count(key: string, min = 0, max = 999_999_999): number | undefined {
    const v = this.string(key);
    if (v === undefined) return undefined;
    if (!/^\d{1,9}$/.test(v) || Number(v) < min || Number(v) > max)
      throw this.fail(key, `expects a whole number from ${min} to ${max}, got ${JSON.stringify(v)}`);
    return Number(v);
  }

  /** `[HOST:]PORT`, kept as `HOST:PORT` (IPv6 in brackets). */
  address(key: string): string | undefined {
    const v = this.string(key);
    if (v === undefined) return undefined;
    try {
      return formatListen(parseListen(v, `--${key}`));
    } catch (e) {
      // The one parser's words, said of this key or flag.
      throw this.fail(key, (e as WsviaError).summary.slice(`--${key}`.length).replace(/^: /, ''));
    }
  }

  /** A rate, fractions allowed (new connections a second). */
  rate(key: string): number | undefined {
    const v = this.string(key);
    if (v === undefined) return undefined;
    if (!/^\d{1,7}(\.\d+)?$/.test(v) || Number(v) > 1_000_000)
      throw this.fail(key, `expects connections a second (0 to 1000000), got ${JSON.stringify(v)}`);
    return Number(v);
  }

  /** One of `choices`. */
  choice<T extends string>(key: string, choices: readonly T[]): T | undefined {
    const v = this.string(key);
    if (v === undefined) return undefined;
    if (!choices.includes(v as T))
      throw this.fail(key, `expects ${choices.join(', ')}, got ${JSON.stringify(v)}`);
    return v as T;
  }

  cidrs(key: string): Cidr[] | undefined {
    return this.list(key)?.map((t) => {
      const c = parseCidr(t);
      if (!c) throw this.fail(key, `expects an address or CIDR, got ${JSON.stringify(t)}`);
      return c;
    });
  }
}

/**
 * Flag values over a base config: the command line's over a file's, or a file's top-level keys over
 * {@link EMPTY_CONFIG}. One reading of every flag, so a key and its flag cannot differ.
 */
export function applyFlagValues(
  base: GatewayConfig,
  values: FlagValues,
  fail: Fail = flagFailure,
): GatewayConfig {
  const r = new FlagReader(values, fail);
  const l = base.limits;
  const ping = r.seconds('ping') ?? base.ping;
  return {
    ...base,
    listen: r.address('listen') ?? base.listen,
    tls: {
      listen: r.address('tls-listen') ?? base.tls.listen,
      cert: r.string('tls-cert') ?? base.tls.cert,
      key: r.string('tls-key') ?? base.tls.key,
    },
    allowOrigins: r.list('allow-origin') ?? base.allowOrigins,
    ping,
    // The pong wait defaults to the ping interval.
    pingTimeout: r.seconds('ping-timeout') ?? (r.string('ping') !== undefined ? ping : base.pingTimeout),
    admin: r.address('admin') ?? base.admin,
    trustProxy: r.cidrs('trust-proxy') ?? base.trustProxy,
    proxyProtocol: (values['proxy-protocol'] as boolean | undefined) ?? base.proxyProtocol,
    limits: {
      maxConnections: r.count('max-connections') ?? l.maxConnections,
      maxPerClient: r.count('max-per-client') ?? l.maxPerClient,
      maxHeaderBytes: r.count('max-header-bytes', 1024, 1 << 20) ?? l.maxHeaderBytes,
      handshakeTimeout: r.seconds('handshake-timeout') ?? l.handshakeTimeout,
      connectTimeout: r.seconds('connect-timeout') ?? l.connectTimeout,
      idleTimeout: r.seconds('idle-timeout') ?? l.idleTimeout,
      maxLifetime: r.seconds('max-lifetime') ?? l.maxLifetime,
      drainTimeout: r.seconds('drain-timeout') ?? l.drainTimeout,
      drainSpread: r.seconds('drain-spread') ?? l.drainSpread,
    },
    healthInterval: r.seconds('health-interval') ?? base.healthInterval,
    accessLog: r.string('access-log') ?? base.accessLog,
    upstreamCa: r.string('upstream-ca') ?? base.upstreamCa,
    ratePerClient: r.rate('rate-per-client') ?? base.ratePerClient,
    warm: r.count('warm', 0, MAX_WARM) ?? base.warm,
    relay: r.choice('relay', GATEWAY_RELAY_CHOICES) ?? base.relay,
  };
}

/**
 * A YAML document to a validated config. Its top-level keys are the flags' names (see `GATEWAY_FLAGS`);
 * durations are in seconds. An old camelCase key is an error naming its new name.
 */
export function configFromNode(
  root: ConfigNode,
  source: string,
  options: { validate?: boolean } = {},
): GatewayConfig {
  const values = flagValuesFromConfig(root, GATEWAY_FLAGS, ['routes', 'sni']);
  const routes = root.list('routes').map((r) => routeFromNode(r, source));
  const sni = root.list('sni').map((s, i) => {
    s.onlyKeys(['name', 'backend']);
    const name = s.string('name');
    const backend = s.string('backend');
    if (name === undefined) throw s.error('missing key', 'name');
    if (backend === undefined) throw s.error('missing key (HOST:PORT)', 'backend');
    return sniRoute(name, backend, source, `sni[${i}]`);
  });
  const config = applyFlagValues({ ...EMPTY_CONFIG, routes, sni }, values, (key, problem) =>
    configError(source, key, problem),
  );
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
    warm: c.warm,
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
