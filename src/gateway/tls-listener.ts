/**
 * The TLS listener. Each connection's ClientHello is read first (never decrypted): a server name that matches an
 * SNI passthrough route goes, bytes untouched, to its backend, which completes the handshake with its own
 * certificate; any other connection is terminated here with the gateway's certificate, ALPN choosing HTTP/2 (for
 * RFC 8441 WebSockets) or HTTP/1.1. Without a certificate the listener is passthrough only.
 */
import net from 'node:net';
import tls from 'node:tls';
import { clientName, refusedEntry, type CloseCause } from '../observe/access-log.js';
import { ClientHelloReader, serverNameMatches } from '../protocol/tls-client-hello.js';
import { ANY_DESTINATION } from '../route/destination.js';
import { AdmissionRefusal } from '../serve/admission.js';
import { ConnectDeadline, guardedConnect } from '../serve/guarded-connect.js';
import { TunnelSet, type CloseReason, type RelayLimits, type Tunnel } from '../serve/relay.js';
import { resetStream, StreamReset } from '../serve/reset.js';
import type { Limits, SniRoute } from './config.js';
import type { Runtime } from './runtime.js';

export interface TlsHandlers {
  /**
   * Terminates TLS on a raw socket whose ClientHello was put back (unshifted): a `tls.Server` that never listens
   * and is fed connections, so its sockets are fully set up server-side (ALPN, handshake timeout) for HTTP/2.
   */
  readonly terminator: tls.Server;
  /** Where connections for an SNI passthrough route go. */
  readonly passthrough: SniPassthrough;
}

export function findSniRoute(routes: readonly SniRoute[], name: string | undefined): SniRoute | undefined {
  if (name === undefined) return undefined;
  // Exact names before wildcards, as nginx's server_name does.
  return routes.find((r) => r.name === name) ?? routes.find((r) => serverNameMatches(r.name, name));
}

export function handleTlsConnection(socket: net.Socket, rt: Runtime, handlers: TlsHandlers): void {
  const reader = new ClientHelloReader();
  const remoteAddress = socket.remoteAddress ?? '';
  const snap = rt.snapshot();
  const timer = setTimeout(() => socket.destroy(), snap.config.limits.handshakeTimeout);
  socket.on('error', () => socket.destroy());
  const onData = (chunk: Buffer): void => {
    let r;
    try {
      r = reader.receive(chunk);
    } catch {
      clearTimeout(timer);
      rt.metrics.refused.inc({ reason: 'bad_request' });
      socket.destroy();
      return;
    }
    if (!r) return;
    clearTimeout(timer);
    socket.removeListener('data', onData);
    socket.pause();
    const current = rt.snapshot();
    const route = findSniRoute(current.config.sni, r.hello.serverName);
    const replay = Buffer.concat([r.records, r.leftover]);
    if (!route && !current.secureContext) {
      // Passthrough only, and no route for this name: an alert would need a TLS stack; a reset is what
      // nginx's ssl_preread with no matching map entry gives too.
      rt.metrics.refused.inc({ reason: 'no_route' });
      logTlsRefusal(rt, socket, r.hello.serverName, 'no_route');
      socket.destroy();
      return;
    }
    // Passthrough and terminated connections alike count against the limits.
    const slot = rt.admit(remoteAddress);
    if (slot instanceof AdmissionRefusal) {
      // Over a limit before any HTTP is spoken: there is no way to answer 503 or 429 inside TLS not yet set up.
      rt.metrics.refused.inc({ reason: slot.reason });
      logTlsRefusal(rt, socket, r.hello.serverName, slot.reason);
      resetStream(socket, new StreamReset('gateway'));
      return;
    }
    socket.once('close', () => slot.close());
    if (route) {
      handlers.passthrough.open(socket, route, replay);
      return;
    }
    // Node's TLSSocket reads what is already buffered on the wrapped socket before its handle.
    socket.unshift(replay);
    handlers.terminator.emit('connection', socket);
  };
  socket.on('data', onData);
}

/** A TLS connection refused before any HTTP: no status, the server name it asked for as the target. */
function logTlsRefusal(
  rt: Runtime,
  socket: net.Socket,
  serverName: string | undefined,
  reason: string,
): void {
  rt.log.write(
    refusedEntry({
      client: clientName(socket.remoteAddress, socket.remotePort),
      method: null,
      target: serverName ?? null,
      status: null,
      error: reason,
      duration_ms: 0,
    }),
  );
}

/** What the access log says about a passthrough connection. */
interface PassthroughInfo {
  readonly client: string;
  readonly route: SniRoute;
  readonly started: number;
  /** The ClientHello (and anything after it) read before the relay began. */
  readonly replayed: number;
}

function relayLimits(l: Limits): RelayLimits {
  return { idleTimeout: l.idleTimeout, maxLifetime: l.maxLifetime };
}

/**
 * SNI passthrough: the client's bytes, ClientHello first, go untouched to the route's backend over the shared raw
 * relay (serve/relay.ts), so a passthrough connection gets what a proxy tunnel gets: half-close, a reset passed on
 * as a reset, the idle and lifetime sweep. It counts against `maxConnections` and `maxPerClient` like any client
 * connection, and ends in exactly one access-log line whatever ended it.
 */
export class SniPassthrough {
  readonly #rt: Runtime;
  readonly #tunnels: TunnelSet<PassthroughInfo>;

  constructor(rt: Runtime) {
    this.#rt = rt;
    this.#tunnels = new TunnelSet<PassthroughInfo>({
      ...relayLimits(rt.snapshot().config.limits),
      onFinish: (t) => this.#finished(t),
    });
  }

  /** The limits of a reloaded configuration, for open connections too. */
  reload(limits: Limits): void {
    this.#tunnels.limits = relayLimits(limits);
  }

  /** Cuts every passthrough connection (shutdown) and resolves once each one is logged. */
  abortAll(reason: CloseReason): Promise<void> {
    this.#tunnels.abortAll(reason);
    return this.#tunnels.whenEmpty();
  }

  /**
   * Takes a client connection whose ClientHello (`replay`) named `route`; the caller has admitted it (its slot is
   * given back when the client socket closes). The backend is the operator's own (any address allowed), but it is
   * reached the way every server connects: serve/guarded-connect.ts, one lookup and one deadline.
   */
  open(client: net.Socket, route: SniRoute, replay: Buffer): void {
    const rt = this.#rt;
    // A client's FIN is passed on as a FIN (half-close): the backend may still answer after it.
    client.allowHalfOpen = true;
    const info = {
      client: clientName(client.remoteAddress, client.remotePort),
      route,
      started: Date.now(),
      replayed: replay.length,
    };
    const deadline = new ConnectDeadline(rt.snapshot().config.limits.connectTimeout);
    guardedConnect(
      { host: route.host, port: route.port },
      { rules: ANY_DESTINATION, signal: deadline.signal },
    ).then(
      ({ socket: backend }) => {
        deadline.clear();
        if (client.destroyed) {
          backend.destroy();
          this.#log(info, 0, 0, 'client_closed');
          return;
        }
        rt.metrics.sni.inc({ name: route.name });
        backend.write(replay);
        this.#tunnels.open(client, backend, info);
      },
      () => {
        deadline.clear();
        const gone = client.destroyed;
        resetStream(client, new StreamReset('upstream'));
        if (gone) this.#log(info, 0, 0, 'client_closed');
        else this.#log(info, 0, 0, 'refused', 'upstream_unavailable');
      },
    );
  }

  #finished(t: Tunnel<PassthroughInfo>): void {
    this.#log(t.info, t.bytesUp + t.info.replayed, t.bytesDown, t.reason ?? 'server_closed');
  }

  #log(
    info: PassthroughInfo,
    up: number,
    down: number,
    close: CloseCause,
    error: string | null = null,
  ): void {
    // No HTTP request, no status: the bytes are TLS records the gateway never decrypts.
    this.#rt.log.write({
      client: info.client,
      user: null,
      method: null,
      target: `${info.route.host}:${info.route.port}`,
      status: null,
      bytes_up: up,
      bytes_down: down,
      duration_ms: Date.now() - info.started,
      close,
      close_code: null,
      error,
    });
  }
}
