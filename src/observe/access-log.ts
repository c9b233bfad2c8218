/**
 * JSON access logs, one line per request, tunnel or WebSocket, written when it ends. Writes go through the
 * stream's backpressure: when the destination is slower than traffic, lines are dropped and counted rather than
 * buffered without bound.
 *
 * Logging never stops relaying (STYLE.md trap 12). The file is opened when the log is, so a missing directory or
 * an unwritable file is a configuration error at start; a write error later (ENOSPC on a full disk, EPIPE when
 * stdout's reader went away) is counted, reported once through `onError`, and the lines that follow are counted
 * as lost instead of written.
 */
import fs from 'node:fs';
import type { Writable } from 'node:stream';
import { WsviaError } from '../errors.js';
import type { Counter, Registry } from './metrics.js';

export type AccessLogRecord = Readonly<Record<string, string | number | boolean | null | undefined>>;

export interface AccessLogOptions {
  /** Told of the first write error only (a log that fails, fails for every line after). */
  readonly onError?: (error: Error) => void;
}

export class AccessLog {
  readonly #out: Writable | undefined;
  readonly #onError: ((error: Error) => void) | undefined;
  #blocked = false;
  #failed: Error | undefined;
  readonly #errorCounters: Counter[] = [];
  readonly #droppedCounters: Counter[] = [];
  /** Lines dropped because the destination was not keeping up. */
  dropped = 0;
  /** Write errors, and lines lost to a log that had failed. */
  errors = 0;

  constructor(out: Writable | undefined, options: AccessLogOptions = {}) {
    this.#out = out;
    this.#onError = options.onError;
    out?.on('drain', () => (this.#blocked = false));
    out?.on('error', (e: Error) => this.#fail(e));
  }

  /**
   * `-` is stdout; a path is opened for appending now, so that a path that cannot be written is a
   * `CONFIG_INVALID` error naming it, before any server listens; undefined disables the log.
   */
  static open(target: string | undefined, options: AccessLogOptions = {}): AccessLog {
    if (target === undefined) return new AccessLog(undefined, options);
    if (target === '-') return new AccessLog(process.stdout, options);
    let fd: number;
    try {
      fd = fs.openSync(target, 'a');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? String(e);
      throw new WsviaError('CONFIG_INVALID', `cannot open the access log ${target} for appending (${code})`, {
        hop: 'config',
        cause: e,
      });
    }
    return new AccessLog(fs.createWriteStream(target, { fd }), options);
  }

  /**
   * Counts this log's losses in a server's `/metrics`: `wsvia_access_log_errors_total` (write errors, and lines
   * lost after one) and `wsvia_access_log_dropped_total` (lines dropped while the destination did not keep up).
   */
  countInto(registry: Registry): void {
    const errors = registry.counter(
      'wsvia_access_log_errors_total',
      'Access log write errors (ENOSPC, EPIPE, ...) and lines lost to a log that had failed',
    );
    const dropped = registry.counter(
      'wsvia_access_log_dropped_total',
      'Access log lines dropped because the destination did not keep up',
    );
    errors.inc({}, this.errors);
    dropped.inc({}, this.dropped);
    this.#errorCounters.push(errors);
    this.#droppedCounters.push(dropped);
  }

  /** The first write error, once there was one. */
  get failure(): Error | undefined {
    return this.#failed;
  }

  write(record: AccessLogRecord): void {
    if (!this.#out) return;
    if (this.#failed) return this.#countError();
    if (this.#blocked) {
      this.dropped++;
      for (const c of this.#droppedCounters) c.inc();
      return;
    }
    const line = JSON.stringify({ time: new Date().toISOString(), ...record });
    if (!this.#out.write(`${line}\n`)) this.#blocked = true;
  }

  #countError(): void {
    this.errors++;
    for (const c of this.#errorCounters) c.inc();
  }

  #fail(e: Error): void {
    this.#countError();
    if (this.#failed) return;
    this.#failed = e;
    this.#onError?.(e);
  }

  close(): Promise<void> {
    const out = this.#out;
    if (!out || out === process.stdout || this.#failed || out.writableEnded) return Promise.resolve();
    return new Promise((resolve) => {
      out.once('error', () => resolve());
      out.end(resolve);
    });
  }
}
