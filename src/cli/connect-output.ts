/**
 * What `wsvia connect` prints: messages on stdout in the chosen mode (lines, raw bytes, or JSON events), notes on
 * stderr. A reader that goes away (`| head -1`) ends the run quietly instead of crashing on EPIPE, and a slow one
 * holds the WebSocket back through `write()`'s return value.
 */
import { formatError } from './output.js';
import type { WsviaError } from '../errors.js';

/** How messages cross stdin and stdout: lines of text, raw bytes in chunks, or raw bytes one line per message. */
export type DataMode = 'text' | 'binary' | 'binary-lines';

export class ConnectOutput {
  readonly #mode: DataMode;
  readonly #json: boolean;
  #closed = false;
  /** The one wait for stdout's drain while it is full. */
  #drain: Promise<void> | undefined;
  #drainDone: (() => void) | undefined;
  readonly #onClosed: (() => void)[] = [];

  constructor(mode: DataMode, json: boolean) {
    this.#mode = mode;
    this.#json = json;
    // EPIPE and the like arrive as 'error' on stdout; without a listener they crash the process with a stack.
    process.stdout.on('error', () => this.#close());
  }

  /** Whether stdout is gone (its reader closed it). */
  get closed(): boolean {
    return this.#closed;
  }

  /** Runs `fn` once, when stdout's reader goes away. */
  onClosed(fn: () => void): void {
    if (this.#closed) fn();
    else this.#onClosed.push(fn);
  }

  /** Prints a received message; false when stdout is full (wait for {@link ConnectOutput.drained}). */
  message(data: Buffer, isBinary: boolean): boolean {
    if (this.#json)
      return this.event({
        event: 'message',
        binary: isBinary,
        data: isBinary ? data.toString('hex') : data.toString('utf8'),
      });
    if (this.#mode === 'binary') return this.#write(data);
    if (this.#mode === 'binary-lines') return this.#write(Buffer.concat([data, NEWLINE]));
    // Text mode: binary shown as hex behind a marker, so that it is never mistaken for text.
    return this.#write(
      isBinary ? `[binary ${data.length} bytes] ${data.toString('hex')}\n` : `${data.toString('utf8')}\n`,
    );
  }

  /** One JSON event on stdout (only with --json). */
  event(o: Record<string, unknown>): boolean {
    return this.#json ? this.#write(`${JSON.stringify(o)}\n`) : true;
  }

  /** A line on stderr, `wsvia: ` first. */
  note(text: string): void {
    process.stderr.write(`wsvia: ${text}\n`);
  }

  /** An error: its block on stderr and, with --json, an `error` event. */
  error(e: WsviaError): void {
    this.event({ event: 'error', ...e.toJSON() });
    process.stderr.write(formatError(e));
  }

  /**
   * Resolves when stdout can take more (at once if it is closed). Every caller while stdout is full shares one
   * wait: messages already parsed keep arriving after the socket is paused, and each asked for its own listener.
   */
  drained(): Promise<void> {
    if (this.#closed || !process.stdout.writableNeedDrain) return Promise.resolve();
    this.#drain ??= new Promise((resolve) => {
      const done = (): void => {
        process.stdout.removeListener('drain', done);
        this.#drain = undefined;
        this.#drainDone = undefined;
        resolve();
      };
      process.stdout.once('drain', done);
      this.#drainDone = done;
    });
    return this.#drain;
  }

  #write(chunk: string | Buffer): boolean {
    if (this.#closed) return true;
    return process.stdout.write(chunk);
  }

  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#drainDone?.();
    for (const fn of this.#onClosed.splice(0)) fn();
  }
}

const NEWLINE = Buffer.from('\n');
