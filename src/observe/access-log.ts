/**
 * JSON access logs, one line per request, tunnel or WebSocket, written when it ends. Writes go through the
 * stream's backpressure: when the destination is slower than traffic, lines are dropped and counted rather than
 * buffered without bound.
 */
import fs from 'node:fs';
import type { Writable } from 'node:stream';

export type AccessLogRecord = Readonly<Record<string, string | number | boolean | null | undefined>>;

export class AccessLog {
  readonly #out: Writable | undefined;
  #blocked = false;
  dropped = 0;

  constructor(out: Writable | undefined) {
    this.#out = out;
    out?.on('drain', () => (this.#blocked = false));
  }

  /** `-` is stdout; a path is appended to; undefined disables the log. */
  static open(target: string | undefined): AccessLog {
    if (target === undefined) return new AccessLog(undefined);
    if (target === '-') return new AccessLog(process.stdout);
    return new AccessLog(fs.createWriteStream(target, { flags: 'a' }));
  }

  write(record: AccessLogRecord): void {
    if (!this.#out) return;
    if (this.#blocked) {
      this.dropped++;
      return;
    }
    const line = JSON.stringify({ time: new Date().toISOString(), ...record });
    if (!this.#out.write(`${line}\n`)) this.#blocked = true;
  }

  close(): Promise<void> {
    const out = this.#out;
    if (!out || out === process.stdout) return Promise.resolve();
    return new Promise((resolve) => out.end(resolve));
  }
}
