/**
 * One `wsvia connect` run on one WebSocket: what it sends (the --send list or stdin), what it prints, and how it
 * ends. Every end is said (a server's Close, a cut without one, a missed pong, --max-time) and has its exit code;
 * this side's Close waits for the server's, within --close-timeout; nothing read from stdin is dropped silently.
 */
import type WebSocket from 'ws';
import { connect, type ConnectOptions } from '../client/connect.js';
import { closeReason } from '../client/keepalive.js';
import { EXIT_CODES, exitCodeOf, WsviaError } from '../errors.js';
import { StdinMessages, type InputMessage } from './connect-input.js';
import type { ConnectOutput, DataMode } from './connect-output.js';
import { reportError } from './output.js';

/** What a `wsvia connect` session does, from its flags. */
export interface SessionArgs {
  readonly url: string;
  readonly send: readonly string[];
  readonly expect: number | undefined;
  readonly one: boolean;
  readonly mode: DataMode;
  readonly json: boolean;
  readonly showPingPong: boolean;
  readonly close: { readonly code: number; readonly reason: string };
  readonly closeTimeoutMs: number;
  readonly maxTimeMs: number | undefined;
}

/** stdin is paused while more than this is buffered for the WebSocket, and resumed below it. */
export const HIGH_WATER = 1024 * 1024;

/**
 * Sends `m` on `ws`: `input` is paused while more than HIGH_WATER is buffered for the socket, and resumed once
 * below half of it (when `mayResume()` agrees). Both sessions, with and without --reconnect, send stdin this way.
 */
export function sendPaced(
  ws: WebSocket,
  m: InputMessage,
  input: StdinMessages | undefined,
  mayResume: () => boolean = () => true,
): void {
  ws.send(m.data, { binary: m.binary }, () => {
    if (ws.bufferedAmount < HIGH_WATER / 2 && mayResume()) input?.resume();
  });
  if (ws.bufferedAmount > HIGH_WATER) input?.pause();
}

/** Close codes that end a run well: normal, going away, and a Close that carried no code (1005). */
const CLEAN_CLOSES: ReadonlySet<number> = new Set([1000, 1001, 1005]);

/** Messages to receive before closing: --expect, else one with -1, else one answer per --send; none from stdin. */
export function messagesAwaited(a: SessionArgs): number | undefined {
  if (a.expect !== undefined) return a.expect;
  if (a.one) return 1;
  return a.send.length > 0 ? a.send.length : undefined;
}

/** `--max-time`: one timer for the whole run, which says it fired on stderr and as a JSON event. */
export function startMaxTime(
  a: SessionArgs,
  output: ConnectOutput,
  fire: () => void,
): NodeJS.Timeout | undefined {
  if (a.maxTimeMs === undefined) return undefined;
  const seconds = a.maxTimeMs / 1000;
  return setTimeout(() => {
    output.event({ event: 'max-time', seconds });
    output.note(`--max-time ${seconds} s reached: stopping`);
    fire();
  }, a.maxTimeMs);
}

export class ConnectSession {
  readonly #a: SessionArgs;
  readonly #options: ConnectOptions;
  readonly #out: ConnectOutput;
  readonly #abort = new AbortController();
  readonly #awaited: number | undefined;
  #ws: WebSocket | undefined;
  #input: StdinMessages | undefined;
  #received = 0;
  #unsent = 0;
  /** The exit code decided when this side sent its Close. */
  #closingWith: number | undefined;
  #timers: (NodeJS.Timeout | undefined)[] = [];
  #resolve: ((code: number) => void) | undefined;

  constructor(args: SessionArgs, options: ConnectOptions, output: ConnectOutput) {
    this.#a = args;
    this.#options = { ...options, signal: this.#abort.signal };
    this.#out = output;
    this.#awaited = messagesAwaited(args);
  }

  /** Connects, runs, and resolves with the exit code; never rejects. */
  run(): Promise<number> {
    return new Promise<number>((resolve) => {
      this.#resolve = resolve;
      this.#timers.push(startMaxTime(this.#a, this.#out, () => this.#finish(EXIT_CODES.timeout)));
      connect(this.#a.url, this.#options).then(
        (ws) => {
          if (this.#resolve) this.#attach(ws);
          else ws.terminate();
        },
        (e: unknown) => {
          if (this.#resolve) this.#finish(reportError(e, this.#a.json));
        },
      );
    });
  }

  #attach(ws: WebSocket): void {
    this.#ws = ws;
    const a = this.#a;
    this.#out.event({ event: 'open', url: a.url, protocol: ws.protocol });
    ws.on('message', (data: Buffer, isBinary: boolean) => this.#onMessage(data, isBinary));
    ws.on('error', () => {});
    ws.on('close', (code: number, reason: Buffer) => this.#onClose(code, reason.toString()));
    if (a.showPingPong) {
      ws.on('ping', (data: Buffer) => this.#pingPong('ping', data));
      ws.on('pong', (data: Buffer) => this.#pingPong('pong', data));
    }
    // A reader that went away (`| head -1`) wants no more: close politely, exit 0, print nothing.
    this.#out.onClosed(() => this.#beginClose(EXIT_CODES.ok));
    for (const text of a.one ? a.send.slice(0, 1) : a.send) ws.send(text);
    if (this.#awaited === 0) return this.#beginClose(EXIT_CODES.ok);
    if (a.send.length === 0)
      this.#input = new StdinMessages(a.mode, a.one, {
        message: (m) => this.#sendInput(m),
        end: () => {
          // End of stdin: close now unless messages are still awaited (--expect, -1).
          if (this.#awaited === undefined) this.#beginClose(EXIT_CODES.ok);
        },
      });
  }

  #onMessage(data: Buffer, isBinary: boolean): void {
    const ws = this.#ws as WebSocket;
    this.#received++;
    if (!this.#out.message(data, isBinary)) {
      ws.pause();
      const resume = (): void => ws.resume();
      this.#out.drained().then(resume, resume);
    }
    if (this.#awaited !== undefined && this.#received >= this.#awaited) this.#beginClose(EXIT_CODES.ok);
  }

  #pingPong(kind: 'ping' | 'pong', data: Buffer): void {
    this.#out.event({ event: kind, data: data.toString('hex') });
    if (!this.#a.json) this.#out.note(`${kind} from the server (${data.length} bytes)`);
  }

  #sendInput(m: InputMessage): void {
    const ws = this.#ws as WebSocket;
    if (ws.readyState !== ws.OPEN || this.#closingWith !== undefined) {
      this.#unsent++;
      return;
    }
    sendPaced(ws, m, this.#input);
  }

  /** Sends this side's Close and waits for the server's, for at most --close-timeout. */
  #beginClose(code: number): void {
    const ws = this.#ws;
    if (!ws || this.#closingWith !== undefined || !this.#resolve) return;
    this.#closingWith = code;
    this.#input?.close();
    if (ws.readyState !== ws.OPEN) return;
    ws.close(this.#a.close.code, this.#a.close.reason);
    const seconds = this.#a.closeTimeoutMs / 1000;
    this.#timers.push(
      setTimeout(() => {
        this.#out.note(`no Close from the server within ${seconds} s (--close-timeout): leaving`);
        this.#finish(code);
      }, this.#a.closeTimeoutMs),
    );
  }

  #onClose(code: number, reason: string): void {
    const ws = this.#ws as WebSocket;
    const dead = closeReason(ws);
    const by = this.#closingWith !== undefined ? 'client' : code === 1006 ? 'nobody' : 'server';
    this.#out.event({ event: 'close', code, reason, by, ...(dead ? { error: dead.toJSON() } : {}) });
    if (dead) return this.#finish(this.#fail(dead));
    if (this.#closingWith !== undefined) return this.#finish(this.#closingWith);
    if (code === 1006)
      return this.#finish(
        this.#fail(
          new WsviaError('WEBSOCKET_CLOSED', 'the connection was cut without a Close frame', {
            hop: 'websocket',
            hint: 'the server died, or something in between (an idle timeout in a proxy or load balancer) dropped it; --ping keeps an idle connection alive',
          }),
        ),
      );
    this.#out.note(`closed by server: ${code}${reason ? ` ${reason}` : ''}`);
    const awaited = this.#awaited;
    if (awaited !== undefined && this.#received < awaited)
      return this.#finish(
        this.#fail(
          new WsviaError(
            'WEBSOCKET_CLOSED',
            `the server closed the connection after ${this.#received} of ${awaited} awaited messages`,
            { hop: 'websocket' },
          ),
        ),
      );
    this.#finish(CLEAN_CLOSES.has(code) ? EXIT_CODES.ok : EXIT_CODES.closed);
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
    this.#abort.abort();
    this.#input?.close();
    const ws = this.#ws;
    let exit = code;
    if (ws && ws.bufferedAmount > 0 && ws.readyState !== ws.CLOSED) {
      this.#out.note(`${ws.bufferedAmount} bytes were still waiting to be sent when the connection ended`);
      if (exit === EXIT_CODES.ok) exit = EXIT_CODES.closed;
    }
    ws?.terminate();
    if (this.#unsent > 0) {
      this.#out.note(`${this.#unsent} message(s) read from stdin were not sent: the connection had closed`);
      if (exit === EXIT_CODES.ok) exit = EXIT_CODES.closed;
    }
    resolve(exit);
  }
}
