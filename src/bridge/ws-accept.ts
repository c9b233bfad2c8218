/**
 * Completes a data session's upgrade and returns the WebSocket as a byte stream (ws-stream.ts) that the bridge
 * drives with the streaming decoder itself: `ws` would hold each message whole (up to its `maxPayload`) before
 * any backpressure applied, and a bridge is a byte pipe (issue 11). The request's shape, Origin and credentials
 * were checked before (admission.ts).
 */
import type http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { formatHost } from '../protocol/authority.js';
import { BINARY_SUBPROTOCOL, TUNNEL_SUBPROTOCOL } from '../protocol/tunnel-control.js';
import { switchingProtocols } from '../protocol/ws-handshake.js';
import { offeredProtocols } from './admission.js';
import { SocketChannel } from './ws-channel.js';
import { WebSocketByteStream } from './ws-stream.js';

/** The subprotocol a data session gets: half-close when offered, else websockify's `binary`, else none. */
export function dataProtocol(req: http.IncomingMessage): string {
  const offered = offeredProtocols(req);
  for (const p of [TUNNEL_SUBPROTOCOL, BINARY_SUBPROTOCOL]) if (offered.includes(p)) return p;
  return '';
}

/**
 * Answers 101 and wraps the socket; `head` is what arrived after the request head. Returns undefined (and lets
 * the socket go) when the client has already gone.
 */
export function acceptByteStream(
  req: http.IncomingMessage,
  socket: Duplex,
  head: Buffer,
  options: { readonly ping?: number } = {},
): WebSocketByteStream | undefined {
  if (socket.destroyed || !socket.readable || !socket.writable) {
    socket.destroy();
    return undefined;
  }
  const protocol = dataProtocol(req);
  if (socket instanceof net.Socket) {
    socket.setTimeout(0);
    socket.setNoDelay(true);
  }
  socket.write(switchingProtocols(String(req.headers['sec-websocket-key']), protocol));
  const s = req.socket;
  const channel = new SocketChannel(socket, {
    protocol,
    peer: `the WebSocket client ${formatHost(s.remoteAddress ?? '?')}:${s.remotePort ?? 0}`,
    head,
    ...(options.ping === undefined ? {} : { ping: options.ping }),
  });
  return new WebSocketByteStream(channel);
}
