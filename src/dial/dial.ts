/**
 * `dial(target, options)`: a byte stream to `target` along the chosen route: direct TCP, or through proxies, each
 * reached through the one before (http:// or https:// by CONNECT, socks4/4a/5/5h:// by SOCKS); then TLS to the
 * target when it is a secure one. Each step has its own timeout
 * and error code; every event goes to the trace.
 */
import type { Duplex } from 'node:stream';
import { Credentials } from '../auth/credentials.js';
import { invalidArgument, WsviaError } from '../errors.js';
import { formatAuthority, unbracket, type Authority } from '../protocol/authority.js';
import type { ResponseHead } from '../protocol/head.js';
import {
  chooseRoute,
  describeHops,
  prependHops,
  proxyList,
  routeConfigFromEnv,
  routeHops,
  type ProxyInput,
  type RouteDecision,
} from '../route/choose.js';
import { matchNoProxy, parseNoProxy } from '../route/no-proxy.js';
import type { SelectorTarget } from '../route/selector.js';
import { sharedBadProxies } from './bad-proxies.js';
import { pacSelector } from './pac-selector.js';
import { wpadSelector, type WpadOptions } from './wpad.js';
import { withCredentials, type ProxyUrl } from '../route/proxy-url.js';
import { Tracer } from '../observe/trace.js';
import { openHttpTunnel } from './http-tunnel.js';
import { openSocksTunnel } from './socks.js';
import type { CertSummary } from './interception.js';
import { DEFAULT_TIMEOUTS, normalizeHeaders, type DialOptions } from './options.js';
import { RecordingDuplex } from './sniff.js';
import { openTcp } from './tcp.js';
import { startTls } from './tls.js';

/** Where to dial: host, port and whether TLS to the target follows. */
export interface DialTarget extends Authority {
  /** TLS to the target (wss:, https:). */
  readonly tls: boolean;
}

/** An open byte stream to the target, with the route it took, the proxy's CONNECT answer and the certificate seen. */
export interface DialResult {
  readonly socket: Duplex;
  readonly route: RouteDecision;
  readonly proxyResponse: ResponseHead | undefined;
  readonly certificate: CertSummary | undefined;
  readonly tracer: Tracer;
}

const DEFAULT_PORTS: Record<string, number> = { 'ws:': 80, 'http:': 80, 'wss:': 443, 'https:': 443 };

/** `ws://h:p/x` or `{host, port, tls}` to a DialTarget. */
export function toDialTarget(target: string | URL | DialTarget): DialTarget {
  if (typeof target !== 'string' && !(target instanceof URL)) return target;
  let url: URL;
  try {
    url = new URL(String(target));
  } catch {
    throw invalidArgument(
      `invalid URL ${JSON.stringify(String(target))}`,
      'expected ws://host[:port]/path or wss://...',
    );
  }
  const port = url.port === '' ? DEFAULT_PORTS[url.protocol] : Number(url.port);
  if (port === undefined)
    throw invalidArgument(`unsupported URL scheme "${url.protocol}"`, 'use ws:, wss:, http: or https:');
  return { host: unbracket(url.hostname), port, tls: url.protocol === 'wss:' || url.protocol === 'https:' };
}

/** The route a dial would take, without connecting (for `wsvia route` and the doctor). */
export function resolveRoute(target: DialTarget, options: DialOptions = {}): RouteDecision {
  if (options.route) return options.route;
  const env = routeConfigFromEnv(options.env ?? process.env);
  return chooseRoute(
    { secure: target.tls, host: target.host, port: target.port },
    {
      ...(options.proxy === undefined ? {} : { proxy: options.proxy }),
      ...(options.noProxy === undefined ? {} : { noProxy: options.noProxy }),
      ...(options.preproxy === undefined ? {} : { preproxy: options.preproxy }),
      env,
    },
  );
}

function proxyWithAuth(proxy: ProxyUrl, auth: DialOptions['proxyAuth']): ProxyUrl {
  if (auth === undefined) return proxy;
  return withCredentials(proxy, typeof auth === 'string' ? Credentials.parse(auth) : auth);
}

/** A stream whose far end is reached, with the bytes that already arrived on it. */
interface Reached {
  readonly socket: Duplex;
  readonly leftover: Uint8Array;
  /** True when the stream runs inside a tunnel (TLS over it then goes through a RecordingDuplex). */
  readonly tunnelled: boolean;
}

interface RouteDial {
  readonly target: DialTarget;
  readonly hops: readonly ProxyUrl[];
  readonly options: DialOptions;
  readonly timeouts: Required<DialOptions['timeouts'] & object>;
  readonly tracer: Tracer;
}

function hopAuthority(p: ProxyUrl): Authority {
  return { host: p.host, port: p.port };
}

/**
 * Hands the stream out ready to read: leftover bytes put back at its front, and a stream that a handshake left
 * explicitly paused (the SOCKS step) returned to its initial flowing state, in which a 'data' listener or pipe()
 * starts it. Node resets that state when the last 'readable' listener is removed and no 'data' listener exists.
 */
function settle(r: Reached): Duplex {
  if (r.leftover.length > 0) r.socket.unshift(Buffer.from(r.leftover));
  if (r.socket.readableFlowing === false) {
    const noop = (): void => {};
    r.socket.on('readable', noop);
    r.socket.removeListener('readable', noop);
  }
  return r.socket;
}

/** A stream connected to hop `i` (TCP for the first, a tunnel through hop i-1 for the others), TLS done for https://. */
async function reachHop(d: RouteDial, i: number): Promise<Duplex> {
  const proxy = d.hops[i] as ProxyUrl;
  const peer = `proxy ${proxy.display}`;
  let r: Reached;
  if (i === 0) {
    const tcp = await openTcp({
      host: proxy.host,
      port: proxy.port,
      to: 'proxy',
      peer,
      timeout: d.timeouts.tcp,
      signal: d.options.signal,
      tracer: d.tracer,
    });
    r = { socket: tcp, leftover: new Uint8Array(0), tunnelled: false };
  } else {
    d.tracer.emit({
      type: 'note',
      text: `hop ${i + 1}/${d.hops.length}: ${proxy.display}, reached through ${(d.hops[i - 1] as ProxyUrl).display}`,
      ms: d.tracer.elapsed(),
    });
    r = await throughHop(d, i - 1, hopAuthority(proxy));
  }
  if (proxy.scheme !== 'https') return settle(r);
  const stream = r.tunnelled ? new RecordingDuplex(r.socket, r.leftover) : settle(r);
  try {
    const t = await startTls(stream, {
      host: proxy.host,
      to: 'proxy',
      peer,
      ca: d.options.proxyCa,
      cert: d.options.proxyCert,
      key: d.options.proxyKey,
      rejectUnauthorized: d.options.proxyRejectUnauthorized ?? true,
      alpn: ['http/1.1'],
      timeout: d.timeouts.tls,
      signal: d.options.signal,
      tracer: d.tracer,
    });
    return t.socket;
  } catch (e) {
    stream.destroy();
    r.socket.destroy();
    throw e;
  }
}

/** Hop `i` asked to connect to `next` (the following hop, or the target): HTTP CONNECT or SOCKS. */
async function throughHop(
  d: RouteDial,
  i: number,
  next: Authority,
): Promise<Reached & { head?: ResponseHead }> {
  const proxy = d.hops[i] as ProxyUrl;
  const first = await reachHop(d, i);
  if (isSocks(proxy)) {
    const t = await openSocksTunnel(first, {
      proxy,
      target: next,
      timeout: d.timeouts.tunnel,
      signal: d.options.signal,
      tracer: d.tracer,
    });
    return { socket: t.socket, leftover: t.leftover, tunnelled: true };
  }
  const t = await openHttpTunnel(first, {
    proxy,
    target: next,
    connectToProxy: () => reachHop(d, i),
    headers: normalizeHeaders(d.options.proxyHeaders),
    credentials: proxy.credentials,
    schemes: d.options.proxyAuthSchemes,
    timeout: d.timeouts.tunnel,
    signal: d.options.signal,
    tracer: d.tracer,
    limits: d.options.headLimits,
  });
  // The tunnel put the bytes glued to its 2xx back into the socket: nothing is left over here.
  return { socket: t.socket, leftover: new Uint8Array(0), tunnelled: true, head: t.head };
}

function isSocks(p: ProxyUrl): boolean {
  return p.scheme.startsWith('socks');
}

/**
 * Dials one route already chosen (the doctor and selectors use it): every hop in order, then TLS to the target
 * when it is a secure one. `tracer` continues an attempt's transcript; by default a new one starts.
 */
export async function dialRoute(
  target: DialTarget,
  options: DialOptions & { readonly route: RouteDecision; readonly tracer?: Tracer },
): Promise<DialResult> {
  const { route } = options;
  const tracer = options.tracer ?? new Tracer(options.trace);
  const timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
  const signal = options.signal;
  const hops = routeHops(route).map((p, i, all) =>
    i === all.length - 1 ? proxyWithAuth(p, options.proxyAuth) : p,
  );
  const authority = formatAuthority(target);
  const d: RouteDial = { target, hops, options, timeouts, tracer };

  let reached: Reached & { head?: ResponseHead };
  if (hops.length === 0) {
    const tcp = await openTcp({
      host: target.host,
      port: target.port,
      to: 'server',
      peer: authority,
      timeout: timeouts.tcp,
      signal,
      tracer,
    });
    reached = { socket: tcp, leftover: new Uint8Array(0), tunnelled: false };
  } else {
    try {
      reached = await throughHop(d, hops.length - 1, target);
    } catch (e) {
      throw placeInChain(e, hops);
    }
  }
  const proxyResponse = reached.head;
  const last = hops[hops.length - 1];

  if (!target.tls) {
    return { socket: settle(reached), route, proxyResponse, certificate: undefined, tracer };
  }
  // Inside a tunnel, TLS runs over a recording pass-through: it carries any leftover bytes, and keeps what the
  // far side said if it answers in plain HTTP (an intercepting gateway).
  const stream = reached.tunnelled ? new RecordingDuplex(reached.socket, reached.leftover) : settle(reached);
  try {
    const r = await startTls(stream, {
      host: target.host,
      ...(options.servername === undefined ? {} : { servername: options.servername }),
      to: 'server',
      peer: authority,
      ...(last === undefined ? {} : { viaProxy: `proxy ${last.display}` }),
      ca: options.ca,
      cert: options.cert,
      key: options.key,
      rejectUnauthorized: options.rejectUnauthorized ?? true,
      alpn: options.alpn,
      timeout: timeouts.tls,
      signal,
      tracer,
    });
    return { socket: r.socket, route, proxyResponse, certificate: r.certificate, tracer };
  } catch (e) {
    stream.destroy();
    reached.socket.destroy();
    throw e;
  }
}

/**
 * In a chain, an error names the proxy by its URL; this adds its place (`proxy 2 of 2`) and the whole chain, so
 * two proxies on one host are told apart.
 */
function placeInChain(e: unknown, hops: readonly ProxyUrl[]): unknown {
  if (!(e instanceof WsviaError) || hops.length < 2 || e.proxy === undefined) return e;
  const named = proxyNamed(e);
  const i = hops.findIndex((h) => h.display === named);
  if (i < 0) return e;
  return new WsviaError(
    e.code,
    `${e.summary} [proxy ${i + 1} of ${hops.length} in the chain ${describeHops(hops)}]`,
    {
      hop: e.hop,
      proxy: e.proxy,
      ...(e.target === undefined ? {} : { target: e.target }),
      ...(e.answer === undefined ? {} : { answer: e.answer }),
      ...(e.hint === undefined ? {} : { hint: e.hint }),
      cause: e.cause ?? e,
      details: { ...e.details, chainIndex: i, chain: hops.map((h) => h.display) },
    },
  );
}

/**
 * The display URL of the proxy an error names. TCP and TLS errors put the peer's label (`proxy URL`) in the
 * field, the tunnel steps the URL alone.
 */
function proxyNamed(e: WsviaError): string | undefined {
  return e.proxy?.replace(/^proxy /, '');
}

/** The selector target for a dial target: ws/wss mapped to http/https, the path left out (as Chrome gives PAC). */
function selectorTarget(target: DialTarget): SelectorTarget {
  const scheme = target.tls ? 'https' : 'http';
  return {
    url: `${scheme}://${formatAuthority(target)}/`,
    host: target.host,
    port: target.port,
    secure: target.tls,
  };
}

/**
 * The routes to try, in order: a route given, a selector's or a PAC's list, or the one decision from the options
 * and the environment. A preproxy goes in front of every selected route.
 */
export async function resolveRoutes(target: DialTarget, options: DialOptions = {}): Promise<RouteDecision[]> {
  const wpad = options.wpad === true ? {} : options.wpad === false ? undefined : options.wpad;
  if (
    options.route ||
    (options.proxySelector === undefined && options.pac === undefined && wpad === undefined)
  ) {
    return [resolveRoute(target, options)];
  }
  const t = selectorTarget(target);
  if (options.noProxy !== undefined) {
    const match = matchNoProxy(parseNoProxy(options.noProxy), target.host, target.port);
    if (match) {
      const direct: RouteDecision = {
        proxy: null,
        reason: `direct: --noproxy entry '${match.text}' matches ${target.host}`,
        source: 'no-proxy',
        noProxyEntry: match.text,
      };
      return [options.preproxy === undefined ? direct : prependHops(direct, proxyList(options.preproxy))];
    }
  }
  const timeoutMs = options.timeouts?.tcp === undefined ? {} : { timeoutMs: options.timeouts.tcp };
  const selector =
    options.proxySelector ??
    (options.pac !== undefined
      ? pacSelector(options.pac, timeoutMs)
      : wpadSelector({ ...timeoutMs, ...(wpad as WpadOptions) }));
  const routes = [...(await selector(t))];
  if (routes.length === 0) {
    throw new WsviaError('CONFIG_INVALID', `the proxy selector gave no route for ${t.url}`, {
      hop: 'route',
      hint: 'a selector returns at least one route (a direct one is { proxy: null, ... })',
    });
  }
  return options.preproxy === undefined
    ? routes
    : routes.map((r) => prependHops(r, proxyList(options.preproxy as ProxyInput)));
}

/** Errors after which the next route is tried: the path did not open. A proxy's refusal or 407 is an answer. */
function isRouteFailure(e: unknown): e is WsviaError {
  if (!(e instanceof WsviaError)) return false;
  if (e.hop !== 'tcp' && e.hop !== 'dns' && e.hop !== 'proxy') return false;
  return !['PROXY_REFUSED', 'PROXY_AUTH_REQUIRED', 'INVALID_ARGUMENT', 'CONFIG_INVALID'].includes(e.code);
}

/** The proxy that failed to be reached, for the bad-proxy list (TCP errors name it `proxy URL`). */
function failedProxy(e: WsviaError, hops: readonly ProxyUrl[]): string | undefined {
  const named = proxyNamed(e);
  if (named === undefined) return undefined;
  const connectFailure = [
    'PROXY_CONNECT_FAILED',
    'TCP_TIMEOUT',
    'DNS_FAILED',
    'PROXY_TLS_FAILED',
    'TLS_TIMEOUT',
    'CONNECTION_RESET',
  ];
  if (!connectFailure.includes(e.code)) return undefined;
  return hops.some((h) => h.display === named) ? named : undefined;
}

function routeLabel(r: RouteDecision): string {
  const hops = routeHops(r);
  return hops.length === 0 ? 'DIRECT' : describeHops(hops);
}

/**
 * Like {@link dial}, but resolves with the route taken, the proxy's answer and the certificate as well as the socket.
 * Several routes (PAC, a selector) are tried in order, recently failed proxies last.
 */
export async function dialDetailed(
  targetInput: string | URL | DialTarget,
  options: DialOptions = {},
): Promise<DialResult> {
  const target = toDialTarget(targetInput);
  const tracer = new Tracer(options.trace);
  const routes = await resolveRoutes(target, options);
  if (routes.length === 1) {
    const route = routes[0] as RouteDecision;
    tracer.emit({ type: 'route', text: route.reason, proxy: route.proxy?.display ?? null });
    return dialRoute(target, { ...options, route, tracer });
  }
  // Several routes (PAC, a selector): routes through a proxy that failed lately go last, as browsers do.
  const bad = options.badProxies ?? sharedBadProxies;
  const badOf = (r: RouteDecision) =>
    routeHops(r)
      .map((h) => bad.get(h.display))
      .find((b) => b !== undefined);
  const ordered = [...routes.filter((r) => !badOf(r)), ...routes.filter((r) => badOf(r))];
  const attempts: { route: string; code: string; message: string }[] = [];
  let last: WsviaError | undefined;
  for (const [i, route] of ordered.entries()) {
    const b = badOf(route);
    tracer.emit({
      type: 'route',
      text: `${route.reason} (route ${i + 1} of ${ordered.length}${b ? `; ${b.proxy} failed ${Math.round((Date.now() - b.since) / 1000)} s ago: tried last` : ''})`,
      proxy: route.proxy?.display ?? null,
    });
    try {
      const result = await dialRoute(target, { ...options, route, tracer });
      for (const h of routeHops(route)) bad.clear(h.display);
      return result;
    } catch (e) {
      if (!isRouteFailure(e)) throw e;
      last = e;
      attempts.push({ route: routeLabel(route), code: e.code, message: e.summary });
      const p = failedProxy(e, routeHops(route));
      if (p !== undefined) bad.mark(p, e.code);
      tracer.emit({
        type: 'note',
        text: `route ${i + 1} of ${ordered.length} failed (${e.code}): ${e.summary}${i + 1 < ordered.length ? '; trying the next' : ''}`,
        ms: tracer.elapsed(),
      });
    }
  }
  const list = attempts.map((a, i) => `${i + 1}) ${a.route}: ${a.message} [${a.code}]`).join('; ');
  const failed = last as WsviaError;
  throw new WsviaError(failed.code, `every route to ${formatAuthority(target)} failed: ${list}`, {
    hop: failed.hop,
    ...(failed.proxy === undefined ? {} : { proxy: failed.proxy }),
    target: formatAuthority(target),
    hint: 'none of the proxies the PAC file (or selector) offers could be reached; check them, or the PAC file',
    cause: failed,
    details: { attempts },
  });
}

/**
 * Opens a byte stream to `target` (a `ws:`/`wss:`/`http:`/`https:` URL, or `{host, port, tls}`) along the route
 * the options and the environment choose. The stream is ready for the application protocol: tunnel open, TLS done.
 *
 * @example
 * const socket = await dial('wss://echo.example/', { proxy: 'http://proxy.corp:3128' });
 */
export async function dial(target: string | URL | DialTarget, options: DialOptions = {}): Promise<Duplex> {
  return (await dialDetailed(target, options)).socket;
}
