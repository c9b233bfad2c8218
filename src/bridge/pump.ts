/**
 * The bridge's and the tunnel's view of the shared relay (serve/relay.ts): one TCP socket (or any byte Duplex:
 * stdin/stdout) and one WebSocket byte stream (ws-stream.ts), relayed by a {@link TunnelSet} in its byte-stream
 * mode, and the result their log lines and traces report. Used by the bridge (WebSocket -> target) and by the
 * tunnel (local TCP -> WebSocket) alike: the two ends differ only in which side dialled.
 *
 * Endings are carried as they happened (issue 12 §1): a clean end of one side's reads (FIN, the tunnel protocol's
 * `eof`, a normal close) becomes `end()` on the other, which then has FLUSH_TIMEOUT to flush; a side that closes
 * any other way (reset, error, dropped, destroyed) resets the other (a TCP RST, or a WebSocket close with 1011), so
 * that a truncated stream never reaches an application as a complete one.
 */
import type { Duplex } from 'node:stream';
import { TunnelSet, type CloseReason, type Tunnel } from '../serve/relay.js';
import type { WebSocketByteStream } from './ws-stream.js';

export const CLOSED_BY = ['socket', 'websocket', 'error', 'bridge'] as const;
/** Which side ended the session first: the TCP peer, the WebSocket peer, a failure, or the bridge itself. */
export type ClosedBy = (typeof CLOSED_BY)[number];

export interface PumpOptions {
  /** Sees every chunk, for recordings. */
  readonly onData?: (from: 'socket' | 'websocket', bytes: Buffer) => void;
}

export interface PumpResult {
  readonly bytesFromSocket: number;
  readonly bytesFromWebSocket: number;
  readonly closedBy: ClosedBy;
  /** The relay's own account of the ending; its client side is the socket, its upstream side the WebSocket. */
  readonly reason: CloseReason;
  /** The close code the WebSocket peer sent (1006: none). */
  readonly wsCloseCode: number;
  /** Some side ended abnormally and the other was reset: the session did not carry every byte. */
  readonly reset: boolean;
}

/**
 * When one side has closed cleanly, how long the other has to flush what it was given before it is reset (a
 * reader that never reads must not hold the session, and its slot, for ever).
 */
export const FLUSH_TIMEOUT = 30_000;

/** One session: the relay's client is the socket, its upstream the WebSocket stream. */
interface Session {
  readonly ws: WebSocketByteStream;
  readonly resolve: (r: PumpResult) => void;
}

function closedBy(t: Tunnel<Session>): ClosedBy {
  switch (t.reason) {
    case 'client_closed':
      return 'socket';
    case 'upstream_closed':
      return 'websocket';
    case 'client_reset':
    case 'upstream_reset':
      return 'error';
    default:
      return 'bridge';
  }
}

function finished(t: Tunnel<Session>): void {
  t.info.resolve({
    bytesFromSocket: t.bytesUp,
    bytesFromWebSocket: t.bytesDown,
    closedBy: closedBy(t),
    reason: t.reason ?? 'server_closed',
    wsCloseCode: t.info.ws.closeCode,
    reset: t.reset,
  });
}

/** Every bridged and tunnelled session of this process: no idle or lifetime limit, no sweep. */
const sessions = new TunnelSet<Session>({
  idleTimeout: 0,
  maxLifetime: 0,
  byteStream: { flushTimeout: FLUSH_TIMEOUT },
  onFinish: finished,
});

function tap(onData: NonNullable<PumpOptions['onData']>) {
  return (fromSocket: boolean, chunk: Buffer): void => onData(fromSocket ? 'socket' : 'websocket', chunk);
}

/**
 * Starts carrying bytes; resolves when both the socket and the WebSocket stream are closed (never rejects). The
 * socket must have been created with `allowHalfOpen: true` so that its peer's EOF does not end our writes too.
 */
export function pump(
  socket: Duplex,
  ws: WebSocketByteStream,
  options: PumpOptions = {},
): Promise<PumpResult> {
  return new Promise<PumpResult>((resolve) => {
    sessions.open(socket, ws, { ws, resolve }, true, {
      ...(options.onData ? { onData: tap(options.onData) } : {}),
      // A half-close under wsvia.tunnel.v1 is not the end of the session: the answer may follow.
      ...(ws.halfClose ? { halfCloseOnly: ws } : {}),
    });
  });
}
