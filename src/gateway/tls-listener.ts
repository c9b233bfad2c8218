/**
 * The TLS listener. Each connection's ClientHello is read first (never decrypted): a server name that matches an
 * SNI passthrough route goes, bytes untouched, to its backend, which completes the handshake with its own
 * certificate; any other connection is terminated here with the gateway's certificate, ALPN choosing HTTP/2 (for
 * RFC 8441 WebSockets) or HTTP/1.1. Without a certificate the listener is passthrough only.
 */
import net from 'node:net';
import tls from 'node:tls';
import { ClientHelloReader, serverNameMatches } from '../protocol/tls-client-hello.js';
import { ANY_DESTINATION } from '../route/destination.js';
import { AdmissionRefusal } from '../serve/admission.js';
import { ConnectDeadline, guardedConnect } from '../serve/guarded-connect.js';
import type { SniRoute } from './config.js';
import type { Runtime } from './runtime.js';

export interface TlsHandlers {
  /**
   * Terminates TLS on a raw socket whose ClientHello was put back (unshifted): a `tls.Server` that never listens
   * and is fed connections, so its sockets are fully set up server-side (ALPN, handshake timeout) for HTTP/2.
   */
  readonly terminator: tls.Server;
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
      socket.destroy();
      return;
    }
    // Passthrough and terminated connections alike count against the limits.
    const slot = rt.admit(remoteAddress);
    if (slot instanceof AdmissionRefusal) {
      // Over a limit before any HTTP is spoken: there is no way to answer 503 or 429 inside TLS not yet set up.
      rt.metrics.refused.inc({ reason: slot.reason });
      socket.destroy();
      return;
    }
    socket.once('close', () => slot.close());
    if (route) {
      passthrough(socket, route, replay, rt);
      return;
    }
    // Node's TLSSocket reads what is already buffered on the wrapped socket before its handle.
    socket.unshift(replay);
    handlers.terminator.emit('connection', socket);
  };
  socket.on('data', onData);
}

/**
 * The backend is the operator's own (any address allowed), but it is reached the way every server connects:
 * serve/guarded-connect.ts, one lookup and one deadline (the connect timeout) for the whole of it.
 */
function passthrough(client: net.Socket, route: SniRoute, replay: Buffer, rt: Runtime): void {
  const started = Date.now();
  const deadline = new ConnectDeadline(rt.snapshot().config.limits.connectTimeout);
  guardedConnect(
    { host: route.host, port: route.port },
    { rules: ANY_DESTINATION, signal: deadline.signal },
  ).then(
    ({ socket }) => {
      deadline.clear();
      if (client.destroyed) socket.destroy();
      else relayPassthrough(client, socket, { route, replay, rt, started });
    },
    () => {
      deadline.clear();
      client.destroy();
    },
  );
}

function relayPassthrough(
  client: net.Socket,
  backend: net.Socket,
  { route, replay, rt, started }: { route: SniRoute; replay: Buffer; rt: Runtime; started: number },
): void {
  let bytesToUpstream = replay.length;
  let bytesToClient = 0;
  rt.metrics.sni.inc({ name: route.name });
  backend.write(replay);
  client.on('data', (c: Buffer) => {
    bytesToUpstream += c.length;
    if (!backend.write(c)) client.pause();
  });
  backend.on('data', (c: Buffer) => {
    bytesToClient += c.length;
    if (!client.write(c)) backend.pause();
  });
  backend.on('drain', () => client.resume());
  client.on('drain', () => backend.resume());
  client.on('end', () => backend.end());
  backend.on('end', () => client.end());
  client.resume();
  backend.resume();
  backend.on('error', () => {
    backend.destroy();
    client.destroy();
  });
  client.on('close', () => backend.destroy());
  backend.on('close', () => {
    client.destroy();
    rt.log.write({
      kind: 'sni',
      client: client.remoteAddress ?? '',
      route: route.name,
      upstream: `${route.host}:${route.port}`,
      bytesToUpstream,
      bytesToClient,
      durationMs: Date.now() - started,
    });
  });
}
