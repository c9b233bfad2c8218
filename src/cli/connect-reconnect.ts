/**
 * `wsvia connect --reconnect`: the session over a {@link ReconnectingWebSocket}. What stdin sends while the
 * connection is away is queued (within the client's bounds); at the end of stdin the Close waits until the queue
 * has gone out, and whatever is still queued when the run ends (--max-time, a terminal error) is counted on
 * stderr with a non-zero exit, never dropped silently.
 */
import type { ConnectOptions } from '../client/connect.js';
import { ReconnectingWebSocket } from '../client/reconnecting.js';
import { EXIT_CODES, exitCodeOf, isWsviaError, type WsviaError } from '../errors.js';
import { StdinMessages, type InputMessage } from './connect-input.js';
import type { ConnectOutput } from './connect-output.js';
import { messagesAwaited, startMaxTime, type SessionArgs } from './connect-session.js';

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
      // The queue is flushed right after 'open' returns.
      if (this.#inputEnded && this.#awaited === undefined) setImmediate(() => this.#closeWhenSent());
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

  #send(m: InputMessage): void {
    try {
      this.#client.send(m.data, { binary: m.binary });
    } catch (e) {
      this.#refused++;
      if (isWsviaError(e) && this.#refused === 1) this.#out.note(e.message);
    }
  }

  /** End of stdin: close once the queue has gone out (it goes on the next open when the connection is away). */
  #closeWhenSent(): void {
    const ws = this.#client.socket;
    if (this.#client.queued === 0 && ws && ws.readyState === ws.OPEN) this.#close(EXIT_CODES.ok);
  }

  #close(code: number): void {
    if (this.#closingWith !== undefined || !this.#resolve) return;
    this.#closingWith = code;
    this.#input?.close();
    const ws = this.#client.socket;
    this.#client.close(this.#a.close.code, this.#a.close.reason);
    if (!ws || ws.readyState !== ws.OPEN) return this.#finish(code);
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
    const queued = this.#client.queued;
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
