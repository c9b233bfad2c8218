/**
 * stdin as WebSocket messages for `wsvia connect`: each line a text message (the default), each line a binary
 * message (--binary-lines), or the raw bytes in chunks as binary messages (--binary). The reader pauses when the
 * WebSocket's buffer is full and resumes when it drains, so stdin is never read faster than it can be sent.
 */
import readline from 'node:readline';
import type { DataMode } from './connect-output.js';

export interface InputMessage {
  readonly data: string | Buffer;
  readonly binary: boolean;
}

export interface InputHandlers {
  message(m: InputMessage): void;
  /** stdin ended (or, with `one`, its first message was read). */
  end(): void;
}

export class StdinMessages {
  readonly #rl: readline.Interface | undefined;
  #ended = false;
  /** Once closed, pause() and resume() do nothing (Node 24's readline throws ERR_USE_AFTER_CLOSE on them). */
  #closed = false;

  /** Starts reading; `one` stops after the first message (--one-message). */
  constructor(mode: DataMode, one: boolean, handlers: InputHandlers) {
    const end = (): void => {
      if (this.#ended) return;
      this.#ended = true;
      handlers.end();
    };
    const take = (m: InputMessage): void => {
      if (this.#ended) return;
      handlers.message(m);
      if (one) {
        end();
        this.close();
      }
    };
    process.stdin.on('error', end);
    if (mode !== 'text') {
      const lines = mode === 'binary-lines' ? new LineSplitter() : undefined;
      process.stdin.on('data', (chunk: Buffer) => {
        if (!lines) return take({ data: chunk, binary: true });
        for (const line of lines.push(chunk)) take({ data: line, binary: true });
      });
      process.stdin.once('end', () => {
        const last = lines?.rest();
        if (last) take({ data: last, binary: true });
        end();
      });
      return;
    }
    this.#rl = readline.createInterface({ input: process.stdin, terminal: false, crlfDelay: Infinity });
    this.#rl.on('line', (line) => take({ data: line, binary: false }));
    this.#rl.once('close', () => {
      this.#closed = true;
      end();
    });
  }

  pause(): void {
    if (this.#closed) return;
    if (this.#rl) this.#rl.pause();
    else process.stdin.pause();
  }

  resume(): void {
    if (this.#closed) return;
    if (this.#rl) this.#rl.resume();
    else process.stdin.resume();
  }

  /** Stops reading stdin (it no longer keeps the process alive). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#rl?.close();
    process.stdin.destroy();
  }
}

/** Splits bytes at each LF, byte-exact (no decoding): a final line without LF is {@link LineSplitter.rest}. */
class LineSplitter {
  #parts: Buffer[] = [];

  push(chunk: Buffer): Buffer[] {
    const lines: Buffer[] = [];
    let start = 0;
    for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, start)) {
      lines.push(Buffer.concat([...this.#parts, chunk.subarray(start, nl)]));
      this.#parts = [];
      start = nl + 1;
    }
    if (start < chunk.length) this.#parts.push(chunk.subarray(start));
    return lines;
  }

  rest(): Buffer | undefined {
    return this.#parts.length > 0 ? Buffer.concat(this.#parts) : undefined;
  }
}
