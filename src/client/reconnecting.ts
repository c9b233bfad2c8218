/**
 * A WebSocket that comes back: on a drop it reconnects with backoff and jitter, and what the caller sends while
 * it is away is queued up to a bound and sent once it is back, or refused with QUEUE_FULL. Nothing is dropped
 * silently. Failures that a retry cannot fix (credentials refused, an untrusted certificate) end it.
 */
import { EventEmitter } from 'node:events';
import type WebSocket from 'ws';
import { WsviaError, isWsviaError, type ErrorCode } from '../errors.js';
import { backoffDelay, type BackoffOptions } from './backoff.js';
import { connect, type ConnectOptions } from './connect.js';
import { closeReason } from './keepalive.js';

export interface ReconnectOptions extends BackoffOptions {
  /** Give up after this many consecutive failed attempts (default: never). */
  readonly maxAttempts?: number;
  /** Bounds on what is queued while disconnected. */
  readonly maxQueuedMessages?: number;
  readonly maxQueuedBytes?: number;
}

type Data = string | Buffer;

/** Codes a new attempt may cure. Anything else is a configuration or trust problem: retrying only hammers. */
const RETRYABLE: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'DNS_FAILED',
  'CONNECTION_REFUSED',
  'CONNECTION_RESET',
  'PROXY_CONNECT_FAILED',
  'PROXY_UNAVAILABLE',
  'TCP_TIMEOUT',
  'TUNNEL_TIMEOUT',
  'TLS_TIMEOUT',
  'UPGRADE_TIMEOUT',
  'PING_TIMEOUT',
  'WEBSOCKET_CLOSED',
]);

/**
 * Whether a failure is worth another attempt: timeouts, network errors, closes, 5xx and 429 answers; never a
 * configuration, TLS trust or auth error.
 */
export function isRetryable(e: unknown): boolean {
  if (!isWsviaError(e)) return false;
  if (e.code === 'UPGRADE_REJECTED') return (e.answer?.status ?? 0) >= 500 || e.answer?.status === 429;
  if (e.code === 'PROXY_REFUSED') return e.answer?.status === 429;
  return RETRYABLE.has(e.code);
}

export interface ReconnectingEvents {
  open: [ws: WebSocket, attempt: number];
  message: [data: Buffer, isBinary: boolean];
  /** `reconnecting` says whether another attempt follows. */
  close: [code: number, reason: string, reconnecting: boolean];
  reconnecting: [attempt: number, delayMs: number, cause: WsviaError];
  /** Terminal: no more attempts. */
  error: [err: WsviaError];
}

/**
 * A WebSocket that reconnects with backoff after retryable failures (see {@link isRetryable}) and queues sends,
 * within bounds, while it is down. Call {@link ReconnectingWebSocket.start}; listen to `open`, `message`, `close`,
 * `reconnecting` and `error` (terminal).
 */
export class ReconnectingWebSocket extends EventEmitter<ReconnectingEvents> {
  readonly #url: string | URL;
  readonly #options: ConnectOptions;
  readonly #reconnect: ReconnectOptions;
  #ws: WebSocket | undefined;
  #queue: { data: Data; binary: boolean }[] = [];
  #queuedBytes = 0;
  #failures = 0;
  #stopped = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(url: string | URL, options: ConnectOptions & { reconnect?: ReconnectOptions } = {}) {
    super();
    this.#url = url;
    const { reconnect, ...rest } = options;
    this.#options = rest;
    this.#reconnect = reconnect ?? {};
  }

  get socket(): WebSocket | undefined {
    return this.#ws;
  }

  get queued(): number {
    return this.#queue.length;
  }

  /** Starts the first attempt; returns this, for chaining. */
  start(): this {
    this.#run();
    return this;
  }

  /** Sends now when open; otherwise queues within bounds, or throws QUEUE_FULL. */
  send(data: Data, options: { binary?: boolean } = {}): void {
    const binary = options.binary ?? typeof data !== 'string';
    if (this.#stopped) {
      throw new WsviaError(
        'WEBSOCKET_CLOSED',
        'cannot send: the connection was closed and will not come back',
        { hop: 'websocket' },
      );
    }
    const ws = this.#ws;
    if (ws && ws.readyState === ws.OPEN && this.#queue.length === 0) {
      ws.send(data, { binary });
      return;
    }
    const size = typeof data === 'string' ? Buffer.byteLength(data) : data.length;
    const maxMessages = this.#reconnect.maxQueuedMessages ?? 1000;
    const maxBytes = this.#reconnect.maxQueuedBytes ?? 1024 * 1024;
    if (this.#queue.length + 1 > maxMessages || this.#queuedBytes + size > maxBytes) {
      throw new WsviaError(
        'QUEUE_FULL',
        `cannot queue the message while reconnecting: ${this.#queue.length} messages (${this.#queuedBytes} bytes) already wait`,
        {
          hop: 'websocket',
          hint: `the queue holds at most ${maxMessages} messages and ${maxBytes} bytes; wait for 'open' or raise the bounds`,
        },
      );
    }
    this.#queue.push({ data, binary });
    this.#queuedBytes += size;
  }

  /** Closes and stops reconnecting. */
  close(code = 1000, reason = ''): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    const ws = this.#ws;
    if (ws && (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING)) ws.close(code, reason);
  }

  /** One attempt, whose every failure (a listener's throw included) goes the way of a failed connect. */
  #run(): void {
    this.#attempt().catch((e: unknown) => this.#failed(asReconnectError(e)));
  }

  async #attempt(): Promise<void> {
    if (this.#stopped) return;
    let ws: WebSocket;
    try {
      ws = await connect(this.#url, this.#options);
    } catch (e) {
      return this.#failed(asReconnectError(e));
    }
    if (this.#stopped) {
      ws.close(1000);
      return;
    }
    this.#ws = ws;
    const attempt = this.#failures;
    this.#failures = 0;
    ws.on('message', (data: Buffer, isBinary: boolean) => this.emit('message', data, isBinary));
    ws.on('error', () => {});
    ws.once('close', (code: number, reason: Buffer) => {
      this.#ws = undefined;
      const dead = closeReason(ws);
      const again = !this.#stopped;
      this.emit('close', code, reason.toString(), again);
      if (again) {
        this.#failed(
          dead ??
            new WsviaError(
              'WEBSOCKET_CLOSED',
              `the connection closed (code ${code}${reason.length ? `, ${reason.toString()}` : ''})`,
              {
                hop: 'websocket',
              },
            ),
          true,
        );
      }
    });
    this.emit('open', ws, attempt);
    this.#flush(ws);
  }

  #flush(ws: WebSocket): void {
    const queue = this.#queue;
    this.#queue = [];
    this.#queuedBytes = 0;
    for (const m of queue) ws.send(m.data, { binary: m.binary });
  }

  #failed(err: WsviaError, afterOpen = false): void {
    if (this.#stopped) return;
    const max = this.#reconnect.maxAttempts ?? Infinity;
    if (!isRetryable(err) && !afterOpen) {
      this.#stopped = true;
      this.emit('error', err);
      return;
    }
    if (this.#failures >= max) {
      this.#stopped = true;
      this.emit('error', err);
      return;
    }
    const delay = backoffDelay(this.#failures, this.#reconnect);
    this.#failures++;
    this.emit('reconnecting', this.#failures, delay, err);
    this.#timer = setTimeout(() => this.#run(), delay);
  }
}

function asReconnectError(e: unknown): WsviaError {
  return isWsviaError(e) ? e : new WsviaError('CONNECTION_RESET', String(e), { hop: 'tcp', cause: e });
}
