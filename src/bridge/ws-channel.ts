/**
 * The frame-level end of one WebSocket, as {@link WebSocketByteStream} (ws-stream.ts) drives it: send a binary or
 * text message, close with a code, pause and resume reads, and hear of data, the peer's close frame, a drop (no
 * close frame) and drain. Two implementations: {@link SocketChannel} here, the bridge's side, which speaks the
 * protocol itself over the upgraded socket with the streaming decoder (protocol/ws-frame-decoder.ts), so no
 * message is ever held whole; and `WsChannel` (ws-client-channel.ts), the tunnel's side, over a `ws` client.
 */
import type { Duplex } from 'node:stream';
import { WsviaError } from '../errors.js';
import {
  encodeFrameHeader,
  FrameDecoder,
  FrameError,
  type MessageKind,
} from '../protocol/ws-frame-decoder.js';
import { closePayload, encodeControlFrame, OPCODES } from '../protocol/ws-frame-scanner.js';

export interface ChannelEvents {
  /** A piece of a message; `last` ends the message. */
  data(payload: Buffer, kind: MessageKind, last: boolean): void;
  /** The peer's close frame arrived (1005: it had no code). */
  close(code: number, reason: string): void;
  /** The connection ended without a close frame from the peer: reset, dropped, broken frames, missed pongs. */
  drop(error: Error): void;
  /** A send that returned false has gone out: send more. */
  drain(): void;
}

export interface MessageChannel {
  /** The negotiated subprotocol ('' for none). */
  readonly protocol: string;
  /** Called once, before any event. */
  attach(events: ChannelEvents): void;
  /** Sends one binary message; false asks the caller to wait for `drain`. Dropped once closing. */
  sendBinary(bytes: Buffer): boolean;
  sendText(text: string): void;
  /** Starts the closing handshake (once; later calls do nothing). */
  close(code: number, reason: string): void;
  /** Ends the connection at once, without a handshake. */
  terminate(): void;
  pause(): void;
  resume(): void;
  /** Resolves when the underlying connection is closed. */
  readonly finished: Promise<void>;
}

/** How long a peer has to answer our close frame before the connection is cut (ws waits 30 s). */
const CLOSE_TIMEOUT = 5_000;
/** Pongs are not queued behind more than this: a peer that pings and never reads gets no more answers. */
const MAX_PONG_BACKLOG = 1024 * 1024;

function dropError(summary: string, cause?: unknown): WsviaError {
  return new WsviaError('CONNECTION_RESET', summary, {
    hop: 'websocket',
    ...(cause === undefined ? {} : { cause }),
  });
}

export interface SocketChannelOptions {
  readonly protocol: string;
  /** Names the peer in errors. */
  readonly peer: string;
  /** Ping this often (ms); a ping still unanswered at the next one drops the connection. */
  readonly ping?: number;
  /** Bytes that arrived with the upgrade request, after its head. */
  readonly head?: Buffer;
}

/** The server side of an upgraded socket: our own frames out, the streaming decoder in. */
export class SocketChannel implements MessageChannel {
  readonly protocol: string;
  readonly finished: Promise<void>;
  readonly #socket: Duplex;
  readonly #decoder: FrameDecoder;
  readonly #peer: string;
  #events: ChannelEvents | undefined;
  #head: Buffer | undefined;
  #closeSent = false;
  #closeReceived = false;
  #dropped = false;
  #blocked = false;
  #closeTimer: NodeJS.Timeout | undefined;
  #pingTimer: NodeJS.Timeout | undefined;
  #awaitingPong = false;
  #paused = false;
  #error: Error | undefined;

  constructor(socket: Duplex, options: SocketChannelOptions) {
    this.#socket = socket;
    this.protocol = options.protocol;
    this.#peer = options.peer;
    this.#head = options.head;
    this.#decoder = new FrameDecoder({ role: 'server', peer: options.peer });
    this.finished = new Promise((resolve) => socket.once('close', () => resolve()));
    if (options.ping !== undefined) this.#pingTimer = setInterval(() => this.#tick(), options.ping);
  }

  attach(events: ChannelEvents): void {
    this.#events = events;
    const s = this.#socket;
    s.on('data', (chunk: Buffer) => this.#receive(chunk));
    s.on('drain', () => {
      if (!this.#blocked) return;
      this.#blocked = false;
      events.drain();
    });
    s.on('end', () => {
      this.#drop(dropError(`${this.#peer} ended the connection without a WebSocket close frame`));
      s.end();
    });
    s.on('error', (e: Error) => (this.#error ??= e));
    s.once('close', () => {
      clearTimeout(this.#closeTimer);
      clearInterval(this.#pingTimer);
      this.#drop(dropError(`${this.#peer}'s connection was reset`, this.#error));
    });
    const head = this.#head;
    this.#head = undefined;
    if (head && head.length > 0) this.#receive(head);
  }

  sendBinary(bytes: Buffer): boolean {
    if (this.#closeSent || this.#socket.destroyed) return true;
    this.#socket.cork();
    this.#socket.write(encodeFrameHeader(OPCODES.binary, bytes.length));
    const ok = this.#socket.write(bytes);
    this.#socket.uncork();
    if (!ok) this.#blocked = true;
    return ok;
  }

  sendText(text: string): void {
    if (this.#closeSent || this.#socket.destroyed) return;
    const bytes = Buffer.from(text, 'utf8');
    this.#socket.write(Buffer.concat([encodeFrameHeader(OPCODES.text, bytes.length), bytes]));
  }

  close(code: number, reason: string): void {
    if (this.#closeSent || this.#socket.destroyed) return;
    this.#closeSent = true;
    this.#socket.write(
      encodeControlFrame(OPCODES.close, code === 1005 ? Buffer.alloc(0) : closePayload(code, reason)),
    );
    // RFC 6455 §7.1.1: the server closes the TCP connection first, once both close frames have passed.
    if (this.#closeReceived) this.#socket.end();
    this.#closeTimer = setTimeout(() => this.#socket.destroy(), CLOSE_TIMEOUT);
  }

  terminate(): void {
    this.#socket.destroy();
  }

  pause(): void {
    this.#paused = true;
    this.#socket.pause();
  }

  resume(): void {
    this.#paused = false;
    this.#socket.resume();
  }

  #receive(chunk: Buffer): void {
    if (this.#decoder.closed || this.#dropped) return;
    let events;
    try {
      events = this.#decoder.receive(chunk);
    } catch (e) {
      const code = e instanceof FrameError ? e.closeCode : 1002;
      this.close(code, 'protocol error');
      this.#drop(e instanceof Error ? e : dropError(String(e)));
      return;
    }
    for (const ev of events) {
      if (this.#dropped) return;
      switch (ev.type) {
        case 'data':
          this.#events?.data(ev.payload, ev.kind, ev.last);
          break;
        case 'ping':
          if (!this.#closeSent && this.#socket.writableLength < MAX_PONG_BACKLOG)
            this.#socket.write(encodeControlFrame(OPCODES.pong, ev.payload));
          break;
        case 'pong':
          this.#awaitingPong = false;
          break;
        case 'close':
          this.#closeReceived = true;
          // §5.5.1: answer with a close frame (echoing the code) unless ours went first; then the TCP close.
          if (this.#closeSent) this.#socket.end();
          else this.close(ev.code, '');
          this.#events?.close(ev.code, ev.reason);
          break;
      }
    }
  }

  #tick(): void {
    // While our reader holds us paused the pong cannot be read: a slow target is not a dead client.
    if (this.#closeSent || this.#dropped || this.#paused) return;
    if (this.#awaitingPong) {
      this.#drop(
        new WsviaError('PING_TIMEOUT', `${this.#peer} did not answer a ping: the connection is dead`, {
          hop: 'websocket',
        }),
      );
      this.#socket.destroy();
      return;
    }
    this.#awaitingPong = true;
    this.#socket.write(encodeControlFrame(OPCODES.ping, Buffer.alloc(0)));
  }

  #drop(error: Error): void {
    if (this.#dropped || this.#closeReceived) return;
    this.#dropped = true;
    clearInterval(this.#pingTimer);
    this.#events?.drop(error);
  }
}
