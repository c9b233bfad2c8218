/** Options shared by every dial step. */
import type { HeaderList } from '../protocol/headers.js';
import type { HeadLimits } from '../protocol/head.js';
import type { Credentials } from '../auth/credentials.js';
import type { AuthScheme } from '../auth/select.js';
import type { ProxyInput, RouteDecision } from '../route/choose.js';
import type { ProxySelector } from '../route/selector.js';
import type { BadProxyList } from './bad-proxies.js';
import type { WpadOptions } from './wpad.js';
import type { TraceCallback } from '../observe/trace.js';

/** Milliseconds allowed for each step; each expiry fails with its own code. */
export interface Timeouts {
  /** TCP connect (DNS included) to the proxy or the target: TCP_TIMEOUT. */
  readonly tcp?: number;
  /** From CONNECT sent to the proxy's answer, auth rounds included: TUNNEL_TIMEOUT. */
  readonly tunnel?: number;
  /** TLS handshake, to the proxy or the target: TLS_TIMEOUT. */
  readonly tls?: number;
  /** WebSocket upgrade request to 101: UPGRADE_TIMEOUT. */
  readonly upgrade?: number;
}

export const DEFAULT_TIMEOUTS: Required<Timeouts> = {
  tcp: 10_000,
  tunnel: 10_000,
  tls: 10_000,
  upgrade: 10_000,
};

export type CaOption = string | Buffer | readonly (string | Buffer)[];

/**
 * How to reach a target: the route (proxy, PAC, WPAD, selector, environment), proxy credentials and TLS, timeouts,
 * tracing.
 */
export interface DialOptions {
  /**
   * A proxy URL (http, https, socks4, socks4a, socks5, socks5h), a parsed one, a chain of them (dialled in order,
   * the last reaches the target), or `false` for direct. Default: from the environment.
   */
  readonly proxy?: ProxyInput | false;
  /**
   * A PAC file (a path, `file:`, `http:` or `https:` URL): its `FindProxyForURL` chooses the routes, tried in
   * order. Wins over `proxy` and the environment; `noProxy` still goes direct first.
   */
  readonly pac?: string;
  /**
   * WPAD by DNS (opt-in): look for `http://wpad.<domain>/wpad.dat` up the search domains and use the first PAC
   * file found; none found means direct. `true` reads /etc/resolv.conf; an object says where else to look.
   * Loses to `route`, `proxySelector` and `pac`; wins over `proxy` and the environment.
   */
  readonly wpad?: boolean | WpadOptions;
  /** Your own policy: the routes to try for a target, in order. Wins over `pac`, `proxy` and the environment. */
  readonly proxySelector?: ProxySelector;
  /** Where failed proxies are remembered (default: one list shared by the process, 5 minutes). */
  readonly badProxies?: BadProxyList;
  /** Proxies dialled before the route's own, for every route (curl's `--preproxy`). */
  readonly preproxy?: ProxyInput;
  /** Hosts not to proxy (NO_PROXY syntax); overrides the environment's. */
  readonly noProxy?: string;
  /** The environment to read proxy variables from (read once). Default: `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** A route already chosen (the doctor and reconnects reuse one). Wins over proxy/noProxy/env. */
  readonly route?: RouteDecision;
  /** Proxy credentials, `user:pass` or {@link Credentials}; win over the proxy URL's. */
  readonly proxyAuth?: string | Credentials;
  /** Schemes allowed in answer to a 407 (default: all wsvia knows, strongest chosen). */
  readonly proxyAuthSchemes?: readonly AuthScheme[];
  /** Extra headers on the CONNECT request (never sent to the target). */
  readonly proxyHeaders?: HeaderList | Readonly<Record<string, string>>;
  /** Trust these CAs for the target's certificate (in addition to none: like Node, they replace the defaults). */
  readonly ca?: CaOption;
  /** Trust these CAs for an https:// proxy's certificate. */
  readonly proxyCa?: CaOption;
  /** A client certificate (PEM, chain allowed) and its key, for a server that asks for one. */
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
  /** A client certificate and its key for an https:// proxy. */
  readonly proxyCert?: string | Buffer;
  readonly proxyKey?: string | Buffer;
  /** Verify the target's certificate (default true). */
  readonly rejectUnauthorized?: boolean;
  /** Verify an https:// proxy's certificate (default true). */
  readonly proxyRejectUnauthorized?: boolean;
  /** TLS server name for the target; default the target host (never the proxy's). */
  readonly servername?: string;
  /** ALPN protocols to offer the target over TLS. */
  readonly alpn?: readonly string[];
  readonly timeouts?: Timeouts;
  readonly signal?: AbortSignal;
  readonly trace?: TraceCallback;
  /** Head size limits for the proxy's answer. */
  readonly headLimits?: HeadLimits;
}

export function normalizeHeaders(h: DialOptions['proxyHeaders']): [string, string][] {
  if (h === undefined) return [];
  if (Array.isArray(h)) return (h as HeaderList).map(([k, v]) => [k, v]);
  return Object.entries(h as Record<string, string>);
}
