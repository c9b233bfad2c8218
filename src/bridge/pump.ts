/**
 * Carries bytes between one TCP socket (or any byte Duplex: stdin/stdout) and one WebSocket byte stream
 * (ws-stream.ts), both ways, with backpressure both ways (a slow reader on either side pauses the other side's
 * reads instead of growing a buffer). Used by the bridge (WebSocket -> target) and by the tunnel (local TCP ->
 * WebSocket) alike: the two ends differ only in which side dialled.
 *
 * Endings are carried as they happened (issue 12 §1): a clean end of one side's reads (FIN, the tunnel protocol's
 * `eof`, a normal close) becomes `end()` on the other; a side that closes any other way (reset, error, dropped,
 * destroyed) resets the other ({@link resetStream}: a TCP RST, or a WebSocket close with 1011), so that a truncated
 * stream never reaches an application as a complete one.
 */
import type { Duplex } from 'node:stream';
import { resetStream, StreamReset } from '../serve/reset.js';
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

type Side = 'socket' | 'websocket';

/** One session's two streams and its counts; resolves once both are closed. */
class Pump {
  readonly #ws: WebSocketByteStream;
  readonly #onData: PumpOptions['onData'];
  readonly #bytes = { socket: 0, websocket: 0 };
  #closedBy: ClosedBy | undefined;
  #reset = false;
  #open = 2;
  readonly #resolve: (r: PumpResult) => void;

  constructor(
    socket: Duplex,
    ws: WebSocketByteStream,
    options: PumpOptions,
    resolve: (r: PumpResult) => void,
  ) {
    this.#ws = ws;
    this.#onData = options.onData;
    this.#resolve = resolve;
    this.#wire(socket, ws, 'socket');
    this.#wire(ws, socket, 'websocket');
  }

  #wire(from: Duplex, to: Duplex, side: Side): void {
    from.on('data', (chunk: Buffer) => {
      this.#bytes[side] += chunk.length;
      this.#onData?.(side, chunk);
      if (to.destroyed || to.writableEnded) return;
      if (!to.write(chunk)) from.pause();
    });
    to.on('drain', () => from.resume());
    from.on('end', () => {
      // A half-close under wsvia.tunnel.v1 is not the end of the session: the answer may follow.
      if (from !== this.#ws || !this.#ws.halfClose) this.#closedBy ??= side;
      if (!to.destroyed && !to.writableEnded) to.end();
    });
    from.on('error', () => (this.#closedBy ??= 'error'));
    from.once('close', () => this.#closed(from, to, side));
    if (from.closed) queueMicrotask(() => this.#closed(from, to, side));
  }

  #closed(from: Duplex, to: Duplex, side: Side): void {
    if (from.readableEnded && !from.errored) {
      this.#closedBy ??= side;
      this.#flushThenClose(to);
    } else {
      // Closed without a clean end of its reads: pass the loss on (RST, or a WebSocket close that is not 1000).
      this.#closedBy = this.#closedBy === undefined || this.#closedBy === side ? 'error' : this.#closedBy;
      this.#reset = true;
      resetStream(to, from.errored ?? new StreamReset(side));
    }
    if (--this.#open === 0)
      this.#resolve({
        bytesFromSocket: this.#bytes.socket,
        bytesFromWebSocket: this.#bytes.websocket,
        closedBy: this.#closedBy ?? 'bridge',
        wsCloseCode: this.#ws.closeCode,
        reset: this.#reset,
      });
  }

  /** `to` was given `end()` already: let its writes finish, then close it; reset it if they never do. */
  #flushThenClose(to: Duplex): void {
    if (to.destroyed) return;
    if (!to.writableEnded) to.end();
    if (to.writableFinished) return void to.destroy();
    const timer = setTimeout(() => resetStream(to), FLUSH_TIMEOUT);
    to.once('finish', () => to.destroy());
    to.once('close', () => clearTimeout(timer));
  }
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
  return new Promise<PumpResult>((resolve) => new Pump(socket, ws, options, resolve));
}
