/**
 * The forward proxy server: accept, read the request head (with limits and a deadline), authenticate, apply the
 * destination rules and limits, connect, then either answer `200 Connection established` and relay (CONNECT,
 * RFC 9110 §9.3.6) or forward an absolute-form request (RFC 9112 §3.2.2). Every refusal is an HTTP answer with
 * `Proxy-Status` (RFC 9209), logged and counted.
 */
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { FailureLimit } from '../auth/failure-limit.js';
import { ServerAuth } from '../auth/server-auth.js';
import { isWsviaError, RemoteProtocolError } from '../errors.js';
import { formatHost, parseAuthority, type Authority } from '../protocol/authority.js';
import { requestFraming } from '../protocol/body.js';
import { getHeader } from '../protocol/headers.js';
import { RequestHeadReader, type RequestHead } from '../protocol/head.js';
import { ProxyProtocolReader } from '../protocol/proxy-protocol.js';
import { DEFAULT_POLICY, type DestinationPolicy } from '../route/destination.js';
import { AccessLog, refusedEntry } from '../observe/access-log.js';
import { redactUrl } from '../observe/redact.js';
import { Admission, AdmissionRefusal, releaseOnClose, type AdmissionSlot } from '../serve/admission.js';
import { serverSecureContext } from '../serve/tls-identity.js';
import { cutAfterClientEnd } from '../serve/tls-end.js';
import { listen } from '../serve/listener.js';
import { AuthCache } from './auth-cache.js';
import { CONNECTION_ESTABLISHED, errorResponse, type ProxyFailure } from './error-response.js';
import { parseForwardTarget, startForward, type ForwardTarget } from './forward.js';
import { ProxyMetrics } from './metrics.js';
import { resolvedLimits, SPLICE_AFTER, type ProxyLimits, type ProxyServerOptions } from './options.js';
import { reusedReads, TunnelSet } from '../serve/relay.js';
import { nativeDialer, relayDecision, spliceable, type NativeDialer } from '../serve/splice-relay.js';
import type { Tunnel, TunnelInfo } from './relay.js';
import { dialUpstream, openUpstream } from './upstream.js';

/** The leftover of a request head with nothing after it (most of them). */
const NOTHING = Buffer.alloc(0);

/** Keeps an error on a socket from being thrown; the close that follows does the cleanup. */
function ignore(): void {}

/** What the server knows about one client connection before it becomes a tunnel. */
interface Pending {
  socket: net.Socket;
  client: string;
  clientKey: string;
  /** Still reading the request head: the shared sweep answers 408 once `--header-timeout` has passed. */
  readingHead: boolean;
  user: string | undefined;
  /** When the connection was accepted (a refusal's `duration_ms` counts from here). */
  readonly accepted: number;
  /** Held from admission until the answer, or the end of the tunnel. */
  slot: AdmissionSlot | undefined;
  readonly onClose: () => void;
}

/** One request from its complete head to a tunnel, a forwarded exchange or an error answer. */
class ProxyRequest {
  readonly requestedAt = Date.now();

  constructor(
    readonly p: Pending,
    readonly head: RequestHead,
    readonly leftover: Buffer,
    readonly authority: Authority,
    /** Absolute-form requests only. */
    readonly forward?: ForwardTarget,
  ) {}

  get kind(): 'connect' | 'upgrade' | 'forward' {
    if (this.forward === undefined) return 'connect';
    return this.forward.upgrade === undefined ? 'forward' : 'upgrade';
  }

  /** What the access log says about the tunnel this request became. */
  info(status: number): TunnelInfo {
    const p = this.p;
    return {
      client: p.client,
      user: p.user,
      method: flat(this.head.method),
      target: flat(this.head.target),
      status,
      requestedAt: this.requestedAt,
      clientKey: p.clientKey,
    };
  }
}

const DRAINING: ProxyFailure = {
  status: 503,
  error: 'connection_limit_reached',
  details: 'the proxy is shutting down',
  reason: 'draining',
  headers: [['Retry-After', '1']],
};

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

/** What a 407's details say for each way the credentials failed. */
const AUTH_FAILURE = {
  malformed: 'failed',
  rejected: 'failed',
  stale: 'nonce expired',
  replayed: 'failed: a Digest response is good once (nonce count replayed)',
} as const;

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
  readonly #tunnels: TunnelSet<TunnelInfo>;
  /** Where CONNECT tunnels go straight to the native relay: their destination is dialed natively. */
  readonly #dialer: NativeDialer | undefined;
  readonly #secureContext: tls.SecureContext | undefined;
  readonly #pending = new Set<Pending>();
  readonly #admission: Admission;
  readonly #authCache = new AuthCache();
  readonly #authFailures: FailureLimit;
  #draining = false;
  #headSweep: NodeJS.Timeout | undefined;

  constructor(options: ProxyServerOptions = {}) {
    this.#o = options;
    this.#limits = resolvedLimits(options.limits);
    this.#authFailures = new FailureLimit(this.#limits.authFailuresPerMinute);
    this.#policy = options.policy ?? DEFAULT_POLICY;
    this.#name = options.name ?? 'wsvia';
    this.#log = options.accessLog ?? new AccessLog(undefined);
    this.#log.countInto(this.metrics.registry);
    this.#auth = options.users
      ? new ServerAuth({
          realm: options.realm ?? 'wsvia proxy',
          users: options.users,
          schemes: options.authSchemes ?? (options.users.password ? ['digest', 'basic'] : ['basic']),
        })
      : undefined;
    this.#secureContext = options.tls ? serverSecureContext(options.tls, '--tls-cert/--tls-key') : undefined;
    this.#admission = new Admission(
      { maxConnections: this.#limits.maxTunnels, maxPerClient: this.#limits.maxTunnelsPerClient },
      (open) => this.metrics.tunnelsActive.set({}, open),
    );
    this.#tunnels = new TunnelSet<TunnelInfo>({
      idleTimeout: this.#limits.idleTimeout,
      maxLifetime: this.#limits.maxLifetime,
      onFinish: (t) => this.#finished(t),
      relay: relayDecision(options.relay ?? 'js', options.tls !== undefined).relay,
      spliceAfter: options.spliceAfter ?? SPLICE_AFTER,
    });
    this.#dialer = this.#tunnels.relay === 'splice' && !options.upstream ? nativeDialer() : undefined;
    // allowHalfOpen: a client's FIN is passed on as a FIN, not answered by closing our side (half-close).
    this.#server = net.createServer({ allowHalfOpen: true, noDelay: true }, (s) => this.#accept(s));
  }

  /** True once {@link close} began: /healthz turns 503. */
  get draining(): boolean {
    return this.#draining;
  }

  /** The relay CONNECT tunnels get: `splice` (native, zero-copy) or `js`. */
  get relay(): 'js' | 'splice' {
    return this.#tunnels.relay;
  }

  /**
   * True when CONNECT tunnels straight to their destination are dialed by the native addon and spliced from their
   * first byte (the splice relay, no parent proxy); tunnels dialed in JavaScript move to it after `spliceAfter`.
   */
  get dialsNatively(): boolean {
    return this.#dialer !== undefined;
  }

  /** Tunnels and forwarded exchanges open or being set up. */
  get active(): number {
    return this.#admission.open;
  }

  /** Binds; rejects with `LISTEN_FAILED` (the address in use, or not this host's). */
  async listen(): Promise<ListeningAddress> {
    const host = this.#o.host ?? '127.0.0.1';
    const { port } = await listen(this.#server, host, this.#o.port ?? 8080, '--host/--port');
    const scheme = this.#secureContext ? 'https' : 'http';
    return { host, port, url: `${scheme}://${formatHost(host)}:${port}` };
  }

  /**
   * Stops accepting, lets open tunnels finish for up to `drainTimeout` ms, then closes them. Connections that
   * have not sent a request yet are closed at once.
   */
  async close(drainTimeout = 0): Promise<void> {
    this.#draining = true;
    const closed = new Promise<void>((r) => this.#server.close(() => r()));
    for (const p of [...this.#pending]) if (p.readingHead) p.socket.destroy();
    const deadline = Date.now() + drainTimeout;
    while (this.#admission.open > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    this.#tunnels.abortAll('drain');
    for (const p of [...this.#pending]) p.socket.destroy();
    clearInterval(this.#headSweep);
    this.#headSweep = undefined;
    // Every tunnel cut here still gets its access-log line before the log closes.
    await this.#tunnels.whenEmpty();
    await closed;
    await this.#log.close();
  }

  #accept(raw: net.Socket): void {
    raw.on('error', ignore);
    const p: Pending = {
      socket: raw,
      client: `${formatHost(raw.remoteAddress ?? '?')}:${raw.remotePort ?? 0}`,
      clientKey: raw.remoteAddress ?? '?',
      readingHead: true,
      user: undefined,
      accepted: Date.now(),
      slot: undefined,
      onClose: () => {
        p.readingHead = false;
        this.#pending.delete(p);
      },
    };
    this.#pending.add(p);
    raw.once('close', p.onClose);
    if (this.#draining) return void raw.destroy();
    this.#armHeadSweep();
    if (this.#o.proxyProtocol) this.#readProxyHeader(p, raw);
    else this.#startHttp(p, raw, undefined);
  }

  /**
   * One timer for every connection still reading its head, never one per connection: it runs while any are
   * pending, and answers 408 within a quarter of `--header-timeout` past it (as the relay's idle sweep does).
   */
  #armHeadSweep(): void {
    const limit = this.#limits.headerTimeout;
    if (this.#headSweep !== undefined || !(limit > 0)) return;
    const every = Math.max(50, Math.min(1000, limit / 4));
    this.#headSweep = setInterval(() => {
      if (this.#pending.size === 0) {
        clearInterval(this.#headSweep);
        this.#headSweep = undefined;
        return;
      }
      const late = Date.now() - limit;
      for (const p of this.#pending) if (p.readingHead && p.accepted <= late) this.#headTimeout(p);
    }, every).unref();
  }

  #headTimeout(p: Pending): void {
    p.readingHead = false;
    this.#answer(p, null, null, {
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
      raw.removeListener('end', onEnd);
      this.#startHttp(p, raw, r.leftover.length > 0 ? r.leftover : undefined);
    };
    // A FIN before the header is whole: it never will be (and the peer may not speak HTTP). Close now, not at the
    // header timeout.
    const onEnd = (): void => void raw.destroy();
    raw.on('data', onData);
    raw.once('end', onEnd);
  }

  #startHttp(p: Pending, raw: net.Socket, early: Buffer | undefined): void {
    let socket: net.Socket = raw;
    if (this.#secureContext) {
      if (early) raw.unshift(early);
      early = undefined;
      const secure = new tls.TLSSocket(raw, { isServer: true, secureContext: this.#secureContext });
      secure.on('error', ignore);
      cutAfterClientEnd(secure, this.#limits.headerTimeout, { halfOpen: true });
      socket = secure;
      p.socket = socket;
      raw.once('close', () => socket.destroy());
    }
    const reader = new RequestHeadReader({ peer: `client ${p.client}`, hop: 'server' }, this.#limits.head);
    const stopReading = (): void => {
      socket.removeListener('data', onData);
      socket.removeListener('end', onEnd);
    };
    const onData = (chunk: Buffer): void => {
      let r;
      try {
        r = reader.receive(chunk);
      } catch (e) {
        stopReading();
        return this.#answer(p, null, null, protocolFailure(e));
      }
      if (!r) return;
      stopReading();
      socket.pause();
      p.readingHead = false;
      // A copy: the leftover is a view of the read that carried the head.
      const leftover = r.leftover.length === 0 ? NOTHING : Buffer.from(r.leftover);
      void this.#handle(p, r.head, leftover).catch((e: unknown) =>
        this.#answer(p, r.head.method, r.head.target, {
          status: 500,
          error: 'proxy_internal_error',
          details: `internal error: ${e instanceof Error ? e.message : String(e)}`,
          reason: 'protocol',
        }),
      );
    };
    // allowHalfOpen keeps a FIN from closing the socket: one before the head is whole means it never will be.
    const onEnd = (): void => {
      stopReading();
      if (reader.received.length === 0) return void socket.destroy();
      this.#answer(p, null, null, truncatedHead(p.client));
    };
    socket.on('data', onData);
    socket.once('end', onEnd);
    if (early) onData(early);
    // After a PROXY header the socket was paused; a listener alone does not restart an explicitly paused stream.
    if (socket.listenerCount('data') > 0 && !socket.destroyed) socket.resume();
  }

  /** Checks the request's credentials; returns the refusal to send, or undefined (and `p.user` set) when good. */
  async #authenticate(auth: ServerAuth, p: Pending, head: RequestHead): Promise<ProxyFailure | undefined> {
    // RFC 9110 §11.7.2: Proxy-Authorization is consumed by the proxy it is for; never forwarded or logged.
    const authorization = getHeader(head.headers, 'proxy-authorization');
    const basic = authorization !== undefined && /^basic /i.test(authorization);
    const key = basic ? AuthCache.key(authorization) : undefined;
    // Credentials that already checked out cost nothing: answered from the cache, even for a limited address.
    const cached = key === undefined ? undefined : this.#authCache.get(key);
    if (cached !== undefined) {
      p.user = cached;
      return undefined;
    }
    const retryAfter = authorization === undefined ? undefined : this.#authFailures.retryAfter(p.clientKey);
    if (retryAfter !== undefined) {
      this.metrics.authFailures.inc({ reason: 'limited' });
      const rule = `--auth-failures-per-minute ${this.#limits.authFailuresPerMinute}`;
      return {
        status: 429,
        error: 'http_request_denied',
        details: `too many failed logins from ${p.clientKey}; retry in ${retryAfter} s`,
        rule,
        reason: 'auth',
        headers: [['Retry-After', String(retryAfter)]],
      };
    }
    const check = await auth.check(authorization, head.method, head.target);
    if (check.ok) {
      if (key !== undefined) this.#authCache.set(key, check.user);
      p.user = check.user;
      return undefined;
    }
    this.metrics.authFailures.inc({ reason: check.reason });
    // The first leg of a challenge (no credentials) and a stale nonce are the protocol working, not a guess.
    if (check.reason !== 'missing' && check.reason !== 'stale') this.#authFailures.fail(p.clientKey);
    if (check.user !== undefined) p.user = check.user;
    return {
      status: 407,
      error: 'http_request_denied',
      details:
        check.reason === 'missing'
          ? 'this proxy requires authentication'
          : `proxy authentication ${AUTH_FAILURE[check.reason]}`,
      reason: 'auth',
      headers: auth
        .challenges(check.reason === 'stale')
        .map((c): [string, string] => ['Proxy-Authenticate', c]),
    };
  }

  async #handle(p: Pending, head: RequestHead, leftover: Buffer): Promise<void> {
    const q = this.#parse(p, head, leftover);
    if (!q) return;
    this.metrics.requestsTotal.inc({ kind: q.kind });
    if (this.#draining) return this.#answer(p, head.method, head.target, DRAINING);
    if (this.#auth) {
      const refused = await this.#authenticate(this.#auth, p, head);
      if (refused) return this.#answer(p, head.method, head.target, refused);
    }
    const slot = this.#admission.admit(p.clientKey);
    if (slot instanceof AdmissionRefusal)
      return this.#answer(p, head.method, head.target, limitFailure(slot));
    // The slot is given back when the client connection closes, whatever path closes it (a tunnel's end, a
    // failed setup, a request body that does not parse), or by an error answer: no path can keep it (trap 16).
    p.slot = slot;
    releaseOnClose(p.socket, slot);
    if (q.forward === undefined && this.#dialer !== undefined && spliceable(p.socket))
      return this.#dialTunnel(q, this.#dialer);
    const r = await openUpstream(q.authority, {
      policy: this.#policy,
      connectTimeout: this.#limits.connectTimeout,
      parent: this.#o.upstream,
      parentCa: this.#o.upstreamCa,
      lookup: this.#o.lookup,
      // Only a tunnel's destination socket goes straight to the relay; a forwarded request's answer head is
      // read by the server first.
      onread: q.forward === undefined ? reusedReads() : undefined,
    });
    if (!r.ok) return this.#answer(p, head.method, head.target, r.failure);
    if (p.socket.destroyed) return void r.socket.destroy();
    this.metrics.setupSeconds.observe((Date.now() - q.requestedAt) / 1000);
    if (q.forward === undefined) this.#tunnel(q, r.socket);
    else this.#forward(q, q.forward, r.socket);
  }

  /** The request's target (and, for a forwarded request, its body framing) checked; undefined once answered. */
  #parse(p: Pending, head: RequestHead, leftover: Buffer): ProxyRequest | undefined {
    try {
      if (head.method === 'CONNECT')
        return new ProxyRequest(p, head, leftover, parseAuthority(head.target, `client ${p.client}`));
      const forward = parseForwardTarget(head);
      requestFraming(head, `client ${p.client}`);
      return new ProxyRequest(p, head, leftover, forward.authority, forward);
    } catch (e) {
      this.metrics.requestsTotal.inc({ kind: 'invalid' });
      this.#answer(p, head.method, head.target, protocolFailure(e));
      return undefined;
    }
  }

  /** CONNECT with the native dialer: the destination never gets a socket object; the native relay carries it. */
  async #dialTunnel(q: ProxyRequest, dialer: NativeDialer): Promise<void> {
    const { p, head } = q;
    const o = { policy: this.#policy, connectTimeout: this.#limits.connectTimeout, lookup: this.#o.lookup };
    const r = await dialUpstream(q.authority, o, dialer);
    if (!r.ok) return this.#answer(p, head.method, head.target, r.failure);
    if (p.socket.destroyed) return fs.closeSync(r.fd);
    this.metrics.setupSeconds.observe((Date.now() - q.requestedAt) / 1000);
    this.#adopt(p);
    p.socket.write(CONNECTION_ESTABLISHED);
    this.metrics.tunnelsTotal.inc();
    this.metrics.responses.inc({ status: '200' });
    this.#tunnels.openDialed(p.socket, r.fd, q.leftover, q.info(200));
  }

  /** CONNECT: `200 Connection established`, then the relay. */
  #tunnel(q: ProxyRequest, upstream: net.Socket): void {
    const client = q.p.socket;
    this.#adopt(q.p);
    client.write(CONNECTION_ESTABLISHED);
    // Bytes the client sent before our 200 (an eager TLS ClientHello) belong to the tunnel.
    if (q.leftover.length > 0) upstream.write(q.leftover);
    this.metrics.tunnelsTotal.inc();
    this.metrics.responses.inc({ status: '200' });
    this.#tunnels.open(client, upstream, q.info(200));
  }

  /** An absolute-form request: forwarded, and its answer relayed once its head has come (forward.ts). */
  #forward(q: ProxyRequest, target: ForwardTarget, upstream: net.Socket): void {
    const { p, head } = q;
    startForward({
      client: p.socket,
      upstream,
      head,
      leftover: q.leftover,
      target,
      name: this.#name,
      responseTimeout: this.#limits.idleTimeout,
      onResponse: (status, upgraded) => {
        this.metrics.responses.inc({ status: String(status) });
        if (upgraded) this.metrics.tunnelsTotal.inc();
        this.#adopt(p);
        return this.#tunnels.open(p.socket, upstream, q.info(status), upgraded);
      },
      onFailure: (f) => this.#answer(p, head.method, head.target, f),
    });
  }

  /** The connection becomes a tunnel: the relay's handlers take over from the setup's. */
  #adopt(p: Pending): void {
    this.#pending.delete(p);
    if (p.socket instanceof tls.TLSSocket) return;
    p.socket.removeListener('close', p.onClose);
    p.socket.removeListener('error', ignore);
  }

  #finished(t: Tunnel): void {
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
      close_code: null,
      error: null,
    });
  }

  /** Answers with an error, logs and counts it, and closes the connection. */
  #answer(p: Pending, method: string | null, target: string | null, f: ProxyFailure): void {
    const socket = p.socket;
    p.slot?.close();
    this.metrics.responses.inc({ status: String(f.status) });
    if (f.reason === 'denied' || f.reason === 'limit' || f.reason === 'draining')
      this.metrics.denials.inc({ reason: f.reason === 'denied' ? 'rule' : f.reason });
    this.#log.write(
      refusedEntry({
        client: p.client,
        user: p.user ?? null,
        method,
        target: target === null ? null : redactUrl(target.slice(0, 300)),
        status: f.status,
        // RFC 9209's error type, the one the client reads in Proxy-Status.
        error: f.error,
        duration_ms: Date.now() - p.accepted,
      }),
    );
    p.readingHead = false;
    if (socket.destroyed) return;
    socket.end(errorResponse(this.#name, f));
    // What the client still sends is read and dropped, so our answer is not lost to a reset; bounded in time.
    socket.resume();
    setTimeout(() => socket.destroy(), 2000).unref();
  }
}

/** 503 for the proxy's limit, 429 for the client's own, both with Retry-After (RFC 6585 §4, RFC 9110 §10.2.3). */
function limitFailure(r: AdmissionRefusal): ProxyFailure {
  const flag =
    r.reason === 'max_connections' ? `--max-tunnels ${r.limit}` : `--max-tunnels-per-client ${r.limit}`;
  return {
    status: r.status,
    error: 'connection_limit_reached',
    details:
      r.reason === 'max_connections'
        ? `the proxy has ${r.open} tunnels open, its limit (${flag})`
        : `${r.client} has ${r.open} tunnels open, its limit (${flag})`,
    rule: flag,
    reason: 'limit',
    headers: [...r.headers],
  };
}

/** RFC 9112 §2.2 leaves an incomplete message to the server; like Node's HTTP server, answer 400. */
function truncatedHead(client: string): ProxyFailure {
  return {
    status: 400,
    error: 'http_request_error',
    details: `client ${client} ended the connection before the request head was complete`,
    reason: 'protocol',
  };
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
