/**
 * `dial(target, options)`: a byte stream to `target` along the chosen route: direct TCP, or through an http://
 * or https:// proxy by CONNECT; then TLS to the target when it is a secure one. Each step has its own timeout
 * and error code; every event goes to the trace.
 */
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { Credentials } from '../auth/credentials.js';
import { invalidArgument, WsviaError } from '../errors.js';
import { formatAuthority, unbracket, type Authority } from '../protocol/authority.js';
import type { ResponseHead } from '../protocol/head.js';
import { chooseRoute, routeConfigFromEnv, type RouteDecision } from '../route/choose.js';
import { withCredentials, type ProxyUrl } from '../route/proxy-url.js';
import { Tracer } from '../observe/trace.js';
import { openHttpTunnel } from './http-tunnel.js';
import type { CertSummary } from './interception.js';
import { DEFAULT_TIMEOUTS, normalizeHeaders, type DialOptions } from './options.js';
import { RecordingDuplex } from './sniff.js';
import { openTcp } from './tcp.js';
import { startTls } from './tls.js';

export interface DialTarget extends Authority {
  /** TLS to the target (wss:, https:). */
  readonly tls: boolean;
}

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
      env,
    },
  );
}

function proxyWithAuth(proxy: ProxyUrl, auth: DialOptions['proxyAuth']): ProxyUrl {
  if (auth === undefined) return proxy;
  return withCredentials(proxy, typeof auth === 'string' ? Credentials.parse(auth) : auth);
}

export async function dialDetailed(
  targetInput: string | URL | DialTarget,
  options: DialOptions = {},
): Promise<DialResult> {
  const target = toDialTarget(targetInput);
  const tracer = new Tracer(options.trace);
  const timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
  const signal = options.signal;
  const route = resolveRoute(target, options);
  tracer.emit({ type: 'route', text: route.reason, proxy: route.proxy?.display ?? null });
  const authority = formatAuthority(target);

  let socket: Duplex;
  let proxyResponse: ResponseHead | undefined;
  if (route.proxy === null) {
    socket = await openTcp({
      host: target.host,
      port: target.port,
      to: 'server',
      peer: authority,
      timeout: timeouts.tcp,
      signal,
      tracer,
    });
  } else {
    const proxy = proxyWithAuth(route.proxy, options.proxyAuth);
    if (proxy.scheme !== 'http' && proxy.scheme !== 'https') {
      throw new WsviaError(
        'INVALID_ARGUMENT',
        `${proxy.scheme}:// proxies are not supported yet (${proxy.display})`,
        {
          hop: 'config',
          proxy: proxy.display,
          hint: 'use an http:// or https:// proxy',
        },
      );
    }
    const connectToProxy = async (): Promise<Duplex> => {
      const peer = `proxy ${proxy.display}`;
      const tcp = await openTcp({
        host: proxy.host,
        port: proxy.port,
        to: 'proxy',
        peer,
        timeout: timeouts.tcp,
        signal,
        tracer,
      });
      if (proxy.scheme === 'http') return tcp;
      try {
        const r = await startTls(tcp, {
          host: proxy.host,
          to: 'proxy',
          peer,
          ca: options.proxyCa,
          rejectUnauthorized: options.proxyRejectUnauthorized ?? true,
          alpn: ['http/1.1'],
          timeout: timeouts.tls,
          signal,
          tracer,
        });
        return r.socket;
      } catch (e) {
        tcp.destroy();
        throw e;
      }
    };
    const first = await connectToProxy();
    const tunnel = await openHttpTunnel(first, {
      proxy,
      target,
      connectToProxy,
      headers: normalizeHeaders(options.proxyHeaders),
      credentials: proxy.credentials,
      schemes: options.proxyAuthSchemes,
      timeout: timeouts.tunnel,
      signal,
      tracer,
      limits: options.headLimits,
    });
    socket = tunnel.socket;
    proxyResponse = tunnel.head;
  }

  if (!target.tls) return { socket, route, proxyResponse, certificate: undefined, tracer };
  // Inside a tunnel, TLS runs over a recording pass-through: it reads bytes put back after the CONNECT answer
  // (the native TLS wrap would not), and keeps what the far side said if it answers in plain HTTP.
  const stream = route.proxy === null ? socket : new RecordingDuplex(socket);
  try {
    const r = await startTls(stream, {
      host: target.host,
      ...(options.servername === undefined ? {} : { servername: options.servername }),
      to: 'server',
      peer: authority,
      ...(route.proxy === null ? {} : { viaProxy: `proxy ${route.proxy.display}` }),
      ca: options.ca,
      rejectUnauthorized: options.rejectUnauthorized ?? true,
      alpn: options.alpn,
      timeout: timeouts.tls,
      signal,
      tracer,
    });
    return { socket: r.socket as TLSSocket, route, proxyResponse, certificate: r.certificate, tracer };
  } catch (e) {
    stream.destroy();
    socket.destroy();
    throw e;
  }
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
