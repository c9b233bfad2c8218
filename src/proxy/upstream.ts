/**
 * From a requested `host:port` to a connected socket: resolve, check every resolved address against the
 * destination rules, and connect to an address that passed (never re-resolving, so DNS rebinding cannot slip a
 * denied address in between the check and the connect). Directly, or through the parent proxy with CONNECT to
 * that same address. Failures come back as the answer the proxy will give (RFC 9209 error types).
 */
import dns from 'node:dns';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { isWsviaError } from '../errors.js';
import { formatAuthority, type Authority } from '../protocol/authority.js';
import { checkDestination, portAllowed, type DestinationPolicy } from '../route/destination.js';
import type { ProxyUrl } from '../route/proxy-url.js';
import { Tracer } from '../observe/trace.js';
import { openHttpTunnel } from '../dial/http-tunnel.js';
import { openTcp } from '../dial/tcp.js';
import { startTls } from '../dial/tls.js';
import type { ProxyFailure } from './error-response.js';

export type UpstreamResult =
  | { readonly ok: true; readonly socket: net.Socket; readonly address: string }
  | { readonly ok: false; readonly failure: ProxyFailure };

export interface UpstreamOptions {
  readonly policy: DestinationPolicy;
  readonly connectTimeout: number;
  readonly parent: ProxyUrl | undefined;
  readonly parentCa: string | Buffer | undefined;
  /** For a CONNECT tunnel: the destination socket reads straight into the relay's reused buffer. */
  readonly onread?: net.OnReadOpts | undefined;
}

const DNS_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_NODATA', 'EAI_FAIL', 'ENODATA', 'ESERVFAIL']);

function fail(f: ProxyFailure): UpstreamResult {
  return { ok: false, failure: f };
}

async function resolve(host: string): Promise<string[] | NodeJS.ErrnoException> {
  if (net.isIP(host) !== 0) return [host];
  try {
    // verbatim: keep the resolver's order (RFC 6724 as the system sorts), IPv6 included.
    const all = await dns.promises.lookup(host, { all: true, verbatim: true });
    return all.map((a) => a.address);
  } catch (e) {
    return e as NodeJS.ErrnoException;
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => T): Promise<T> {
  if (ms <= 0) return p;
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<T>((r) => {
    timer = setTimeout(() => r(onTimeout()), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

function timeoutFailure(target: string, ms: number): UpstreamResult {
  return fail({
    status: 504,
    error: 'connection_timeout',
    details: `no connection to ${target} within ${ms} ms`,
    reason: 'timeout',
  });
}

/** Resolves, checks and connects. The socket is paused, allowHalfOpen, and has no listeners left. */
export async function openUpstream(target: Authority, o: UpstreamOptions): Promise<UpstreamResult> {
  const where = formatAuthority(target);
  const started = Date.now();
  // Rules that need no address are applied before DNS: a denied name is never even resolved.
  const early = nameRuleDenial(o.policy, target);
  if (early)
    return fail({
      status: 403,
      error: 'destination_ip_prohibited',
      details: `${where} is denied: ${early}`,
      rule: early,
      reason: 'denied',
    });
  // An address needs no lookup, and so no timer: the common case for CONNECT from browsers is a name, but
  // benchmarks and internal clients send addresses.
  const addresses =
    net.isIP(target.host) !== 0
      ? [target.host]
      : await withTimeout<string[] | NodeJS.ErrnoException | 'timeout'>(
          resolve(target.host),
          o.connectTimeout,
          () => 'timeout',
        );
  if (addresses === 'timeout') return timeoutFailure(where, o.connectTimeout);
  if (!Array.isArray(addresses)) {
    const code = addresses.code ?? 'error';
    return fail({
      status: 502,
      error: DNS_CODES.has(code) ? 'dns_error' : 'proxy_internal_error',
      details: `cannot resolve ${target.host} (${code})`,
      reason: 'dns',
    });
  }
  const allowed: string[] = [];
  let denial: ProxyFailure | undefined;
  for (const address of addresses) {
    const v = checkDestination(o.policy, target.host, target.port, address);
    if (v.allowed) allowed.push(address);
    else
      denial ??= {
        status: 403,
        error: 'destination_ip_prohibited',
        details: `${where} is denied: ${v.rule}`,
        rule: v.rule,
        reason: 'denied',
      };
  }
  // One denied address is enough to refuse: a name that resolves to a public and a private address is the
  // textbook rebinding setup, and which one a client ends up on must not depend on the resolver's order.
  if (denial || allowed.length === 0)
    return fail(
      denial ?? { status: 502, error: 'dns_error', details: `${target.host} has no address`, reason: 'dns' },
    );
  const left = (): number => Math.max(1, o.connectTimeout - (Date.now() - started));
  if (o.parent) return viaParent({ host: allowed[0] as string, port: target.port }, where, o, left());
  let last: UpstreamResult | undefined;
  for (const address of allowed) {
    last = await connectDirect(address, target.port, where, o.connectTimeout > 0 ? left() : 0, o.onread);
    if (last.ok || last.failure.status === 504) return last;
  }
  return last as UpstreamResult;
}

function nameRuleDenial(policy: DestinationPolicy, target: Authority): string | undefined {
  const h = target.host.toLowerCase().replace(/\.$/, '');
  for (const rule of policy.deny) {
    if ((rule.kind === 'name' && h === rule.name) || (rule.kind === 'suffix' && h.endsWith(rule.suffix)))
      return `--deny ${rule.text}`;
  }
  if (portAllowed(policy.ports, target.port)) return undefined;
  const v = checkDestination(policy, h, target.port, '0.0.0.0');
  return v.allowed ? undefined : v.rule;
}

function connectDirect(
  address: string,
  port: number,
  where: string,
  timeout: number,
  onread: net.OnReadOpts | undefined,
): Promise<UpstreamResult> {
  return new Promise((resolveResult) => {
    const socket = net.connect({
      host: address,
      port,
      allowHalfOpen: true,
      noDelay: true,
      ...(onread && { onread }),
    });
    socket.pause();
    let timer: NodeJS.Timeout | undefined;
    const settle = (r: UpstreamResult): void => {
      clearTimeout(timer);
      socket.removeListener('connect', onConnect);
      socket.removeListener('error', onError);
      resolveResult(r);
    };
    const onConnect = (): void => settle({ ok: true, socket, address });
    const onError = (e: NodeJS.ErrnoException): void => {
      socket.destroy();
      settle(connectFailure(e, where, address));
    };
    socket.once('connect', onConnect);
    socket.once('error', onError);
    if (timeout > 0)
      timer = setTimeout(() => {
        socket.destroy();
        settle(timeoutFailure(where, timeout));
      }, timeout);
  });
}

function connectFailure(e: NodeJS.ErrnoException, where: string, address: string): UpstreamResult {
  const at = where.startsWith(address) || where.startsWith(`[${address}]`) ? where : `${where} (${address})`;
  switch (e.code) {
    case 'ECONNREFUSED':
      return fail({
        status: 502,
        error: 'connection_refused',
        details: `${at} refused the connection`,
        reason: 'refused',
      });
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EADDRNOTAVAIL':
      return fail({
        status: 502,
        error: 'destination_ip_unroutable',
        details: `no route to ${at} (${e.code})`,
        reason: 'refused',
      });
    default:
      return fail({
        status: 502,
        error: 'destination_unavailable',
        details: `connection to ${at} failed (${e.code ?? e.message})`,
        reason: 'refused',
      });
  }
}

async function viaParent(
  target: Authority,
  where: string,
  o: UpstreamOptions,
  timeout: number,
): Promise<UpstreamResult> {
  const parent = o.parent as ProxyUrl;
  const tracer = new Tracer();
  const peer = `proxy ${parent.display}`;
  const connectToProxy = async (): Promise<Duplex> => {
    const tcp = await openTcp({
      host: parent.host,
      port: parent.port,
      to: 'proxy',
      peer,
      timeout,
      signal: undefined,
      tracer,
    });
    if (parent.scheme === 'http') return tcp;
    const r = await startTls(tcp, {
      host: parent.host,
      to: 'proxy',
      peer,
      ca: o.parentCa,
      rejectUnauthorized: true,
      alpn: ['http/1.1'],
      timeout,
      signal: undefined,
      tracer,
    });
    return r.socket;
  };
  try {
    const first = await connectToProxy();
    const t = await openHttpTunnel(first, {
      proxy: parent,
      target,
      connectToProxy,
      headers: [],
      credentials: parent.credentials,
      schemes: undefined,
      timeout,
      signal: undefined,
      tracer,
      limits: undefined,
    });
    const socket = t.socket as net.Socket;
    // Half-close is passed through the parent too.
    socket.allowHalfOpen = true;
    // Bytes glued to the parent's 2xx are already back at the socket's front; the relay starts the flow.
    socket.pause();
    return { ok: true, socket, address: target.host };
  } catch (e) {
    const code = isWsviaError(e) ? e.code : 'PROXY_CONNECT_FAILED';
    const details = `parent ${peer} could not open ${where}: ${isWsviaError(e) ? e.summary : String(e)}`;
    if (code === 'TCP_TIMEOUT' || code === 'TUNNEL_TIMEOUT' || code === 'TLS_TIMEOUT')
      return fail({ status: 504, error: 'connection_timeout', details, reason: 'timeout' });
    return fail({ status: 502, error: 'proxy_internal_error', details, reason: 'upstream' });
  }
}
