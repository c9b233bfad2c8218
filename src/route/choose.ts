/**
 * Where a connection goes, decided as a pure function of the target and a configuration read once at the edge
 * (STYLE 11). The decision says why, so `--trace` and the doctor can print it.
 */
import { invalidArgument } from '../errors.js';
import { matchNoProxy, parseNoProxy, type NoProxyRule } from './no-proxy.js';
import { parseProxyUrl, type ProxyUrl } from './proxy-url.js';

export interface RouteConfig {
  /** An explicit proxy (`--proxy`, the `proxy` option): wins over the environment. `false` forces direct. */
  readonly proxy?: string | ProxyUrl | false;
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

export interface RouteDecision {
  /** The proxy to use, or null for a direct connection. */
  readonly proxy: ProxyUrl | null;
  readonly reason: string;
  readonly source: 'option' | 'environment' | 'no-proxy' | 'direct';
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

export function chooseRoute(target: RouteTarget, cfg: RouteConfig): RouteDecision {
  if (cfg.proxy === false) return { proxy: null, reason: 'direct: proxy disabled', source: 'direct' };
  const noProxyText = cfg.noProxy ?? cfg.env?.noProxy?.value;
  const noProxyName = cfg.noProxy !== undefined ? '--noproxy' : (cfg.env?.noProxy?.name ?? 'NO_PROXY');
  const rules: NoProxyRule[] = noProxyText === undefined ? [] : parseNoProxy(noProxyText);
  const match = matchNoProxy(rules, target.host, target.port);

  let proxy: ProxyUrl;
  let base: string;
  let source: 'option' | 'environment';
  let variable: string | undefined;
  if (cfg.proxy !== undefined) {
    proxy = typeof cfg.proxy === 'string' ? parseProxyUrl(cfg.proxy) : cfg.proxy;
    base = `proxy ${proxy.display} from the options`;
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
  return { proxy, reason: `${base}${np}`, source, ...(variable ? { variable } : {}) };
}
