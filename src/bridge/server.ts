/**
 * `wsvia bridge`: WebSocket -> TCP, compatible with websockify's clients (noVNC and others). Each WebSocket becomes
 * one TCP connection to a target chosen by the operator (`--target`, `--route`, a token file) or, within the
 * operator's `--allow-target` rules and the SSRF defaults, by the client. Everything that can refuse a session
 * (limits, Origin, credentials, target policy, the target itself) does so before the upgrade, as an HTTP status
 * and a one-line reason. One process, no fork per connection; backpressure both ways (pump.ts).
 */
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import path from 'node:path';
import type tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { ServerAuth, type UserStore } from '../auth/server-auth.js';
import { startKeepalive } from '../client/keepalive.js';
import { formatAuthority, formatHost, parseAuthority, type Authority } from '../protocol/authority.js';
import {
  BINARY_SUBPROTOCOL,
  formatControlMessage,
  REVERSE_SUBPROTOCOL,
  TUNNEL_SUBPROTOCOL,
} from '../protocol/tunnel-control.js';
import { portAllowed, type PortRange } from '../route/destination.js';
import { AccessLog, refusedEntry } from '../observe/access-log.js';
import { Admission, AdmissionRefusal, DEFAULT_ADMISSION, type AdmissionSlot } from '../serve/admission.js';
import { closeServer, listen } from '../serve/listener.js';
import { serverSecureContext } from '../serve/tls-identity.js';
import { closeFailedHandshake, cutAfterClientEnd } from '../serve/tls-end.js';
import type { HostLookup } from '../serve/guarded-connect.js';
import { checkHandshake, makeAuthCheck, makeOriginCheck, offeredProtocols, Refusal } from './admission.js';
import type { TargetRule } from './allow-target.js';
import { bridgeMetrics, type BridgeMetrics } from './metrics.js';
import { refuseUpgrade } from './refuse.js';
import { ReversePorts } from './reverse-ports.js';
import { BridgeSession } from './session.js';
import { acceptByteStream } from './ws-accept.js';
import { serveStatic } from './static-files.js';
import { connectTarget, makeTargetChooser } from './targets.js';
import { TokenFile } from './token-file.js';

/**
 * What {@link startBridge} is told: listener, targets and routes, who may connect, limits and logging (`wsvia
 * bridge`'s flags).
 */
export interface BridgeOptions {
  readonly host?: string;
  /** 0 lets the system choose. */
  readonly port?: number;
  /** The target for every path not otherwise routed. */
  readonly target?: Authority;
  /** Exact URL path -> target (`--route /vnc=127.0.0.1:5900`). */
  readonly routes?: ReadonlyMap<string, Authority>;
  /** websockify TokenFile; the client names its target with `?token=`. */
  readonly tokenFile?: string;
  /** Targets clients may choose with `?target=host:port`. */
  readonly allowTargets?: readonly TargetRule[];
  /** Lift the loopback/private/link-local denial for client-chosen targets that match a rule by name. */
  readonly allowPrivate?: boolean;
  /** Ports reverse tunnels may listen on. */
  readonly allowReverse?: readonly PortRange[];
  /** Serve static files from this directory on the same port. */
  readonly web?: string;
  /** Origins allowed to open WebSockets (`*`: any). Default: any, or only the page's own with `web`. */
  readonly allowOrigins?: readonly string[];
  readonly tls?: { readonly cert: string | Buffer; readonly key: string | Buffer };
  /** Basic credentials (`--auth`, `--htpasswd`). */
  readonly users?: UserStore;
  /** Accepted `Authorization: Bearer` tokens. */
  readonly bearerTokens?: readonly string[];
  /** Ping every WebSocket this often (ms); a peer that misses a pong is dropped. */
  readonly ping?: number;
  /** Sessions being set up or open at once (default 10,000; 0: no limit); then 503 + Retry-After. */
  readonly maxConnections?: number;
  /** The same, per client address (default 500; 0: no limit); then 429 + Retry-After. */
  readonly maxPerClient?: number;
  readonly accessLog?: AccessLog;
  /** How long {@link Bridge.close} waits for peers to answer its 1001 before cutting them, ms (default 1 s). */
  readonly drainTimeout?: number;
  /** Record each session's bytes into this directory (recorder.ts). */
  readonly record?: string;
  /** Limit for resolving and connecting to a target together, ms (default 10 s; 0: none). */
  readonly connectTimeout?: number;
  /**
   * With `tls`: the TLS handshake must finish within this, and a connection whose client ended it must close
   * within this (it is cut then), ms (default 10 s).
   */
  readonly handshakeTimeout?: number;
  /** Resolves target names (default: the system resolver, `dns.lookup`). */
  readonly lookup?: HostLookup;
  /** Largest message on a reverse tunnel's control connection (default 16 MiB); data sessions stream frames. */
  readonly maxPayload?: number;
}

/** A running bridge (from {@link startBridge}): its address, metrics and open sessions. */
export interface Bridge {
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly metrics: BridgeMetrics;
  /** Sessions open now. */
  readonly active: number;
  /** True once closing began. */
  readonly draining?: boolean;
  /** Closes every session (1001, then cut after the drain timeout); resolves once each has been logged. */
  close(drainTimeout?: number): Promise<void>;
}

const DRAINING = new Refusal(503, 'the bridge is shutting down', 'draining', [['Retry-After', '1']]);

/** A fault of ours (a user store that failed, say) answers this request with 500; every other session goes on. */
function answerInternalError(res: http.ServerResponse): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(500, { 'Content-Type': 'text/plain' });
  res.end('wsvia bridge: internal error\n');
}

function peerName(socket: net.Socket): string {
  return `${formatHost(socket.remoteAddress ?? '?')}:${socket.remotePort ?? 0}`;
}

/** Where a session goes, and how it was chosen (the log's `kind`: target, route, token, client, reverse). */
interface Choice {
  readonly target: Authority;
  readonly kind: string;
}

/**
 * The bridge, in process: listener, admission, the checks before each upgrade, sessions and drain.
 *
 * @example
 * const bridge = await startBridge({ port: 6080, target: { host: '127.0.0.1', port: 5900 } });
 * // ... noVNC connects to bridge.url
 * await bridge.close();
 */
export class BridgeServer implements Bridge {
  readonly metrics: BridgeMetrics = bridgeMetrics();
  readonly host: string;
  readonly #o: BridgeOptions;
  readonly #log: AccessLog;
  readonly #server: http.Server;
  readonly #wss: WebSocketServer;
  readonly #reverse = new ReversePorts();
  readonly #admission: Admission;
  readonly #sessions = new Set<BridgeSession>();
  /** Slots a session took over from the upgrade that opened it. */
  readonly #slotOwners = new WeakSet<AdmissionSlot>();
  readonly #tokens: TokenFile | undefined;
  readonly #webRoot: string | undefined;
  readonly #checkAuth: (req: http.IncomingMessage) => Promise<Refusal | undefined>;
  readonly #checkOrigin: (req: http.IncomingMessage) => Refusal | undefined;
  readonly #chooseTarget: ReturnType<typeof makeTargetChooser>;
  #port = 0;
  #draining = false;

  constructor(options: BridgeOptions) {
    this.#o = options;
    this.host = options.host ?? '127.0.0.1';
    this.#log = options.accessLog ?? new AccessLog(undefined);
    this.#log.countInto(this.metrics.registry);
    this.#admission = new Admission({
      maxConnections: options.maxConnections ?? DEFAULT_ADMISSION.maxConnections,
      maxPerClient: options.maxPerClient ?? DEFAULT_ADMISSION.maxPerClient,
    });
    this.#tokens = options.tokenFile === undefined ? undefined : new TokenFile(options.tokenFile);
    this.#webRoot = options.web === undefined ? undefined : path.resolve(options.web);
    this.#checkAuth = makeAuthCheck(
      options.users && new ServerAuth({ realm: 'wsvia bridge', users: options.users, schemes: ['basic'] }),
      options.bearerTokens,
    );
    this.#checkOrigin = makeOriginCheck(
      options.allowOrigins,
      this.#webRoot !== undefined,
      options.tls ? 'https' : 'http',
    );
    this.#chooseTarget = makeTargetChooser({
      ...(options.target ? { target: options.target } : {}),
      ...(options.routes ? { routes: options.routes } : {}),
      ...(this.#tokens ? { tokens: this.#tokens } : {}),
      ...(options.allowTargets ? { allowTargets: options.allowTargets } : {}),
      ...(options.allowPrivate ? { allowPrivate: true } : {}),
    });
    const onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
      this.#onRequest(req, res).catch(() => answerInternalError(res));
    };
    // tls.Server builds its own context from cert and key (it ignores a `secureContext` option): check them first,
    // so a bad pair is a configuration error.
    if (options.tls) serverSecureContext(options.tls, '--tls-cert/--tls-key');
    this.#server = options.tls ? this.#httpsServer(options.tls, onRequest) : http.createServer(onRequest);
    this.#wss = webSocketServer(options.maxPayload ?? 16 * 1024 * 1024);
    this.#server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
      socket.on('error', () => {});
      this.#onUpgrade(req, socket, head).catch(() => socket.destroy());
    });
  }

  get port(): number {
    return this.#port;
  }

  /** The TLS listener: a handshake that fails or takes too long, and a connection its client ended, are cut. */
  #httpsServer(identity: NonNullable<BridgeOptions['tls']>, onRequest: http.RequestListener): https.Server {
    const ms = this.#o.handshakeTimeout ?? 10_000;
    const server = https.createServer(
      { cert: identity.cert, key: identity.key, handshakeTimeout: ms },
      onRequest,
    );
    server.on('secureConnection', (secure: tls.TLSSocket) => cutAfterClientEnd(secure, ms));
    server.on('tlsClientError', closeFailedHandshake);
    return server;
  }

  get url(): string {
    return `${this.#o.tls ? 'wss' : 'ws'}://${formatHost(this.host)}:${this.#port}`;
  }

  /** Sessions open now. */
  get active(): number {
    return this.#sessions.size;
  }

  /** True once {@link close} began: `/healthz` turns 503. */
  get draining(): boolean {
    return this.#draining;
  }

  /** Upgrades being set up or bridged now: what the admission limits count. */
  get admitted(): number {
    return this.#admission.open;
  }

  /** Loads the token file, then binds (a `LISTEN_FAILED` error when the address cannot be bound). */
  async listen(): Promise<void> {
    await this.#tokens?.load();
    const a = await listen(this.#server, this.host, this.#o.port ?? 0, '--listen');
    this.#port = a.port;
  }

  async #onRequest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const denied = await this.#checkAuth(req);
    if (denied) {
      res.writeHead(denied.status, { 'Content-Type': 'text/plain', ...Object.fromEntries(denied.headers) });
      res.end(`wsvia bridge: ${denied.reason}\n`);
      return;
    }
    if (this.#webRoot !== undefined) return serveStatic(this.#webRoot, req, res);
    res.writeHead(426, { 'Content-Type': 'text/plain', Upgrade: 'websocket', Connection: 'Upgrade' });
    res.end('This is a wsvia bridge (WebSocket to TCP): connect with a WebSocket client.\n');
  }

  #refuse(socket: Duplex, req: http.IncomingMessage, r: Refusal, started: number): void {
    this.metrics.refused.inc({ reason: r.metric });
    this.#log.write(
      refusedEntry({
        client: peerName(req.socket),
        method: req.method ?? 'GET',
        // No target was chosen: what was asked for, its tokens hidden.
        target: (req.url ?? '/').replace(/([?&](token|access_token)=)[^&]*/g, '$1***').slice(0, 300),
        status: r.status,
        error: r.metric.replaceAll('-', '_'),
        duration_ms: performance.now() - started,
      }),
    );
    refuseUpgrade(socket, r.status, r.reason, r.headers);
  }

  /** Admission first, then the checks; the slot is given back here unless a session or reverse port took it. */
  async #onUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const started = performance.now();
    if (this.#draining) return this.#refuse(socket, req, DRAINING, started);
    const slot = this.#admission.admit(req.socket.remoteAddress ?? '?');
    if (slot instanceof AdmissionRefusal) return this.#refuse(socket, req, admissionRefusal(slot), started);
    try {
      const refusal = (await this.#setUp(req, socket, head, slot)) ?? undefined;
      if (refusal) this.#refuse(socket, req, refusal, started);
    } finally {
      if (!this.#holds(slot)) slot.close();
    }
  }

  /** Whether a session (or a reverse control connection) holds `slot` now. */
  #holds(slot: AdmissionSlot): boolean {
    return this.#slotOwners.has(slot);
  }

  async #setUp(
    req: http.IncomingMessage,
    socket: Duplex,
    head: Buffer,
    slot: AdmissionSlot,
  ): Promise<Refusal | void> {
    const started = performance.now();
    const malformed = checkHandshake(req);
    if (malformed) return malformed;
    const origin = this.#checkOrigin(req);
    if (origin) return origin;
    const denied = await this.#checkAuth(req);
    if (denied) return denied;
    const url = new URL(req.url ?? '/', 'http://bridge');
    const offered = offeredProtocols(req);
    if (offered.includes(REVERSE_SUBPROTOCOL)) return this.#onReverseControl(req, socket, head, url);
    const connectionId = url.searchParams.get('connection');
    if (connectionId !== null) {
      const s = this.#reverse.take(connectionId);
      if (!s) return new Refusal(404, 'no reverse connection waits with that id', 'reverse-id');
      const choice = { target: { host: 'reverse', port: s.localPort ?? 0 }, kind: 'reverse' };
      return this.#accept({ req, socket, head, tcp: s, choice, started, slot });
    }
    if (offered.length > 0 && !offered.includes(TUNNEL_SUBPROTOCOL) && !offered.includes(BINARY_SUBPROTOCOL))
      return new Refusal(
        400,
        `none of the offered subprotocols (${offered.join(', ').slice(0, 200)}) is binary or ${TUNNEL_SUBPROTOCOL}`,
        'subprotocol',
      );
    const choice = await this.#chooseTarget(url, req.headers.cookie);
    if (choice instanceof Refusal) return choice;
    const tcp = await connectTarget(choice, {
      timeout: this.#o.connectTimeout ?? 10_000,
      lookup: this.#o.lookup,
    });
    if (tcp instanceof Refusal) return tcp;
    if (socket.destroyed || this.#draining) {
      // The client went away, or the drain began while the target was being connected.
      tcp.destroy();
      return this.#draining ? DRAINING : undefined;
    }
    this.#accept({ req, socket, head, tcp, choice, started, slot });
  }

  #accept(a: {
    req: http.IncomingMessage;
    socket: Duplex;
    head: Buffer;
    tcp: net.Socket;
    choice: Choice;
    started: number;
    slot: AdmissionSlot;
  }): void {
    const { req, tcp, choice } = a;
    tcp.pause();
    tcp.on('error', () => {});
    const ping = this.#o.ping;
    const ws = acceptByteStream(req, a.socket, a.head, ping === undefined ? {} : { ping });
    // The client went away before the 101: let go.
    if (!ws) {
      tcp.destroy();
      return;
    }
    this.metrics.setup.observe((performance.now() - a.started) / 1000, {});
    this.metrics.sessions.inc({ kind: choice.kind });
    const setup = {
      clientName: peerName(req.socket),
      target: choice.kind === 'reverse' ? `reverse:${choice.target.port}` : formatAuthority(choice.target),
      kind: choice.kind,
      path: new URL(req.url ?? '/', 'http://b').pathname,
      record: this.#o.record,
    };
    this.#slotOwners.add(a.slot);
    const session = new BridgeSession(ws, tcp, a.slot, { setup, log: this.#log, metrics: this.metrics });
    this.#sessions.add(session);
    this.metrics.active.set({}, this.#sessions.size);
    session.done
      .finally(() => {
        this.#sessions.delete(session);
        this.metrics.active.set({}, this.#sessions.size);
      })
      .catch(() => {});
  }

  async #onReverseControl(
    req: http.IncomingMessage,
    socket: Duplex,
    head: Buffer,
    url: URL,
  ): Promise<Refusal | void> {
    const listen = url.searchParams.get('listen') ?? '';
    let a: Authority;
    try {
      a = parseAuthority(/^\d+$/.test(listen) ? `127.0.0.1:${listen}` : listen, 'the tunnel');
    } catch {
      return new Refusal(400, 'reverse tunnels ask for ?listen=[BIND:]PORT', 'reverse');
    }
    const allowed = this.#o.allowReverse ?? [];
    if (!portAllowed(allowed, a.port))
      return new Refusal(
        403,
        `port ${a.port} is not open to reverse tunnels (--allow-reverse ${allowed.length ? 'elsewhere' : 'not given'})`,
        'reverse-denied',
      );
    if (this.#reverse.has(a.port))
      return new Refusal(409, `port ${a.port} is held by another reverse tunnel`, 'reverse-busy');
    let control: WebSocket | undefined;
    try {
      await this.#reverse.open(a.host, a.port, () => control);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? String(e);
      return new Refusal(
        code === 'EADDRINUSE' ? 409 : 403,
        `cannot listen on ${formatAuthority(a)} (${code})`,
        'reverse-listen',
      );
    }
    if (socket.destroyed) return this.#reverse.close(a.port);
    this.metrics.reversePorts.set({}, this.#reverse.size);
    let upgraded = false;
    this.#wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      upgraded = true;
      control = ws;
      this.#controlOpened(req, ws, a);
    });
    if (!upgraded) {
      this.#reverse.close(a.port);
      this.metrics.reversePorts.set({}, this.#reverse.size);
    }
  }

  #controlOpened(req: http.IncomingMessage, ws: WebSocket, a: Authority): void {
    const client = peerName(req.socket);
    const opened = performance.now();
    startKeepalive(ws, { interval: this.#o.ping ?? 15_000 });
    ws.on('error', () => {});
    ws.on('message', () => {
      // The tunnel sends nothing but pongs on the control connection.
    });
    ws.once('close', (code: number) => {
      this.#reverse.close(a.port);
      this.metrics.reversePorts.set({}, this.#reverse.size);
      // The control connection's own line; the connections through the port each have theirs (reverse:PORT).
      this.#log.write({
        client,
        user: null,
        method: 'GET',
        target: `listen:${formatAuthority(a)}`,
        status: 101,
        bytes_up: 0,
        bytes_down: 0,
        duration_ms: performance.now() - opened,
        close: this.#draining ? 'drain' : code === 1006 ? 'client_lost' : 'client_closed',
        close_code: code === 1006 ? null : code,
        error: null,
      });
    });
    ws.send(formatControlMessage({ type: 'listening', bind: a.host, port: a.port }));
  }

  /**
   * Stops accepting, closes every session with 1001 and waits up to `drainTimeout` ms (default 1 s) for the
   * peers to answer, then cuts the rest. Resolves once every session has ended and written its log line.
   */
  async close(drainTimeout = this.#o.drainTimeout ?? 1000): Promise<void> {
    this.#draining = true;
    this.#reverse.closeAll();
    const closed = closeServer(this.#server);
    const sessions = [...this.#sessions];
    for (const s of sessions) s.drain();
    const all = Promise.all(sessions.map((s) => s.done));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise((r) => (timer = setTimeout(r, drainTimeout)))]);
    clearTimeout(timer);
    for (const s of sessions) s.terminate();
    // Control connections of reverse tunnels, and upgrades still being set up.
    for (const c of this.#wss.clients) c.terminate();
    this.#wss.close();
    this.#server.closeAllConnections();
    await all;
    await closed;
  }
}

/** Upgrades only (noServer): the bridge's handlers decide first, then hand the socket to `ws`. */
function webSocketServer(maxPayload: number): WebSocketServer {
  return new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    maxPayload,
    handleProtocols: (offered: Set<string>) => {
      for (const p of [TUNNEL_SUBPROTOCOL, REVERSE_SUBPROTOCOL, BINARY_SUBPROTOCOL])
        if (offered.has(p)) return p;
      return false;
    },
  });
}

/** The bridge's answer to a connection over a limit (the labels its metrics have always used). */
function admissionRefusal(r: AdmissionRefusal): Refusal {
  const reason = r.describe({ maxConnections: '--max-connections', maxPerClient: '--max-per-client' });
  return new Refusal(r.status, reason, r.reason === 'max_connections' ? 'limit' : 'client-limit', r.headers);
}

/** Starts a bridge; resolves once it listens. */
export async function startBridge(options: BridgeOptions): Promise<BridgeServer> {
  const bridge = new BridgeServer(options);
  await bridge.listen();
  return bridge;
}
