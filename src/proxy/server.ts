/**
 * The forward proxy server: accept, read the request head (with limits and a deadline), authenticate, apply the
 * destination rules and limits, connect, then either answer `200 Connection established` and relay (CONNECT,
 * RFC 9110 §9.3.6) or forward an absolute-form request (RFC 9112 §3.2.2). Every refusal is an HTTP answer with
 * `Proxy-Status` (RFC 9209), logged and counted.
 */
import net from 'node:net';
import tls from 'node:tls';
import { ServerAuth } from '../auth/server-auth.js';
import { isWsviaError, RemoteProtocolError } from '../errors.js';
import { formatHost, parseAuthority, type Authority } from '../protocol/authority.js';
import { requestFraming } from '../protocol/body.js';
import { getHeader } from '../protocol/headers.js';
import { RequestHeadReader, type RequestHead } from '../protocol/head.js';
import { ProxyProtocolReader } from '../protocol/proxy-protocol.js';
import { DEFAULT_POLICY, type DestinationPolicy } from '../route/destination.js';
import { AccessLog } from '../observe/access-log.js';
import { CountsByKey } from '../observe/counts-by-key.js';
import { redactUrl } from '../observe/redact.js';
import { AuthCache } from './auth-cache.js';
import { CONNECTION_ESTABLISHED, errorResponse, type ProxyFailure } from './error-response.js';
import { parseForwardTarget, startForward } from './forward.js';
import { ProxyMetrics } from './metrics.js';
import { resolvedLimits, type ProxyLimits, type ProxyServerOptions } from './options.js';
import { reusedReads, TunnelSet, type Tunnel, type TunnelInfo } from './relay.js';
import { openUpstream } from './upstream.js';

/** Keeps an error on a socket from being thrown; the close that follows does the cleanup. */
function ignore(): void {}

/** What the server knows about one client connection before it becomes a tunnel. */
interface Pending {
  socket: net.Socket;
  client: string;
  clientKey: string;
  timer: NodeJS.Timeout | undefined;
  user: string | undefined;
  readonly onClose: () => void;
}

/**
 * A copy of `s` that does not share memory with the string it was cut from: V8 keeps the whole request head alive
 * behind a substring of it, for as long as the tunnel lives.
 */
function flat(s: string): string {
  return Buffer.from(s, 'latin1').toString('latin1');
}

/** Where a server listens. */
export interface ListeningAddress {
  readonly host: string;
  readonly port: number;
  /** `http://127.0.0.1:8080` (https:// with a TLS listener). */
  readonly url: string;
}

/**
 * The forward proxy, in-process (what `wsvia proxy` runs).
 *
 * @example
 * const proxy = new ProxyServer({ port: 3128, users: new StaticUsers(['alice:s3cret']) });
 * const { url } = await proxy.listen(); // http://127.0.0.1:3128
 * // ...
 * await proxy.close(30_000); // drain: let tunnels finish for up to 30 s
 */
export class ProxyServer {
  readonly metrics = new ProxyMetrics();
  readonly #server: net.Server;
  readonly #o: ProxyServerOptions;
  readonly #limits: ProxyLimits;
  readonly #policy: DestinationPolicy;
  readonly #auth: ServerAuth | undefined;
  readonly #log: AccessLog;
  readonly #name: string;
  readonly #tunnels: TunnelSet;
  readonly #secureContext: tls.SecureContext | undefined;
  readonly #pending = new Set<Pending>();
  readonly #perClient = new CountsByKey();
  readonly #authCache = new AuthCache();
  #active = 0;
  #draining = false;

  constructor(options: ProxyServerOptions = {}) {
    this.#o = options;
    this.#limits = resolvedLimits(options.limits);
    this.#policy = options.policy ?? DEFAULT_POLICY;
    this.#name = options.name ?? 'wsvia';
    this.#log = options.accessLog ?? new AccessLog(undefined);
    this.#auth = options.users
      ? new ServerAuth({
          realm: options.realm ?? 'wsvia proxy',
          users: options.users,
          schemes: options.authSchemes ?? (options.users.password ? ['digest', 'basic'] : ['basic']),
        })
      : undefined;
    this.#secureContext = options.tls
      ? tls.createSecureContext({ cert: options.tls.cert, key: options.tls.key })
      : undefined;
    this.#tunnels = new TunnelSet({
      idleTimeout: this.#limits.idleTimeout,
      maxLifetime: this.#limits.maxLifetime,
      onFinish: (t) => this.#finished(t),
    });
    // allowHalfOpen: a client's FIN is passed on as a FIN, not answered by closing our side (half-close).
    this.#server = net.createServer({ allowHalfOpen: true, noDelay: true }, (s) => this.#accept(s));
  }

  /** True once {@link close} began: /healthz turns 503. */
  get draining(): boolean {
    return this.#draining;
  }

  /** Tunnels and forwarded exchanges open or being set up. */
  get active(): number {
    return this.#active;
  }

  /** Starts listening (127.0.0.1 by default); resolves with the address once it does. */
  listen(): Promise<ListeningAddress> {
    const host = this.#o.host ?? '127.0.0.1';
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#o.port ?? 8080, host, () => {
        this.#server.removeListener('error', reject);
        const { port } = this.#server.address() as net.AddressInfo;
        const scheme = this.#secureContext ? 'https' : 'http';
        resolve({ host, port, url: `${scheme}://${formatHost(host)}:${port}` });
      });
    });
  }

  /**
   * Stops accepting, lets open tunnels finish for up to `drainTimeout` ms, then closes them. Connections that
   * have not sent a request yet are closed at once.
   */
  async close(drainTimeout = 0): Promise<void> {
    this.#draining = true;
    const closed = new Promise<void>((r) => this.#server.close(() => r()));
    for (const p of [...this.#pending]) if (p.timer !== undefined) p.socket.destroy();
    const deadline = Date.now() + drainTimeout;
    while (this.#active > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    this.#tunnels.abortAll('drain');
    for (const p of [...this.#pending]) p.socket.destroy();
    await closed;
    await this.#log.close();
  }

  #accept(raw: net.Socket): void {
    raw.on('error', ignore);
    const p: Pending = {
      socket: raw,
      client: `${formatHost(raw.remoteAddress ?? '?')}:${raw.remotePort ?? 0}`,
      clientKey: raw.remoteAddress ?? '?',
      timer: undefined,
      user: undefined,
      onClose: () => {
        if (p.timer !== undefined) clearTimeout(p.timer);
        this.#pending.delete(p);
      },
    };
    this.#pending.add(p);
    raw.once('close', p.onClose);
    if (this.#draining) return void raw.destroy();
    p.timer = setTimeout(() => this.#headTimeout(p), this.#limits.headerTimeout || 2 ** 31 - 1);
    if (this.#o.proxyProtocol) this.#readProxyHeader(p, raw);
    else this.#startHttp(p, raw, undefined);
  }

  #headTimeout(p: Pending): void {
    p.timer = undefined;
    this.#answer(p, 'timeout', '-', {
      status: 408,
      error: 'http_request_error',
      details: `the request head did not arrive within ${this.#limits.headerTimeout} ms`,
      reason: 'timeout',
    });
  }

  #readProxyHeader(p: Pending, raw: net.Socket): void {
    const reader = new ProxyProtocolReader();
    const onData = (chunk: Buffer): void => {
      let r;
      try {
        r = reader.receive(chunk);
      } catch {
        // Not from the balancer: say nothing in HTTP (the peer may not speak it) and close.
        raw.destroy();
        return;
      }
      if (!r) return;
      raw.removeListener('data', onData);
      raw.pause();
      const src = r.header.command === 'proxy' ? r.header.source : undefined;
      if (src) {
        p.client = `${formatHost(src.address)}:${src.port}`;
        p.clientKey = src.address;
      }
      this.#startHttp(p, raw, r.leftover.length > 0 ? r.leftover : undefined);
    };
    raw.on('data', onData);
  }

  #startHttp(p: Pending, raw: net.Socket, early: Buffer | undefined): void {
    let socket: net.Socket = raw;
    if (this.#secureContext) {
      if (early) raw.unshift(early);
      early = undefined;
      socket = new tls.TLSSocket(raw, { isServer: true, secureContext: this.#secureContext });
      socket.on('error', ignore);
      p.socket = socket;
      raw.once('close', () => socket.destroy());
    }
    const reader = new RequestHeadReader({ peer: `client ${p.client}`, hop: 'server' }, this.#limits.head);
    const onData = (chunk: Buffer): void => {
      let r;
      try {
        r = reader.receive(chunk);
      } catch (e) {
        socket.removeListener('data', onData);
        return this.#answer(p, '-', '-', protocolFailure(e));
      }
      if (!r) return;
      socket.removeListener('data', onData);
      socket.pause();
      if (p.timer !== undefined) clearTimeout(p.timer);
      p.timer = undefined;
      void this.#handle(p, r.head, Buffer.from(r.leftover)).catch((e: unknown) =>
        this.#answer(p, r.head.method, r.head.target, {
          status: 500,
          error: 'proxy_internal_error',
          details: `internal error: ${e instanceof Error ? e.message : String(e)}`,
          reason: 'protocol',
        }),
      );
    };
    socket.on('data', onData);
    if (early) onData(early);
    // After a PROXY header the socket was paused; a listener alone does not restart an explicitly paused stream.
    if (socket.listenerCount('data') > 0 && !socket.destroyed) socket.resume();
  }

  async #handle(p: Pending, head: RequestHead, leftover: Buffer): Promise<void> {
    const requestedAt = Date.now();
    const isConnect = head.method === 'CONNECT';
    let authority: Authority;
    let forward: ReturnType<typeof parseForwardTarget> | undefined;
    try {
      if (isConnect) authority = parseAuthority(head.target, `client ${p.client}`);
      else {
        forward = parseForwardTarget(head);
        authority = forward.authority;
        requestFraming(head, `client ${p.client}`);
      }
    } catch (e) {
      this.metrics.requestsTotal.inc({ kind: 'invalid' });
      return this.#answer(p, head.method, head.target, protocolFailure(e));
    }
    const kind = isConnect ? 'connect' : forward?.upgrade ? 'upgrade' : 'forward';
    this.metrics.requestsTotal.inc({ kind });
    if (this.#draining)
      return this.#answer(p, head.method, head.target, {
        status: 503,
        error: 'connection_limit_reached',
        details: 'the proxy is shutting down',
        reason: 'draining',
        headers: [['Retry-After', '1']],
      });
    if (this.#auth) {
      // RFC 9110 §11.7.2: Proxy-Authorization is consumed by the proxy it is for; never forwarded or logged.
      const authorization = getHeader(head.headers, 'proxy-authorization');
      const basic = authorization !== undefined && /^basic /i.test(authorization);
      const key = basic ? AuthCache.key(authorization) : undefined;
      const cached = key === undefined ? undefined : this.#authCache.get(key);
      const check =
        cached !== undefined
          ? ({ ok: true, user: cached, scheme: 'basic' } as const)
          : await this.#auth.check(authorization, head.method, head.target);
      if (check.ok && key !== undefined && cached === undefined) this.#authCache.set(key, check.user);
      if (!check.ok) {
        this.metrics.authFailures.inc({ reason: check.reason });
        if (check.user !== undefined) p.user = check.user;
        return this.#answer(p, head.method, head.target, {
          status: 407,
          error: 'http_request_denied',
          details:
            check.reason === 'missing'
              ? 'this proxy requires authentication'
              : `proxy authentication ${check.reason === 'stale' ? 'nonce expired' : 'failed'}`,
          reason: 'auth',
          headers: this.#auth
            .challenges(check.reason === 'stale')
            .map((c): [string, string] => ['Proxy-Authenticate', c]),
        });
      }
      p.user = check.user;
    }
    const perClient = this.#perClient.get(p.clientKey);
    if (this.#active >= this.#limits.maxTunnels)
      return this.#answer(p, head.method, head.target, {
        status: 503,
        error: 'connection_limit_reached',
        details: `the proxy has ${this.#active} tunnels open, its limit (--max-tunnels ${this.#limits.maxTunnels})`,
        rule: `--max-tunnels ${this.#limits.maxTunnels}`,
        reason: 'limit',
        headers: [['Retry-After', '1']],
      });
    if (perClient >= this.#limits.maxTunnelsPerClient)
      return this.#answer(p, head.method, head.target, {
        status: 429,
        error: 'connection_limit_reached',
        details: `${p.clientKey} has ${perClient} tunnels open, its limit (--max-tunnels-per-client ${this.#limits.maxTunnelsPerClient})`,
        rule: `--max-tunnels-per-client ${this.#limits.maxTunnelsPerClient}`,
        reason: 'limit',
        headers: [['Retry-After', '1']],
      });
    this.#acquire(p.clientKey);
    let released = false;
    const release = (): void => {
      if (!released) this.#release(p.clientKey);
      released = true;
    };
    const r = await openUpstream(authority, {
      policy: this.#policy,
      connectTimeout: this.#limits.connectTimeout,
      parent: this.#o.upstream,
      parentCa: this.#o.upstreamCa,
      // Only a tunnel's destination socket goes straight to the relay; a forwarded request's answer head is
      // read by the server first.
      onread: isConnect ? reusedReads() : undefined,
    });
    if (!r.ok) {
      release();
      return this.#answer(p, head.method, head.target, r.failure);
    }
    const client = p.socket;
    if (client.destroyed) {
      release();
      r.socket.destroy();
      return;
    }
    this.metrics.setupSeconds.observe((Date.now() - requestedAt) / 1000);
    const info = (status: number): TunnelInfo => ({
      client: p.client,
      user: p.user,
      method: flat(head.method),
      target: flat(head.target),
      status,
      requestedAt,
      clientKey: p.clientKey,
    });
    if (isConnect) {
      this.#adopt(p);
      client.write(CONNECTION_ESTABLISHED);
      // Bytes the client sent before our 200 (an eager TLS ClientHello) belong to the tunnel.
      if (leftover.length > 0) r.socket.write(leftover);
      this.metrics.tunnelsTotal.inc();
      this.metrics.responses.inc({ status: '200' });
      this.#tunnels.open(client, r.socket, info(200));
      return;
    }
    startForward({
      client,
      upstream: r.socket,
      head,
      leftover,
      target: forward as NonNullable<typeof forward>,
      name: this.#name,
      responseTimeout: this.#limits.idleTimeout,
      onResponse: (status, upgraded) => {
        this.metrics.responses.inc({ status: String(status) });
        if (upgraded) this.metrics.tunnelsTotal.inc();
        this.#adopt(p);
        return this.#tunnels.open(client, r.socket, info(status), upgraded);
      },
      onFailure: (f) => {
        release();
        this.#answer(p, head.method, head.target, f);
      },
    });
  }

  /** The connection becomes a tunnel: the relay's handlers take over from the setup's. */
  #adopt(p: Pending): void {
    this.#pending.delete(p);
    if (p.socket instanceof tls.TLSSocket) return;
    p.socket.removeListener('close', p.onClose);
    p.socket.removeListener('error', ignore);
  }

  #acquire(key: string): void {
    this.#active++;
    this.#perClient.add(key);
    this.metrics.tunnelsActive.set({}, this.#active);
  }

  #release(key: string): void {
    this.#active--;
    this.#perClient.remove(key);
    this.metrics.tunnelsActive.set({}, this.#active);
  }

  #finished(t: Tunnel): void {
    this.#release(t.info.clientKey);
    const up = t.bytesUp;
    const down = t.bytesDown;
    this.metrics.bytes.inc({ direction: 'up' }, up);
    this.metrics.bytes.inc({ direction: 'down' }, down);
    this.metrics.closes.inc({ reason: t.reason ?? 'server_closed' });
    this.#log.write({
      client: t.info.client,
      user: t.info.user ?? null,
      method: t.info.method,
      target: t.info.target,
      status: t.info.status,
      bytes_up: up,
      bytes_down: down,
      duration_ms: Date.now() - t.info.requestedAt,
      close: t.reason ?? 'server_closed',
    });
  }

  /** Answers with an error, logs and counts it, and closes the connection. */
  #answer(p: Pending, method: string, target: string, f: ProxyFailure): void {
    const socket = p.socket;
    this.metrics.responses.inc({ status: String(f.status) });
    if (f.reason === 'denied' || f.reason === 'limit' || f.reason === 'draining')
      this.metrics.denials.inc({ reason: f.reason === 'denied' ? 'rule' : f.reason });
    this.#log.write({
      client: p.client,
      user: p.user ?? null,
      method,
      target: redactUrl(target.slice(0, 300)),
      status: f.status,
      bytes_up: 0,
      bytes_down: 0,
      duration_ms: 0,
      close: f.reason,
      error: f.error,
      // A malformed request is quoted in its details: keep what the client sent out of the log (it may hold
      // credentials), the client itself still sees it in the answer.
      details: f.reason === 'protocol' ? f.details.replace(/"(?:[^"\\]|\\.)*"/g, '"..."') : f.details,
    });
    if (p.timer !== undefined) clearTimeout(p.timer);
    p.timer = undefined;
    if (socket.destroyed) return;
    socket.end(errorResponse(this.#name, f));
    // What the client still sends is read and dropped, so our answer is not lost to a reset; bounded in time.
    socket.resume();
    setTimeout(() => socket.destroy(), 2000).unref();
  }
}

function protocolFailure(e: unknown): ProxyFailure {
  const status = e instanceof RemoteProtocolError ? e.statusHint : 400;
  return {
    status: status === 502 || status === 414 ? 400 : status,
    error: 'http_request_error',
    details: isWsviaError(e) ? e.summary : 'the request could not be parsed',
    reason: 'protocol',
  };
}
