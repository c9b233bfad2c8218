/**
 * `wsvia bridge`: WebSocket -> TCP, compatible with websockify's clients (noVNC and others). Each WebSocket becomes
 * one TCP connection to a target chosen by the operator (`--target`, `--route`, a token file) or, within the
 * operator's `--allow-target` rules and the SSRF defaults, by the client. Everything that can refuse a session
 * (limits, Origin, credentials, target policy, the target itself) does so before the upgrade, as an HTTP status
 * and a one-line reason. One process, no fork per connection; backpressure both ways (pump.ts).
 */
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
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
import { AccessLog } from '../observe/access-log.js';
import { CountsByKey } from '../observe/counts-by-key.js';
import { checkHandshake, makeAuthCheck, makeOriginCheck, offeredProtocols, Refusal } from './admission.js';
import type { TargetRule } from './allow-target.js';
import { bridgeMetrics, type BridgeMetrics } from './metrics.js';
import { pump, type ClosedBy } from './pump.js';
import { SessionRecorder } from './recorder.js';
import { refuseUpgrade } from './refuse.js';
import { ReversePorts } from './reverse-ports.js';
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
  readonly maxConnections?: number;
  readonly maxPerClient?: number;
  readonly accessLog?: AccessLog;
  /** Record each session's bytes into this directory (recorder.ts). */
  readonly record?: string;
  /** Limit for the TCP connect to a target, ms (default 10 s). */
  readonly connectTimeout?: number;
  /** Largest WebSocket message accepted (default 16 MiB). */
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
  /** Stops listening and closes every session; resolves when all are closed. */
  close(): Promise<void>;
}

function peerName(socket: net.Socket): string {
  return `${formatHost(socket.remoteAddress ?? '?')}:${socket.remotePort ?? 0}`;
}

/** Starts a bridge; resolves once it listens. */
export async function startBridge(options: BridgeOptions): Promise<Bridge> {
  const host = options.host ?? '127.0.0.1';
  const metrics = bridgeMetrics();
  const log = options.accessLog ?? new AccessLog(undefined);
  const tokens = options.tokenFile === undefined ? undefined : new TokenFile(options.tokenFile);
  await tokens?.load();
  const webRoot = options.web === undefined ? undefined : path.resolve(options.web);
  const auth =
    options.users === undefined
      ? undefined
      : new ServerAuth({ realm: 'wsvia bridge', users: options.users, schemes: ['basic'] });
  const reverse = new ReversePorts();
  const perClient = new CountsByKey();
  const scheme = options.tls ? 'https' : 'http';
  const checkAuth = makeAuthCheck(auth, options.bearerTokens);
  const checkOrigin = makeOriginCheck(options.allowOrigins, webRoot !== undefined, scheme);
  const chooseTarget = makeTargetChooser({
    ...(options.target ? { target: options.target } : {}),
    ...(options.routes ? { routes: options.routes } : {}),
    ...(tokens ? { tokens } : {}),
    ...(options.allowTargets ? { allowTargets: options.allowTargets } : {}),
    ...(options.allowPrivate ? { allowPrivate: true } : {}),
  });
  let active = 0;
  let pending = 0;

  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    void (async () => {
      const denied = await checkAuth(req);
      if (denied) {
        res.writeHead(denied.status, { 'Content-Type': 'text/plain', ...Object.fromEntries(denied.headers) });
        return res.end(`wsvia bridge: ${denied.reason}\n`);
      }
      if (webRoot !== undefined) return serveStatic(webRoot, req, res);
      res.writeHead(426, { 'Content-Type': 'text/plain', Upgrade: 'websocket', Connection: 'Upgrade' });
      res.end('This is a wsvia bridge (WebSocket to TCP): connect with a WebSocket client.\n');
    })();
  };
  const server = options.tls
    ? https.createServer({ cert: options.tls.cert, key: options.tls.key }, onRequest)
    : http.createServer(onRequest);
  const wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    maxPayload: options.maxPayload ?? 16 * 1024 * 1024,
    handleProtocols: (offered: Set<string>) => {
      for (const p of [TUNNEL_SUBPROTOCOL, REVERSE_SUBPROTOCOL, BINARY_SUBPROTOCOL])
        if (offered.has(p)) return p;
      return false;
    },
  });

  const refuse = (socket: Duplex, req: http.IncomingMessage, r: Refusal): void => {
    metrics.refused.inc({ reason: r.metric });
    log.write({
      event: 'refused',
      client: peerName(req.socket),
      path: (req.url ?? '/').replace(/([?&](token|access_token)=)[^&]*/g, '$1***'),
      status: r.status,
      reason: r.reason,
    });
    refuseUpgrade(socket, r.status, r.reason, r.headers);
  };

  async function onUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const started = performance.now();
    const client = req.socket.remoteAddress ?? '?';
    socket.on('error', () => {});
    if (options.maxConnections !== undefined && active + pending >= options.maxConnections)
      return refuse(
        socket,
        req,
        new Refusal(503, `the bridge is at its limit of ${options.maxConnections} connections`, 'limit'),
      );
    const mine = perClient.get(client);
    if (options.maxPerClient !== undefined && mine >= options.maxPerClient)
      return refuse(
        socket,
        req,
        new Refusal(
          429,
          `too many connections from ${client} (limit ${options.maxPerClient})`,
          'client-limit',
        ),
      );
    const malformed = checkHandshake(req);
    if (malformed) return refuse(socket, req, malformed);
    const origin = checkOrigin(req);
    if (origin) return refuse(socket, req, origin);
    pending++;
    perClient.add(client);
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      perClient.remove(client);
    };
    try {
      const denied = await checkAuth(req);
      if (denied) return refuse(socket, req, denied);
      const url = new URL(req.url ?? '/', 'http://bridge');
      const offered = offeredProtocols(req);
      if (offered.includes(REVERSE_SUBPROTOCOL)) return await onReverseControl(req, socket, head, url);
      const connectionId = url.searchParams.get('connection');
      if (connectionId !== null) {
        const s = reverse.take(connectionId);
        if (!s)
          return refuse(
            socket,
            req,
            new Refusal(404, 'no reverse connection waits with that id', 'reverse-id'),
          );
        return accept(
          req,
          socket,
          head,
          s,
          { target: { host: 'reverse', port: s.localPort ?? 0 }, kind: 'reverse' },
          started,
          release,
        );
      }
      if (
        offered.length > 0 &&
        !offered.includes(TUNNEL_SUBPROTOCOL) &&
        !offered.includes(BINARY_SUBPROTOCOL)
      )
        return refuse(
          socket,
          req,
          new Refusal(
            400,
            `none of the offered subprotocols (${offered.join(', ').slice(0, 200)}) is binary or ${TUNNEL_SUBPROTOCOL}`,
            'subprotocol',
          ),
        );
      const choice = await chooseTarget(url, req.headers.cookie);
      if (choice instanceof Refusal) return refuse(socket, req, choice);
      const tcp = await connectTarget(choice.target, choice.address, options.connectTimeout ?? 10_000);
      if (tcp instanceof Refusal) return refuse(socket, req, tcp);
      if (socket.destroyed) {
        tcp.destroy();
        return;
      }
      accept(req, socket, head, tcp, choice, started, release);
    } finally {
      pending--;
      // Sessions that were accepted release their per-client slot when they end.
      if (!accepted.has(socket)) release();
    }
  }

  const accepted = new WeakSet<Duplex>();

  function accept(
    req: http.IncomingMessage,
    socket: Duplex,
    head: Buffer,
    tcp: net.Socket,
    choice: { target: Authority; kind: string },
    started: number,
    release: () => void,
  ): void {
    accepted.add(socket);
    active++;
    metrics.active.set({}, active);
    tcp.pause();
    tcp.on('error', () => {});
    let upgraded = false;
    wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      upgraded = true;
      metrics.setup.observe((performance.now() - started) / 1000, {});
      metrics.sessions.inc({ kind: choice.kind });
      const target =
        choice.kind === 'reverse' ? `reverse:${choice.target.port}` : formatAuthority(choice.target);
      const clientName = peerName(req.socket);
      const recorder =
        options.record === undefined
          ? undefined
          : new SessionRecorder(options.record, {
              client: clientName,
              target,
              path: new URL(req.url ?? '/', 'http://b').pathname,
            });
      if (options.ping !== undefined) startKeepalive(ws, { interval: options.ping });
      const t0 = performance.now();
      const done = pump(tcp, ws, {
        halfClose: ws.protocol === TUNNEL_SUBPROTOCOL,
        ...(recorder
          ? { onData: (from, bytes) => recorder.data(from === 'websocket' ? 'up' : 'down', bytes) }
          : {}),
      });
      tcp.resume();
      void done.then(async (r) => {
        active--;
        metrics.active.set({}, active);
        release();
        const closedBy = whoClosed(r.closedBy);
        metrics.bytes.inc({ direction: 'up' }, r.bytesFromWebSocket);
        metrics.bytes.inc({ direction: 'down' }, r.bytesFromSocket);
        metrics.closed.inc({ by: closedBy });
        const summary = {
          closed_by: closedBy,
          bytes_up: r.bytesFromWebSocket,
          bytes_down: r.bytesFromSocket,
        };
        log.write({
          event: 'session',
          client: clientName,
          target,
          kind: choice.kind,
          subprotocol: ws.protocol || null,
          ...summary,
          ws_close_code: r.wsCloseCode,
          duration_ms: Math.round(performance.now() - t0),
        });
        await recorder?.end(summary);
      });
    });
    // ws completes or aborts the handshake synchronously: if it aborted (the client went away), let go.
    if (!upgraded) {
      tcp.destroy();
      active--;
      metrics.active.set({}, active);
      release();
    }
  }

  function whoClosed(c: ClosedBy): string {
    return c === 'websocket' ? 'client' : c === 'socket' ? 'target' : c;
  }

  async function onReverseControl(
    req: http.IncomingMessage,
    socket: Duplex,
    head: Buffer,
    url: URL,
  ): Promise<void> {
    const listen = url.searchParams.get('listen') ?? '';
    let a: Authority;
    try {
      a = parseAuthority(/^\d+$/.test(listen) ? `127.0.0.1:${listen}` : listen, 'the tunnel');
    } catch {
      return refuse(socket, req, new Refusal(400, 'reverse tunnels ask for ?listen=[BIND:]PORT', 'reverse'));
    }
    const allowed = options.allowReverse ?? [];
    if (!portAllowed(allowed, a.port))
      return refuse(
        socket,
        req,
        new Refusal(
          403,
          `port ${a.port} is not open to reverse tunnels (--allow-reverse ${allowed.length ? 'elsewhere' : 'not given'})`,
          'reverse-denied',
        ),
      );
    if (reverse.has(a.port))
      return refuse(
        socket,
        req,
        new Refusal(409, `port ${a.port} is held by another reverse tunnel`, 'reverse-busy'),
      );
    let control: WebSocket | undefined;
    try {
      await reverse.open(a.host, a.port, () => control);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? String(e);
      return refuse(
        socket,
        req,
        new Refusal(
          code === 'EADDRINUSE' ? 409 : 403,
          `cannot listen on ${formatAuthority(a)} (${code})`,
          'reverse-listen',
        ),
      );
    }
    if (socket.destroyed) return reverse.close(a.port);
    metrics.reversePorts.set({}, reverse.size);
    let upgraded = false;
    wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      upgraded = true;
      control = ws;
      startKeepalive(ws, { interval: options.ping ?? 15_000 });
      ws.on('error', () => {});
      ws.on('message', () => {
        // The tunnel sends nothing but pongs on the control connection.
      });
      ws.once('close', () => {
        reverse.close(a.port);
        metrics.reversePorts.set({}, reverse.size);
        log.write({ event: 'reverse-closed', client: peerName(req.socket), listen: formatAuthority(a) });
      });
      log.write({ event: 'reverse-listening', client: peerName(req.socket), listen: formatAuthority(a) });
      ws.send(formatControlMessage({ type: 'listening', bind: a.host, port: a.port }));
    });
    if (!upgraded) {
      reverse.close(a.port);
      metrics.reversePorts.set({}, reverse.size);
    }
  }

  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    onUpgrade(req, socket, head).catch(() => socket.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `${options.tls ? 'wss' : 'ws'}://${formatHost(host)}:${port}`,
    host,
    port,
    metrics,
    get active() {
      return active;
    },
    close: async () => {
      reverse.closeAll();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // RFC 6455 §7.4.1: 1001, going away; peers that do not answer within a second are cut.
      const clients = [...wss.clients];
      await Promise.race([
        Promise.all(
          clients.map(
            (c) =>
              new Promise<void>((resolve) => {
                if (c.readyState === c.CLOSED) return resolve();
                c.once('close', () => resolve());
                c.close(1001, 'bridge shutting down');
              }),
          ),
        ),
        new Promise((r) => setTimeout(r, 1000).unref()),
      ]);
      for (const c of wss.clients) c.terminate();
      wss.close();
      server.closeAllConnections();
      await closed;
    },
  };
}
