/**
 * The TLS listener. Each connection's ClientHello is read first (never decrypted): a server name that matches an
 * SNI passthrough route goes, bytes untouched, to its backend, which completes the handshake with its own
 * certificate; any other connection is terminated here with the gateway's certificate, ALPN choosing HTTP/2 (for
 * RFC 8441 WebSockets) or HTTP/1.1. Without a certificate the listener is passthrough only.
 */
import net from 'node:net';
import tls from 'node:tls';
import { ClientHelloReader, serverNameMatches } from '../protocol/tls-client-hello.js';
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
    if (route) {
      handlers.passthrough.open(socket, route, replay);
      return;
    }
    if (!current.secureContext) {
      // Passthrough only, and no route for this name: an alert would need a TLS stack; a reset is what
      // nginx's ssl_preread with no matching map entry gives too.
      rt.metrics.refused.inc({ reason: 'no_route' });
      socket.destroy();
      return;
    }
    const verdict = rt.admit(remoteAddress);
    if (verdict !== 'ok') {
      // Over a limit before any HTTP is spoken: there is no way to answer 503 or 429 inside TLS not yet set up.
      rt.metrics.refused.inc({ reason: verdict });
      socket.destroy();
      return;
    }
    socket.once('close', () => rt.release(remoteAddress));
    // Node's TLSSocket reads what is already buffered on the wrapped socket before its handle.
    socket.unshift(replay);
    handlers.terminator.emit('connection', socket);
  };
  socket.on('data', onData);
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

  /** Takes a client connection whose ClientHello (`replay`) named `route`. */
  open(client: net.Socket, route: SniRoute, replay: Buffer): void {
    const rt = this.#rt;
    const address = client.remoteAddress ?? '';
    const verdict = rt.admit(address);
    if (verdict !== 'ok') {
      // There is no way to answer 503 or 429 inside a TLS session the backend has not started.
      rt.metrics.refused.inc({ reason: verdict });
      resetStream(client, new StreamReset('gateway'));
      return;
    }
    // A client's FIN is passed on as a FIN (half-close): the backend may still answer after it.
    client.allowHalfOpen = true;
    const info = { client: address, route, started: Date.now(), replayed: replay.length };
    const backend = net.connect({ host: route.host, port: route.port, noDelay: true, allowHalfOpen: true });
    const timer = setTimeout(
      () => backend.destroy(new Error('connect timeout')),
      rt.snapshot().config.limits.connectTimeout,
    );
    let clientGone = false;
    const onClientGone = (): void => {
      clientGone = true;
      backend.destroy(new StreamReset('client'));
    };
    const onFailed = (): void => {
      clearTimeout(timer);
      client.removeListener('close', onClientGone);
      resetStream(client, new StreamReset('upstream'));
      rt.release(address);
      this.#log(info, 0, 0, clientGone ? 'client_closed' : 'upstream_unavailable');
    };
    client.once('close', onClientGone);
    backend.once('error', onFailed);
    backend.once('connect', () => {
      clearTimeout(timer);
      backend.removeListener('error', onFailed);
      client.removeListener('close', onClientGone);
      rt.metrics.sni.inc({ name: route.name });
      backend.write(replay);
      this.#tunnels.open(client, backend, info);
    });
  }

  #finished(t: Tunnel<PassthroughInfo>): void {
    this.#rt.release(t.info.client);
    this.#log(t.info, t.bytesUp + t.info.replayed, t.bytesDown, t.reason ?? 'server_closed');
  }

  #log(info: PassthroughInfo, bytesToUpstream: number, bytesToClient: number, close: string): void {
    this.#rt.log.write({
      kind: 'sni',
      client: info.client,
      route: info.route.name,
      upstream: `${info.route.host}:${info.route.port}`,
      bytesToUpstream,
      bytesToClient,
      durationMs: Date.now() - info.started,
      close,
    });
  }
}
