/**
 * A WebSocket as a byte stream: a Duplex whose reads are the payload bytes of the peer's data messages and whose
 * writes become binary messages, so that the bridge and the tunnel relay two plain byte streams (pump.ts).
 *
 * Endings follow the TCP model, so that a truncated stream never looks complete (issue 12 §1, STYLE trap 18):
 * - Under `wsvia.tunnel.v1` a half-close is the `eof` control message (tunnel-control.ts): our `end()` sends it,
 *   the peer's ends our readable side. The WebSocket closes with 1000 once both directions have ended. Any other
 *   close code from the peer is a reset: the stream is destroyed with an error.
 * - Under `binary` or no subprotocol (websockify) there is no half-close: our `end()` closes the WebSocket with
 *   1000 (at once, or after `linger` ms without data from the peer), and the peer's close with 1000, 1001 or 1005
 *   ends our readable side; any other code is a reset.
 * - A connection that ends without a close frame, a broken frame, a missed pong: a reset.
 * - `destroy(error)` (the other side was reset) closes with 1011, never 1000; `destroy()` without an error after
 *   both directions ended closes with 1000.
 */
import { Duplex } from 'node:stream';
import { WsviaError } from '../errors.js';
import type { MessageKind } from '../protocol/ws-frame-decoder.js';
import {
  formatControlMessage,
  HalfClose,
  MAX_CONTROL_BYTES,
  parseControlMessage,
  TUNNEL_SUBPROTOCOL,
} from '../protocol/tunnel-control.js';
import type { MessageChannel } from './ws-channel.js';

export interface ByteStreamOptions {
  /**
   * Without half-close, what `end()` does: `undefined` closes the WebSocket at once (what websockify does when its
   * target closes); a number closes it once the peer has been silent that many ms, so an answer to a request that
   * ended with EOF still arrives.
   */
  readonly linger?: number;
  /** Notes for the trace (e.g. that a half-close could not be carried). */
  readonly onNote?: (text: string) => void;
}

/** The close code sent when the stream is destroyed with an error: the session did not end normally. */
export const ABNORMAL_CLOSE = 1011;

export class WebSocketByteStream extends Duplex {
  /** Half-closes travel as `wsvia.tunnel.v1` control messages. */
  readonly halfClose: boolean;
  readonly #channel: MessageChannel;
  readonly #options: ByteStreamOptions;
  readonly #ends = new HalfClose();
  #text: Buffer[] = [];
  #textBytes = 0;
  #pendingWrite: ((error?: Error | null) => void) | undefined;
  #linger: NodeJS.Timeout | undefined;
  /** The peer's close code; 1006 while none arrived (§7.1.5). */
  #closeCode = 1006;

  constructor(channel: MessageChannel, options: ByteStreamOptions = {}) {
    super({ allowHalfOpen: true, readableHighWaterMark: 64 * 1024, writableHighWaterMark: 64 * 1024 });
    this.#channel = channel;
    this.#options = options;
    this.halfClose = channel.protocol === TUNNEL_SUBPROTOCOL;
    channel.attach({
      data: (payload, kind, last) => this.#onData(payload, kind, last),
      close: (code, reason) => this.#onClose(code, reason),
      drop: (error) => this.destroy(error),
      drain: () => {
        const cb = this.#pendingWrite;
        this.#pendingWrite = undefined;
        cb?.();
      },
    });
  }

  /** The negotiated subprotocol ('' for none). */
  get protocol(): string {
    return this.#channel.protocol;
  }

  /** The close code the peer sent; 1006 when none arrived. */
  get closeCode(): number {
    return this.#closeCode;
  }

  /** Closes with `code` (1001 when a server stops) and resolves once the connection is closed. */
  goAway(code: number, reason: string): Promise<void> {
    this.#channel.close(code, reason);
    this.destroy(new WsviaError('WEBSOCKET_CLOSED', `closed with ${code} (${reason})`, { hop: 'websocket' }));
    return this.#channel.finished;
  }

  /** Ends the connection at once. */
  terminate(): void {
    this.#channel.terminate();
    this.destroy(new WsviaError('WEBSOCKET_CLOSED', 'terminated', { hop: 'websocket' }));
  }

  override _read(): void {
    this.#channel.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, cb: (error?: Error | null) => void): void {
    if (this.#channel.sendBinary(chunk)) cb();
    else this.#pendingWrite = cb;
  }

  override _final(cb: (error?: Error | null) => void): void {
    if (this.halfClose) {
      // RFC 9293 §3.6: our side's EOF ends one direction; the other may still carry the answer.
      if (this.#ends.localEnded()) this.#channel.sendText(formatControlMessage({ type: 'eof' }));
    } else if (this.#options.linger === undefined) {
      this.#channel.close(1000, '');
    } else {
      this.#ends.localEnded();
      this.#options.onNote?.(
        `the TCP side sent EOF; the WebSocket peer speaks plain binary frames, which cannot carry a half-close: closing after ${this.#options.linger} ms without data`,
      );
      this.#armLinger();
    }
    cb();
  }

  override _destroy(error: Error | null, cb: (error?: Error | null) => void): void {
    clearTimeout(this.#linger);
    if (error) this.#channel.close(ABNORMAL_CLOSE, abnormalReason(error));
    else this.#channel.close(1000, '');
    const pending = this.#pendingWrite;
    this.#pendingWrite = undefined;
    pending?.(error);
    cb(error);
  }

  #onData(payload: Buffer, kind: MessageKind, last: boolean): void {
    if (this.destroyed) return;
    if (this.halfClose && kind === 'text') return this.#onControl(payload, last);
    if (this.halfClose && !this.#ends.remoteOpen) return this.#fail('data after eof');
    if (payload.length === 0) return;
    if (this.#linger !== undefined) this.#armLinger();
    if (!this.push(payload)) this.#channel.pause();
  }

  /** Under `wsvia.tunnel.v1` a text message is a control message, gathered whole (it is small). */
  #onControl(payload: Buffer, last: boolean): void {
    this.#textBytes += payload.length;
    if (this.#textBytes > MAX_CONTROL_BYTES) return this.#fail('control message too long');
    this.#text.push(payload);
    if (!last) return;
    const bytes = Buffer.concat(this.#text);
    this.#text = [];
    this.#textBytes = 0;
    let m;
    try {
      m = parseControlMessage(bytes);
    } catch {
      return this.#fail('bad control message');
    }
    if (m.type === 'eof' && this.#ends.remoteEnded()) this.push(null);
  }

  #onClose(code: number, reason: string): void {
    this.#closeCode = code;
    if (this.destroyed) return;
    const clean = code === 1000 || (!this.halfClose && (code === 1001 || code === 1005));
    if (!clean) {
      this.destroy(
        new WsviaError(
          'WEBSOCKET_CLOSED',
          `the WebSocket peer closed with code ${code}${reason ? ` (${reason.slice(0, 100)})` : ''}`,
          { hop: 'websocket' },
        ),
      );
      return;
    }
    // A normal end: what was read is delivered, then the stream closes (nothing more can be sent). A reader that
    // never takes the rest does not hold the session for ever: after DELIVERY_TIMEOUT it is a reset.
    if (!this.readableEnded) this.push(null);
    if (this.readableEnded) return void this.destroy();
    const timer = setTimeout(() => this.destroy(undelivered()), DELIVERY_TIMEOUT);
    this.once('end', () => this.destroy());
    this.once('close', () => clearTimeout(timer));
  }

  #armLinger(): void {
    clearTimeout(this.#linger);
    this.#linger = setTimeout(() => this.#channel.close(1000, ''), this.#options.linger);
  }

  #fail(why: string): void {
    this.#channel.close(1002, why);
    this.destroy(
      new WsviaError('PROTOCOL_ERROR', `the WebSocket peer broke ${TUNNEL_SUBPROTOCOL}: ${why}`, {
        hop: 'websocket',
      }),
    );
  }
}

/** How long the last bytes of a normally closed WebSocket may wait for a reader before the session is reset. */
export const DELIVERY_TIMEOUT = 30_000;

function undelivered(): WsviaError {
  return new WsviaError(
    'TCP_TIMEOUT',
    `the last bytes from the WebSocket peer were not taken within ${DELIVERY_TIMEOUT} ms of its close`,
    { hop: 'tcp' },
  );
}

/** A close reason for the peer: what kind of failure, never its details (STYLE §8). */
function abnormalReason(error: Error): string {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'ECONNRESET' || error.name === 'StreamReset' ? 'connection reset' : 'connection failed';
}
