/**
 * {@link MessageChannel} over a `ws` client (the tunnel's side: `connect()` gives a `ws` WebSocket, through every
 * proxy route). `ws` delivers whole messages; what the bridge sends is one message per TCP read, so that is small.
 */
import type WebSocket from 'ws';
import { WsviaError } from '../errors.js';
import type { ChannelEvents, MessageChannel } from './ws-channel.js';

/** Stop sending (ask the caller to wait) while more than this waits in `ws`'s buffer. */
const HIGH_WATER = 256 * 1024;

function toBuffer(data: WebSocket.RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

export class WsChannel implements MessageChannel {
  readonly finished: Promise<void>;
  readonly #ws: WebSocket;
  #blocked = false;
  #error: Error | undefined;

  constructor(ws: WebSocket) {
    this.#ws = ws;
    this.finished = new Promise((resolve) => {
      if (ws.readyState === ws.CLOSED) resolve();
      else ws.once('close', () => resolve());
    });
  }

  get protocol(): string {
    return this.#ws.protocol;
  }

  attach(events: ChannelEvents): void {
    const ws = this.#ws;
    ws.on('message', (data: WebSocket.RawData, isBinary: boolean) =>
      events.data(toBuffer(data), isBinary ? 'binary' : 'text', true),
    );
    ws.on('error', (e: Error) => (this.#error ??= e));
    ws.once('close', (code: number, reason: Buffer) => {
      // RFC 6455 §7.1.5: 1006 is what `ws` reports when no close frame arrived.
      if (code !== 1006) return events.close(code, reason.toString('utf8'));
      events.drop(
        new WsviaError('CONNECTION_RESET', 'the bridge connection dropped without a WebSocket close frame', {
          hop: 'websocket',
          ...(this.#error ? { cause: this.#error } : {}),
        }),
      );
    });
    this.#drain = () => {
      if (this.#blocked && ws.bufferedAmount <= HIGH_WATER / 2) {
        this.#blocked = false;
        events.drain();
      }
    };
    if (ws.readyState === ws.CLOSED)
      events.drop(new WsviaError('CONNECTION_RESET', 'the bridge connection closed', { hop: 'websocket' }));
  }

  #drain: () => void = () => {};

  sendBinary(bytes: Buffer): boolean {
    const ws = this.#ws;
    if (ws.readyState !== ws.OPEN) return true;
    // ws has no 'drain': the send callback fires as each frame reaches the kernel (backpressure, STYLE §14).
    ws.send(bytes, { binary: true }, () => this.#drain());
    if (ws.bufferedAmount > HIGH_WATER) this.#blocked = true;
    return !this.#blocked;
  }

  sendText(text: string): void {
    if (this.#ws.readyState === this.#ws.OPEN) this.#ws.send(text);
  }

  close(code: number, reason: string): void {
    const ws = this.#ws;
    if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close(code, reason);
  }

  terminate(): void {
    this.#ws.terminate();
  }

  pause(): void {
    this.#ws.pause();
  }

  resume(): void {
    this.#ws.resume();
  }
}
