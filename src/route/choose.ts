/**
 * Where a connection goes, decided as a pure function of the target and a configuration read once at the edge
 * (STYLE 11). The decision says why, so `--trace` and the doctor can print it.
 */
import { invalidArgument } from '../errors.js';
import { matchNoProxy, parseNoProxy, type NoProxyRule } from './no-proxy.js';
import { parseProxyUrl, type ProxyUrl } from './proxy-url.js';

/** One proxy, or a chain of them in the order they are dialled (the last one reaches the target). */
export type ProxyInput = string | ProxyUrl | readonly (string | ProxyUrl)[];

/**
 * What {@link chooseRoute} decides from: an explicit proxy or chain, a no-proxy list, the environment's variables.
 */
export interface RouteConfig {
  /**
   * An explicit proxy (`--proxy`, the `proxy` option): wins over the environment. `false` forces direct. A list is
   * a chain: the first is dialled, each next one is reached through the one before, the last reaches the target.
   */
  readonly proxy?: ProxyInput | false;
  /**
   * Proxies dialled before the route's own (curl's `--preproxy`, there a SOCKS proxy): prepended to every route,
   * a direct one included (the target is then reached from the preproxy).
   */
  readonly preproxy?: ProxyInput;
  /** Explicit no-proxy list (`--noproxy`), or from NO_PROXY. */
  readonly noProxy?: string;
  /** Proxy variables from the environment, as read by {@link routeConfigFromEnv}. */
  readonly env?: EnvProxies;
}

export interface EnvProxies {
  /** For ws:// targets: the variable's name and value. */
  readonly ws?: { readonly name: string; readonly value: string };
  readonly wss?: { readonly name: string; readonly value: string };
  readonly noProxy?: { readonly name: string; readonly value: string };
}

/** A route to a target: the proxies to dial in order (none: direct), and why, for `wsvia route` and the doctor. */
export interface RouteDecision {
  /** The proxy that reaches the target (the last hop), or null for a direct connection. */
  readonly proxy: ProxyUrl | null;
  /**
   * Every proxy in dialling order, the last being `proxy`; absent means `[proxy]` (or none when direct). A chain
   * from `--preproxy` or a proxy list has more than one.
   */
  readonly hops?: readonly ProxyUrl[];
  readonly reason: string;
  readonly source: 'option' | 'environment' | 'no-proxy' | 'direct' | 'pac' | 'wpad' | 'selector';
  readonly variable?: string;
  readonly noProxyEntry?: string;
}

const ENV_ORDER = {
  // Lowercase before uppercase for each name (curl); the WebSocket-specific names first, then http(s), then all.
  wss: ['wss_proxy', 'WSS_PROXY', 'https_proxy', 'HTTPS_PROXY', 'all_proxy', 'ALL_PROXY'],
  ws: ['ws_proxy', 'WS_PROXY', 'http_proxy', 'HTTP_PROXY', 'all_proxy', 'ALL_PROXY'],
  noProxy: ['no_proxy', 'NO_PROXY'],
} as const;

function firstSet(env: Readonly<Record<string, string | undefined>>, names: readonly string[]) {
  for (const name of names) {
    const value = env[name];
    if (value !== undefined && value.trim() !== '') return { name, value: value.trim() };
  }
  return undefined;
}

/** Reads the proxy variables once. Call this at the edge (CLI, `connect()`), never during a dial. */
export function routeConfigFromEnv(env: Readonly<Record<string, string | undefined>>): EnvProxies {
  // httpoxy (CVE-2016-5385): under CGI, a request's `Proxy:` header arrives as HTTP_PROXY, so the client would pick
  // the proxy. As Go's net/http/httpproxy does, HTTP_PROXY is ignored when REQUEST_METHOD says we run under CGI.
  const cgi = env.REQUEST_METHOD !== undefined && env.REQUEST_METHOD !== '';
  const ws = firstSet(
    env,
    ENV_ORDER.ws.filter((n) => !(cgi && n === 'HTTP_PROXY')),
  );
  const wss = firstSet(env, ENV_ORDER.wss);
  const noProxy = firstSet(env, ENV_ORDER.noProxy);
  return { ...(ws ? { ws } : {}), ...(wss ? { wss } : {}), ...(noProxy ? { noProxy } : {}) };
}

export interface RouteTarget {
  /** `ws:`/`wss:`/`http:`/`https:`; secure schemes use the wss/https variables. */
  readonly secure: boolean;
  readonly host: string;
  readonly port: number;
}

function chooseBaseRoute(target: RouteTarget, cfg: RouteConfig): RouteDecision {
  if (cfg.proxy === false) return { proxy: null, reason: 'direct: proxy disabled', source: 'direct' };
  const noProxyText = cfg.noProxy ?? cfg.env?.noProxy?.value;
  const noProxyName = cfg.noProxy !== undefined ? '--noproxy' : (cfg.env?.noProxy?.name ?? 'NO_PROXY');
  const rules: NoProxyRule[] = noProxyText === undefined ? [] : parseNoProxy(noProxyText);
  const match = matchNoProxy(rules, target.host, target.port);

  let proxy: ProxyUrl;
  let chain: ProxyUrl[] = [];
  let base: string;
  let source: 'option' | 'environment';
  let variable: string | undefined;
  if (cfg.proxy !== undefined) {
    chain = proxyList(cfg.proxy);
    proxy = chain[chain.length - 1] as ProxyUrl;
    base =
      chain.length > 1
        ? `chain ${describeHops(chain)} from the options`
        : `proxy ${proxy.display} from the options`;
    source = 'option';
  } else {
    const v = target.secure ? cfg.env?.wss : cfg.env?.ws;
    if (!v) {
      const names = (target.secure ? ENV_ORDER.wss : ENV_ORDER.ws)
        .filter((n) => n === n.toLowerCase())
        .join(', ');
      return { proxy: null, reason: `direct: no proxy set (${names} unset)`, source: 'direct' };
    }
    try {
      proxy = parseProxyUrl(v.value);
    } catch (e) {
      throw invalidArgument(
        `${v.name} holds an invalid proxy URL`,
        e instanceof Error ? e.message : String(e),
      );
    }
    base = `proxy ${proxy.display} from ${v.name}`;
    source = 'environment';
    variable = v.name;
  }
  if (match) {
    return {
      proxy: null,
      reason: `direct: ${noProxyName} entry '${match.text}' matches ${target.host}`,
      source: 'no-proxy',
      ...(variable ? { variable } : {}),
      noProxyEntry: match.text,
    };
  }
  const np = rules.length > 0 ? `; no ${noProxyName} entry matched ${target.host}` : '';
  return {
    proxy,
    ...(chain.length > 1 ? { hops: chain } : {}),
    reason: `${base}${np}`,
    source,
    ...(variable ? { variable } : {}),
  };
}

/** A proxy or a list of proxies, parsed; an empty list is refused. */
export function proxyList(input: ProxyInput): ProxyUrl[] {
  const items = typeof input === 'string' || !Array.isArray(input) ? [input as string | ProxyUrl] : input;
  if (items.length === 0) throw invalidArgument('an empty proxy chain', 'give at least one proxy URL');
  return items.map((p: string | ProxyUrl) => (typeof p === 'string' ? parseProxyUrl(p) : p));
}

/** `socks5://a:1080 -> http://b:3128`, for reasons and messages. */
export function describeHops(hops: readonly ProxyUrl[]): string {
  return hops.map((h) => h.display).join(' -> ');
}

/** Every proxy of a decision in dialling order (empty for direct). */
export function routeHops(route: RouteDecision): readonly ProxyUrl[] {
  return route.hops ?? (route.proxy ? [route.proxy] : []);
}

/** The decision with `before` dialled first: the preproxy of curl, generalised to any list. */
export function prependHops(route: RouteDecision, before: readonly ProxyUrl[]): RouteDecision {
  if (before.length === 0) return route;
  const hops = [...before, ...routeHops(route)];
  return {
    ...route,
    proxy: hops[hops.length - 1] as ProxyUrl,
    hops,
    reason: `${route.reason}; through preproxy ${describeHops(before)} first`,
  };
}

/**
 * Where a connection to `target` goes, and why: the explicit proxy (or chain), else the environment's variables,
 * unless a no-proxy entry matches; then any preproxy in front. Pure: no DNS, no environment read here.
 */
export function chooseRoute(target: RouteTarget, cfg: RouteConfig): RouteDecision {
  const route = chooseBaseRoute(target, cfg);
  return cfg.preproxy === undefined ? route : prependHops(route, proxyList(cfg.preproxy));
}
