/**
 * The gateway process: listeners, the configuration snapshot, health checks of dead upstreams, the admin
 * listener, reload and drain. Reload swaps the snapshot only: connections read it when their request arrives,
 * and an open WebSocket never looks at it again, so it stays on its upstream whatever the new routes say.
 */
import net from 'node:net';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import type http2 from 'node:http2';
import { WsviaError, type ErrorCode } from '../errors.js';
import { AccessLog } from '../observe/access-log.js';
import { AdminListener } from '../serve/admin.js';
import type { AdminPagesOptions } from '../observe/admin-pages.js';
import type { RelayChoice } from '../serve/splice-relay.js';
import { Admission, AdmissionRefusal, type AdmissionSlot } from '../serve/admission.js';
import { sessionsSettled } from '../serve/drain.js';
import { closeServer, listen } from '../serve/listener.js';
import { configToJson, parseHostPort, type GatewayConfig, type UpstreamSpec } from './config.js';
import { gatewayMetrics, type GatewayMetrics } from './gateway-metrics.js';
import { createH2Server } from './h2-websocket.js';
import { Http1Connection } from './http1-connection.js';
import type { Runtime, Snapshot } from './runtime.js';
import { ClientRateLimiter } from './client-rate.js';
import { buildSnapshot, type TlsIdentity } from './snapshot.js';
import { closeFailedHandshake, cutAfterClientEnd } from '../serve/tls-end.js';
import { handleTlsConnection, PeerAddresses, SniPassthrough } from './tls-listener.js';
import { dialUpstream, type WarmSource } from './upstream-connect.js';
import { UpstreamHealth } from './upstream-pool.js';
import { WarmPools } from './warm-pool.js';
import type { OpenWebSocket } from './ws-relay.js';

/** The addresses the gateway listens on (plain, TLS, admin), once started. */
export interface GatewayAddresses {
  readonly listen: AddressInfo | undefined;
  readonly tls: AddressInfo | undefined;
  readonly admin: AddressInfo | undefined;
}

/** What a Gateway is given besides its configuration. */
export interface GatewayOptions {
  /** Where the access log goes (overrides the config's accessLog). */
  readonly accessLog?: AccessLog;
  /**
   * The relay for SNI passthrough connections (default `auto`): `auto` and `splice` hand both plain TCP sockets to
   * the native zero-copy relay where it loads (serve/splice-relay.ts), `js` always relays in JavaScript.
   */
  readonly relay?: RelayChoice;
}

/** Binds `server` to the config's `HOST:PORT` (`what` names the key); `LISTEN_FAILED` when it cannot. */
function listenAt(server: net.Server, hostPort: string, what: string): Promise<AddressInfo> {
  const { host, port } = parseHostPort(hostPort, what, what);
  return listen(server, host, port, what);
}

/**
 * The WebSocket reverse proxy, in process.
 *
 * @example
 * const config = gatewayConfigFromNode(parseConfig(yamlText, 'gateway.yaml'), 'gateway.yaml');
 * const gateway = new Gateway(config);
 * const { listen } = await gateway.start();
 * process.on('SIGTERM', () => void gateway.drain());
 */
export class Gateway implements Runtime {
  readonly metrics: GatewayMetrics = gatewayMetrics();
  readonly log: AccessLog;
  readonly #health = new UpstreamHealth();
  /** Upstream connections dialed ahead of WebSocket upgrades (src/gateway/warm-pool.ts). */
  readonly #warm: WarmPools;
  #snapshot: Snapshot;
  /** The TLS certificate and key as PEM, from the same load as the snapshot. */
  #identity: TlsIdentity | undefined;
  #draining = false;
  readonly #relays = new Set<OpenWebSocket>();
  readonly #admission: Admission;
  readonly #rates = new ClientRateLimiter();
  #plain: net.Server | undefined;
  #tls: net.Server | undefined;
  #admin: AdminListener | undefined;
  #h2: http2.Http2Server | undefined;
  #terminator: tls.Server | undefined;
  readonly #passthrough: SniPassthrough;
  readonly #peers = new PeerAddresses();
  #healthTimer: NodeJS.Timeout | undefined;
  readonly #sockets = new Set<net.Socket>();
  /** One handler for every client socket: no closure per connection (issue 15). */
  readonly #forgetSocket: (this: net.Socket) => void;
  #addresses: GatewayAddresses = { listen: undefined, tls: undefined, admin: undefined };

  constructor(config: GatewayConfig, options: GatewayOptions = {}) {
    ({ snapshot: this.#snapshot, identity: this.#identity } = buildSnapshot(config, this.#health));
    this.log = options.accessLog ?? AccessLog.open(config.accessLog);
    this.log.countInto(this.metrics.registry);
    this.#admission = new Admission(
      () => this.#snapshot.config.limits,
      (open) => this.metrics.connections.set({}, open),
    );
    this.#passthrough = new SniPassthrough(this, options.relay ?? 'auto');
    const sockets = this.#sockets;
    this.#forgetSocket = function (this: net.Socket) {
      sockets.delete(this);
    };
    this.#warm = new WarmPools({
      health: this.#health,
      dial: (u) => {
        const s = this.#snapshot;
        return dialUpstream(u, { connectTimeout: s.config.limits.connectTimeout, ca: s.ca });
      },
      markDead: (u, code) => this.markDead(u, code),
      counted: (url, n) => this.metrics.warm.set({ upstream: url }, n),
    });
  }

  /** The configuration in force, with its routes and upstream pools (replaced whole on reload). */
  snapshot(): Snapshot {
    return this.#snapshot;
  }

  get draining(): boolean {
    return this.#draining;
  }

  get addresses(): GatewayAddresses {
    return this.#addresses;
  }

  /** @internal What the admin listener serves: `/metrics`, `/healthz` (503 while draining) and `/routes`. */
  adminPages(): AdminPagesOptions {
    return {
      registry: this.metrics.registry,
      healthy: () => !this.#draining,
      pages: { '/routes': () => this.#routesPage() },
    };
  }

  /** The relay SNI passthrough connections get: `splice` (native, zero-copy) or `js`. */
  get sniRelay(): 'js' | 'splice' {
    return this.#passthrough.relay;
  }

  /** WebSockets open now. */
  get openWebSockets(): number {
    return this.#relays.size;
  }

  /**
   * Binds every listener the config names (plain, TLS, admin). If any cannot be bound, the ones already bound are
   * closed again before the `LISTEN_FAILED` error is thrown: a gateway either starts whole or not at all.
   */
  async start(): Promise<GatewayAddresses> {
    try {
      await this.#bind();
    } catch (e) {
      await this.close();
      throw e;
    }
    this.#updateHealthGauge();
    this.#healthTimer = setInterval(() => this.#checkHealth(), this.#snapshot.config.healthInterval);
    this.#healthTimer.unref();
    this.#warm.configure(this.#snapshot.config);
    return this.#addresses;
  }

  async #bind(): Promise<void> {
    const c = this.#snapshot.config;
    if (c.listen !== undefined) {
      this.#plain = net.createServer({ noDelay: true }, (s) => this.#accept(s, 'http'));
      this.#addresses = { ...this.#addresses, listen: await listenAt(this.#plain, c.listen, 'listen') };
    }
    if (c.tls.listen !== undefined) {
      this.#h2 = createH2Server(this, (s) => this.#peers.of(s));
      this.#terminator = this.#makeTerminator();
      this.#tls = net.createServer({ noDelay: true }, (s) => this.#accept(s, 'https'));
      this.#addresses = { ...this.#addresses, tls: await listenAt(this.#tls, c.tls.listen, 'tls.listen') };
    }
    if (c.admin !== undefined) {
      this.#admin = new AdminListener(this.adminPages());
      const { host, port } = parseHostPort(c.admin, 'admin', 'admin');
      await this.#admin.listen(host, port, 'admin');
      this.#addresses = { ...this.#addresses, admin: this.#admin.server.address() as AddressInfo };
    }
  }

  #accept(socket: net.Socket, proto: 'http' | 'https'): void {
    this.#sockets.add(socket);
    socket.on('close', this.#forgetSocket);
    if (this.#draining) {
      socket.destroy();
      return;
    }
    if (proto === 'http') {
      new Http1Connection(socket, this, { proto, remoteAddress: socket.remoteAddress ?? '' });
      return;
    }
    if (this.#terminator)
      handleTlsConnection(socket, this, {
        terminator: this.#terminator,
        passthrough: this.#passthrough,
        peers: this.#peers,
      });
  }

  /**
   * The TLS terminator: certificate from the snapshot (SIGHUP swaps it), ALPN h2 then http/1.1. A client that
   * names a server gets the snapshot's context through the SNI callback; one that names none (an IP address)
   * gets the server's default context, which is the same certificate ({@link Gateway.reload} keeps it current),
   * as nginx and HAProxy answer such clients with their default certificate.
   */
  #makeTerminator(): tls.Server {
    const ctx = this.#snapshot.secureContext;
    const server = tls.createServer({
      ALPNProtocols: ['h2', 'http/1.1'],
      handshakeTimeout: this.#snapshot.config.limits.handshakeTimeout,
      // The context is looked up per handshake, so a reload's new certificate applies to the next connection.
      SNICallback: (_name, cb) => cb(null, this.#snapshot.secureContext ?? ctx),
      // tls.Server ignores a `secureContext` option: its default context is built from cert and key.
      ...this.#identity,
    });
    server.on('secureConnection', (secure: tls.TLSSocket) => {
      cutAfterClientEnd(secure, this.#snapshot.config.limits.handshakeTimeout);
      if (secure.alpnProtocol === 'h2') this.#h2?.emit('connection', secure);
      else {
        new Http1Connection(secure, this, {
          proto: 'https',
          remoteAddress: this.#peers.of(secure),
          admitted: true,
        });
      }
    });
    server.on('tlsClientError', closeFailedHandshake);
    return server;
  }

  /** @internal Connections dialed ahead of need, for WebSocket upgrades (the {@link Runtime} side). */
  get warm(): WarmSource {
    return this.#warm;
  }

  /** @internal Takes an admission slot for one accepted client connection (the {@link Runtime} side). */
  admit(address: string): AdmissionSlot | AdmissionRefusal {
    const rate = this.#snapshot.config.ratePerClient;
    if (rate > 0) {
      const wait = this.#rates.take(address, rate, Date.now());
      if (wait > 0) return new AdmissionRefusal('rate', rate, 0, address, Math.ceil(wait / 1000));
    }
    return this.#admission.admit(address);
  }

  /** Client connections counted against the limits now. */
  get connections(): number {
    return this.#admission.open;
  }

  /** Marks an upstream dead after a failure (counted by error code): it is skipped until a health check passes. */
  markDead(u: UpstreamSpec, code: ErrorCode): void {
    this.metrics.upstreamFailures.inc({ upstream: u.url, code });
    this.#health.markDead(u, Date.now());
    this.metrics.upstreamHealthy.set({ upstream: u.url }, 0);
  }

  track(relay: OpenWebSocket): void {
    this.#relays.add(relay);
  }

  untrack(relay: OpenWebSocket): void {
    this.#relays.delete(relay);
  }

  #updateHealthGauge(): void {
    for (const s of this.#health.all())
      this.metrics.upstreamHealthy.set({ upstream: s.spec.url }, s.healthy ? 1 : 0);
  }

  /** A dead member comes back when it accepts a TCP connection again. */
  #checkHealth(): void {
    const timeout = this.#snapshot.config.limits.connectTimeout;
    for (const s of this.#health.dead()) {
      const sock = net.connect({ host: s.spec.host, port: s.spec.port });
      const t = setTimeout(() => sock.destroy(), timeout);
      sock.once('connect', () => {
        clearTimeout(t);
        sock.destroy();
        if (this.#health.markAlive(s.spec)) this.metrics.upstreamHealthy.set({ upstream: s.spec.url }, 1);
        this.#warm.revive(s.spec.url);
      });
      sock.once('error', () => {
        clearTimeout(t);
        sock.destroy();
      });
    }
  }

  /**
   * Applies a new config to new connections. Throws (a WsviaError) and keeps the running one when the new one
   * is invalid or changes what cannot change in process (the listening addresses).
   */
  reload(config: GatewayConfig): void {
    const old = this.#snapshot.config;
    try {
      for (const [name, a, b] of [
        ['listen', old.listen, config.listen],
        ['tls.listen', old.tls.listen, config.tls.listen],
        ['admin', old.admin, config.admin],
      ] as const) {
        if (a !== b) {
          throw new WsviaError('CONFIG_INVALID', `${name} changed from ${a ?? 'none'} to ${b ?? 'none'}`, {
            hop: 'config',
            hint: 'listening addresses change only with a restart; the running configuration is kept',
          });
        }
      }
      if (old.proxyProtocol !== config.proxyProtocol) {
        throw new WsviaError('CONFIG_INVALID', 'proxyProtocol changed', {
          hop: 'config',
          hint: 'it changes how every connection starts: restart to change it; the running configuration is kept',
        });
      }
      ({ snapshot: this.#snapshot, identity: this.#identity } = buildSnapshot(config, this.#health));
      if (this.#identity) this.#terminator?.setSecureContext({ ...this.#identity });
      this.#passthrough.reload(config.limits);
      if (!this.#draining) this.#warm.configure(config);
    } catch (e) {
      this.metrics.reloads.inc({ result: 'failed' });
      throw e;
    }
    this.metrics.reloads.inc({ result: 'ok' });
    this.#updateHealthGauge();
  }

  #routesPage(): { contentType: string; body: string } {
    const health = Object.fromEntries(this.#health.all().map((s) => [s.spec.url, s.healthy ? 'up' : 'down']));
    return {
      contentType: 'application/json',
      body: `${JSON.stringify({ ...configToJson(this.#snapshot.config), health }, null, 2)}\n`,
    };
  }

  /**
   * SIGTERM: stop accepting, send close 1001 to every open WebSocket at a random moment within the spread (so
   * clients do not all reconnect in the same second), wait for them to end up to the drain timeout, then close.
   * Resolves with the number of WebSockets still open when the time ran out.
   */
  async drain(): Promise<number> {
    this.#draining = true;
    this.#warm.close();
    this.#plain?.close();
    this.#tls?.close();
    const l = this.#snapshot.config.limits;
    const spread = Math.min(l.drainSpread, l.drainTimeout / 2);
    const timers: NodeJS.Timeout[] = [];
    for (const r of this.#relays) {
      timers.push(setTimeout(() => r.close(1001, 'going away', 'drain'), Math.random() * spread));
    }
    const deadline = Date.now() + l.drainTimeout;
    while (this.#relays.size > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, Math.min(50, Math.max(1, deadline - Date.now()))));
    }
    timers.forEach(clearTimeout);
    const left = this.#relays.size;
    await this.close();
    return left;
  }

  /** Closes everything at once (tests, and the end of drain). */
  async close(): Promise<void> {
    this.#draining = true;
    this.#warm.close();
    clearInterval(this.#healthTimer);
    for (const r of this.#relays) r.destroy();
    const passthroughs = this.#passthrough.abortAll('drain');
    for (const s of this.#sockets) s.destroy();
    const closing = [this.#plain, this.#tls]
      .filter((s): s is net.Server => s !== undefined)
      .map((s) => closeServer(s));
    closing.push(this.#admin?.close() ?? Promise.resolve());
    this.#h2?.close();
    await Promise.all(closing);
    // Sessions the drain cut write their log line when their sockets' close events have run (serve/drain.ts);
    // every passthrough connection cut here gets its line before the log closes too.
    await Promise.all([sessionsSettled(() => this.#relays.size), passthroughs]);
    await this.log.close();
  }
}
