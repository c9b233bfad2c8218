/**
 * The TLS listener. Each connection's ClientHello is read first (never decrypted): a server name that matches an
 * SNI passthrough route goes, bytes untouched, to its backend, which completes the handshake with its own
 * certificate; any other connection is terminated here with the gateway's certificate, ALPN choosing HTTP/2 or
 * HTTP/1.1. Without a certificate the listener is passthrough only. Behind a load balancer (`proxyProtocol`), a
 * PROXY protocol header comes first, before the ClientHello, and names the client for limits, headers and logs.
 */
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { ProxyProtocolReader } from '../protocol/proxy-protocol.js';
import { clientName, refusedEntry, type CloseCause } from '../observe/access-log.js';
import { ClientHelloReader, serverNameMatches } from '../protocol/tls-client-hello.js';
import { ANY_DESTINATION } from '../route/destination.js';
import { AdmissionRefusal, releaseOnClose } from '../serve/admission.js';
import { ConnectDeadline, guardedConnect, guardedDial } from '../serve/guarded-connect.js';
import { TunnelSet, type CloseReason, type RelayLimits, type Tunnel } from '../serve/relay.js';
import { resetStream, StreamReset } from '../serve/reset.js';
import { nativeDialer, spliceable, type NativeDialer, type RelayChoice } from '../serve/splice-relay.js';
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
  /** The client addresses PROXY protocol headers announced, for the terminated connections' handlers. */
  readonly peers: PeerAddresses;
}

/** What identifies a TCP connection on one listener: its peer's address and port. */
export interface PeerEnds {
  readonly remoteAddress?: string | undefined;
  readonly remotePort?: number | undefined;
}

/**
 * The client address of each open TLS connection whose PROXY protocol header named one. The terminator hands
 * over a new TLSSocket that shares the raw socket's TCP connection, and so its peer address and port: that pair
 * finds the announced address again, with public APIs only. An entry lives as long as the raw socket.
 */
export class PeerAddresses {
  readonly #byPeer = new Map<string, string>();

  remember(socket: net.Socket, address: string): void {
    const key = peerKey(socket);
    this.#byPeer.set(key, address);
    socket.once('close', () => this.#byPeer.delete(key));
  }

  /** The announced client address, or the socket's own peer address. */
  of(socket: PeerEnds): string {
    return this.#byPeer.get(peerKey(socket)) ?? socket.remoteAddress ?? '';
  }
}

function peerKey(s: PeerEnds): string {
  return `${s.remoteAddress ?? ''}|${s.remotePort ?? ''}`;
}

export function findSniRoute(routes: readonly SniRoute[], name: string | undefined): SniRoute | undefined {
  if (name === undefined) return undefined;
  // Exact names before wildcards, as nginx's server_name does.
  return routes.find((r) => r.name === name) ?? routes.find((r) => serverNameMatches(r.name, name));
}

export function handleTlsConnection(socket: net.Socket, rt: Runtime, handlers: TlsHandlers): void {
  new TlsConnectionStart(socket, rt, handlers);
}

/**
 * The start of one TLS listener connection, before any TLS: the PROXY protocol header when the listener expects
 * one (a load balancer writes it before the client's ClientHello), then the ClientHello, read but not decrypted,
 * which decides between passthrough and termination. Both within the handshake timeout.
 */
class TlsConnectionStart {
  readonly #socket: net.Socket;
  readonly #rt: Runtime;
  readonly #handlers: TlsHandlers;
  readonly #timer: NodeJS.Timeout;
  #proxy: ProxyProtocolReader | undefined;
  readonly #hello = new ClientHelloReader();
  #address: string;
  #port: number | undefined;
  readonly #onData = (chunk: Buffer): void => this.#receive(chunk);

  constructor(socket: net.Socket, rt: Runtime, handlers: TlsHandlers) {
    this.#socket = socket;
    this.#rt = rt;
    this.#handlers = handlers;
    this.#address = socket.remoteAddress ?? '';
    this.#port = socket.remotePort;
    const snap = rt.snapshot();
    this.#proxy = snap.config.proxyProtocol ? new ProxyProtocolReader() : undefined;
    this.#timer = setTimeout(() => socket.destroy(), snap.config.limits.handshakeTimeout);
    socket.on('error', destroyOnError);
    socket.on('data', this.#onData);
  }

  #refuse(): void {
    clearTimeout(this.#timer);
    this.#rt.metrics.refused.inc({ reason: 'bad_request' });
    logTlsRefusal(this.#rt, clientName(this.#address, this.#port), undefined, 'bad_request');
    this.#socket.destroy();
  }

  #receive(chunk: Buffer): void {
    let data: Uint8Array = chunk;
    if (this.#proxy) {
      let p;
      try {
        p = this.#proxy.receive(chunk);
      } catch {
        // No header, or a broken one: not a connection from the balancer this listener was told to expect.
        return this.#refuse();
      }
      if (!p) return;
      this.#proxy = undefined;
      if (p.header.command === 'proxy' && p.header.source) {
        this.#address = p.header.source.address;
        this.#port = p.header.source.port;
        this.#handlers.peers.remember(this.#socket, this.#address);
      }
      data = p.leftover;
      if (data.length === 0) return;
    }
    let r;
    try {
      r = this.#hello.receive(data);
    } catch {
      return this.#refuse();
    }
    if (!r) return;
    clearTimeout(this.#timer);
    this.#socket.removeListener('data', this.#onData);
    this.#socket.pause();
    this.#dispatch(r.hello.serverName, Buffer.concat([r.records, r.leftover]));
  }

  #dispatch(serverName: string | undefined, replay: Buffer): void {
    const socket = this.#socket;
    const rt = this.#rt;
    const current = rt.snapshot();
    const route = findSniRoute(current.config.sni, serverName);
    if (!route && !current.secureContext) {
      // Passthrough only, and no route for this name: an alert would need a TLS stack; a reset is what
      // nginx's ssl_preread with no matching map entry gives too.
      rt.metrics.refused.inc({ reason: 'no_route' });
      logTlsRefusal(rt, clientName(this.#address, this.#port), serverName, 'no_route');
      socket.destroy();
      return;
    }
    // Passthrough and terminated connections alike count against the limits.
    const slot = rt.admit(this.#address);
    if (slot instanceof AdmissionRefusal) {
      // Over a limit before any HTTP is spoken: there is no way to answer 503 or 429 inside TLS not yet set up.
      rt.metrics.refused.inc({ reason: slot.reason });
      logTlsRefusal(rt, clientName(this.#address, this.#port), serverName, slot.reason);
      resetStream(socket, new StreamReset('gateway'));
      return;
    }
    releaseOnClose(socket, slot);
    if (route) {
      this.#handlers.passthrough.open(socket, route, replay, clientName(this.#address, this.#port));
      return;
    }
    // Node's TLSSocket reads what is already buffered on the wrapped socket before its handle.
    socket.unshift(replay);
    this.#handlers.terminator.emit('connection', socket);
  }
}

/** One handler for every raw TLS listener socket: no closure per connection. */
function destroyOnError(this: net.Socket): void {
  this.destroy();
}

/** A TLS connection refused before any HTTP: no status, the server name it asked for as the target. */
function logTlsRefusal(rt: Runtime, client: string, serverName: string | undefined, reason: string): void {
  rt.log.write(
    refusedEntry({
      client,
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
 * connection, and ends in exactly one access-log line whatever ended it. Under `auto` (the default) both plain TCP
 * sockets go to the native splice(2) relay where it loads: the backend is dialed natively and the ClientHello written
 * to it first (the gateway sends no PROXY protocol header of its own to a backend, so nothing else must precede the
 * client's bytes).
 */
export class SniPassthrough {
  readonly #rt: Runtime;
  readonly #tunnels: TunnelSet<PassthroughInfo>;
  readonly #dialer: NativeDialer | undefined;

  constructor(rt: Runtime, relay: RelayChoice = 'auto') {
    this.#rt = rt;
    this.#tunnels = new TunnelSet<PassthroughInfo>({
      ...relayLimits(rt.snapshot().config.limits),
      onFinish: (t) => this.#finished(t),
      relay,
    });
    this.#dialer = this.#tunnels.relay === 'splice' ? nativeDialer() : undefined;
  }

  /** The relay passthrough connections get: `splice` (native, zero-copy) or `js`. */
  get relay(): 'js' | 'splice' {
    return this.#tunnels.relay;
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
  open(client: net.Socket, route: SniRoute, replay: Buffer, name: string): void {
    const rt = this.#rt;
    // A client's FIN is passed on as a FIN (half-close): the backend may still answer after it.
    client.allowHalfOpen = true;
    const info = { client: name, route, started: Date.now(), replayed: replay.length };
    const deadline = new ConnectDeadline(rt.snapshot().config.limits.connectTimeout);
    const target = { host: route.host, port: route.port };
    const o = { rules: ANY_DESTINATION, signal: deadline.signal };
    // With the native relay the backend is dialed natively: no socket object for it, spliced from the first byte.
    const dialer = this.#dialer !== undefined && spliceable(client) ? this.#dialer : undefined;
    const connecting: Promise<net.Socket | number> = dialer
      ? guardedDial(target, o, dialer).then((c) => c.fd)
      : guardedConnect(target, o).then((c) => c.socket);
    connecting.then(
      (backend) => {
        deadline.clear();
        if (client.destroyed) {
          if (typeof backend === 'number') fs.closeSync(backend);
          else backend.destroy();
          this.#log(info, 0, 0, 'client_closed');
          return;
        }
        rt.metrics.sni.inc({ name: route.name });
        if (typeof backend === 'number') return void this.#tunnels.openDialed(client, backend, replay, info);
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
