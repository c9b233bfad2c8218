/**
 * `wsvia connect --reconnect`: the session over a {@link ReconnectingWebSocket}. What stdin sends while the
 * connection is away is queued (within the client's bounds, stdin paused meanwhile); at the end of stdin the Close waits until the queue
 * has gone out, and whatever is still queued when the run ends (--max-time, a terminal error) is counted on
 * stderr with a non-zero exit, never dropped silently.
 */
import type { ConnectOptions } from '../client/connect.js';
import { ReconnectingWebSocket } from '../client/reconnecting.js';
import { EXIT_CODES, exitCodeOf, isWsviaError, type WsviaError } from '../errors.js';
import { StdinMessages, type InputMessage } from './connect-input.js';
import type { ConnectOutput } from './connect-output.js';
import { HIGH_WATER, messagesAwaited, sendPaced, startMaxTime, type SessionArgs } from './connect-session.js';

export function runReconnecting(
  a: SessionArgs,
  options: ConnectOptions,
  output: ConnectOutput,
): Promise<number> {
  return new ReconnectingRun(a, options, output).run();
}

class ReconnectingRun {
  readonly #a: SessionArgs;
  readonly #out: ConnectOutput;
  readonly #client: ReconnectingWebSocket;
  readonly #awaited: number | undefined;
  #input: StdinMessages | undefined;
  #inputEnded = false;
  #received = 0;
  #refused = 0;
  /** Messages stdin gave after it was paused, while the client's queue was full: the rest of one read at most. */
  readonly #held: InputMessage[] = [];
  #closingWith: number | undefined;
  #timers: (NodeJS.Timeout | undefined)[] = [];
  #resolve: ((code: number) => void) | undefined;

  constructor(a: SessionArgs, options: ConnectOptions, output: ConnectOutput) {
    this.#a = a;
    this.#out = output;
    this.#awaited = messagesAwaited(a);
    this.#client = new ReconnectingWebSocket(a.url, { ...options, reconnect: {} });
  }

  run(): Promise<number> {
    return new Promise<number>((resolve) => {
      this.#resolve = resolve;
      this.#timers.push(startMaxTime(this.#a, this.#out, () => this.#finish(EXIT_CODES.timeout)));
      this.#listen();
      this.#out.onClosed(() => this.#close(EXIT_CODES.ok));
      if (this.#a.send.length === 0)
        this.#input = new StdinMessages(this.#a.mode, this.#a.one, {
          message: (m) => this.#send(m),
          end: () => {
            this.#inputEnded = true;
            if (this.#awaited === undefined) this.#closeWhenSent();
          },
        });
      this.#client.start();
    });
  }

  #listen(): void {
    const client = this.#client;
    let sentInitial = false;
    client.on('open', (ws, attempt) => {
      this.#out.event({ event: 'open', url: this.#a.url, protocol: ws.protocol, attempt });
      if (attempt > 0 && !this.#a.json) this.#out.note(`reconnected after ${attempt} failed attempt(s)`);
      if (!sentInitial) {
        sentInitial = true;
        for (const text of this.#a.one ? this.#a.send.slice(0, 1) : this.#a.send) client.send(text);
        if (this.#awaited === 0) this.#close(EXIT_CODES.ok);
      }
      // The queue is flushed right after 'open' returns; what stdin gave while it was full goes after it.
      setImmediate(() => {
        this.#release();
        if (this.#inputEnded && this.#awaited === undefined) this.#closeWhenSent();
      });
    });
    client.on('message', (data, isBinary) => {
      this.#received++;
      const ws = client.socket;
      if (!this.#out.message(data, isBinary) && ws) {
        ws.pause();
        const resume = (): void => ws.resume();
        this.#out.drained().then(resume, resume);
      }
      if (this.#awaited !== undefined && this.#received >= this.#awaited) this.#close(EXIT_CODES.ok);
    });
    client.on('close', (code, reason, again) => {
      this.#out.event({ event: 'close', code, reason, reconnecting: again });
      if (!again && this.#closingWith !== undefined) this.#finish(this.#closingWith);
    });
    client.on('reconnecting', (attempt, delay, cause) => {
      this.#out.event({ event: 'reconnecting', attempt, delayMs: delay, error: cause.toJSON() });
      if (!this.#a.json)
        this.#out.note(`${cause.summary} [${cause.code}]; reconnecting in ${delay} ms (attempt ${attempt})`);
    });
    client.on('error', (err) => this.#finish(this.#fail(err)));
  }

  /**
   * A line from stdin. stdin is read no faster than the messages leave: it is paused while the connection is away
   * (what it still gives from the read in hand is queued, or held here once the client's queue is full) and while
   * more than HIGH_WATER is buffered for the socket.
   */
  #send(m: InputMessage): void {
    if (this.#held.length > 0 || !this.#offer(m)) this.#held.push(m);
  }

  /** Sends or queues `m`; false when the client's queue is full. */
  #offer(m: InputMessage): boolean {
    const ws = this.#client.socket;
    if (ws && ws.readyState === ws.OPEN && this.#client.queued === 0) {
      sendPaced(ws, m, this.#input, () => this.#held.length === 0);
      return true;
    }
    this.#input?.pause();
    try {
      this.#client.send(m.data, { binary: m.binary });
      return true;
    } catch (e) {
      if (isWsviaError(e) && e.code === 'QUEUE_FULL') return false;
      this.#refused++;
      if (isWsviaError(e) && this.#refused === 1) this.#out.note(e.message);
      return true;
    }
  }

  /** The connection is back and its queue sent: what was held goes, then stdin is read again. */
  #release(): void {
    while (this.#held.length > 0) {
      const m = this.#held[0] as InputMessage;
      if (!this.#offer(m)) return;
      this.#held.shift();
    }
    const ws = this.#client.socket;
    if (ws && ws.readyState === ws.OPEN && ws.bufferedAmount <= HIGH_WATER) this.#input?.resume();
  }

  /** End of stdin: close once the queue has gone out (it goes on the next open when the connection is away). */
  #closeWhenSent(): void {
    const ws = this.#client.socket;
    if (this.#client.queued === 0 && this.#held.length === 0 && ws && ws.readyState === ws.OPEN)
      this.#close(EXIT_CODES.ok);
  }

  #close(code: number): void {
    if (this.#closingWith !== undefined || !this.#resolve) return;
    this.#closingWith = code;
    this.#input?.close();
    const ws = this.#client.socket;
    // Read before the close: closing makes it CLOSING, and the run would end without the server's answer.
    const open = ws !== undefined && ws.readyState === ws.OPEN;
    this.#client.close(this.#a.close.code, this.#a.close.reason);
    if (!open) return this.#finish(code);
    this.#timers.push(
      setTimeout(() => {
        this.#out.note(
          `no Close from the server within ${this.#a.closeTimeoutMs / 1000} s (--close-timeout): leaving`,
        );
        this.#finish(code);
      }, this.#a.closeTimeoutMs),
    );
  }

  #fail(e: WsviaError): number {
    this.#out.error(e);
    return exitCodeOf(e);
  }

  #finish(code: number): void {
    const resolve = this.#resolve;
    if (!resolve) return;
    this.#resolve = undefined;
    for (const t of this.#timers) clearTimeout(t);
    this.#input?.close();
    const queued = this.#client.queued + this.#held.length;
    this.#client.close();
    this.#client.socket?.terminate();
    let exit = code;
    const lost = queued + this.#refused;
    if (lost > 0) {
      this.#out.note(
        `${lost} message(s) were not sent: ${queued} still queued for a connection that did not come back${this.#refused ? `, ${this.#refused} refused by the full queue` : ''}`,
      );
      if (exit === EXIT_CODES.ok) exit = EXIT_CODES.closed;
    }
    resolve(exit);
  }
}
