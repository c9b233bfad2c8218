/**
 * A ProxySelector, as Java's `java.net.ProxySelector` has it: a function from a target to the routes to try, in
 * order. The dial tries each (skipping proxies that failed recently) until one connects. wsvia's built-ins are
 * pure here (static, environment, chain); the PAC one needs to fetch the file and lives in dial/.
 */
import {
  chooseRoute,
  prependHops,
  proxyList,
  type EnvProxies,
  type ProxyInput,
  type RouteDecision,
} from './choose.js';

/** What a selector is asked about. `url` is `http://host:port/` or `https://host:port/` (ws/wss mapped, as Chrome does for PAC). */
export interface SelectorTarget {
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly secure: boolean;
}

/** Returns the routes to try, best first; an empty list is an error (nothing to try). */
export type ProxySelector = (
  target: SelectorTarget,
) => readonly RouteDecision[] | Promise<readonly RouteDecision[]>;

/**
 * Always the same proxy (or chain), or direct with `false`; `noProxy` entries go direct.
 *
 * @example
 * await connect('wss://echo.example/', { proxySelector: staticSelector(['socks5h://127.0.0.1:1080', 'http://p:3128']) });
 */
export function staticSelector(proxy: ProxyInput | false, noProxy?: string): ProxySelector {
  return (t) => [chooseRoute(t, { proxy, ...(noProxy === undefined ? {} : { noProxy }) })];
}

/** The environment's variables, read once by the caller with `routeConfigFromEnv`. */
export function environmentSelector(env: EnvProxies, noProxy?: string): ProxySelector {
  return (t) => [chooseRoute(t, { env, ...(noProxy === undefined ? {} : { noProxy }) })];
}

/** Every route of `inner` reached through `preproxy` first (curl's --preproxy, for any selector). */
export function chainSelector(preproxy: ProxyInput, inner: ProxySelector): ProxySelector {
  const before = proxyList(preproxy);
  return async (t) => (await inner(t)).map((r) => prependHops(r, before));
}

/**
 * Tries each selector's routes in turn: the first selector's first.
 *
 * @example
 * const selector = failoverSelector(pacSelector('http://wpad.corp/wpad.dat'), staticSelector('socks5h://127.0.0.1:1080'));
 */
export function failoverSelector(...selectors: readonly ProxySelector[]): ProxySelector {
  return async (t) => {
    const out: RouteDecision[] = [];
    for (const s of selectors) out.push(...(await s(t)));
    return out;
  };
}
