/**
 * JSON access logs, one line per request, tunnel or WebSocket, written when it ends, in one schema for every
 * server (docs/access-log.md): the servers fill an {@link AccessLogEntry}, this module adds `time` and writes it.
 * Writes go through the stream's backpressure: when the destination is slower than traffic, lines are dropped and
 * counted rather than buffered without bound.
 *
 * Logging never stops relaying (STYLE.md trap 12). The file is opened when the log is, so a missing directory or
 * an unwritable file is a configuration error at start; a write error later (ENOSPC on a full disk, EPIPE when
 * stdout's reader went away) is counted, reported once through `onError`, and the lines that follow are counted
 * as lost instead of written.
 */
import fs from 'node:fs';
import type { Writable } from 'node:stream';
import { WsviaError } from '../errors.js';
import { formatHost } from '../protocol/authority.js';
import type { Counter, Registry } from './metrics.js';

/** Every line has exactly these keys, in this order, whichever server wrote it (null where a fact does not apply). */
export const ACCESS_LOG_KEYS = [
  'time',
  'client',
  'user',
  'method',
  'target',
  'status',
  'bytes_up',
  'bytes_down',
  'duration_ms',
  'close',
  'close_code',
  'error',
] as const;

/**
 * What ended a connection that was relayed. "upstream" is whatever the server relayed to: the proxy's target,
 * the gateway's upstream, the bridge's TCP target. `*_closed`: that side ended it cleanly (a FIN, or a WebSocket
 * close frame); `*_reset`: it reset or failed; `*_lost`: a WebSocket side closed its connection without a close
 * frame; `*_ping_timeout`: it stopped answering pings; the rest are the server's own doing.
 */
export const CLOSE_CAUSES = [
  'client_closed',
  'upstream_closed',
  'client_reset',
  'upstream_reset',
  'client_lost',
  'upstream_lost',
  'client_ping_timeout',
  'upstream_ping_timeout',
  'idle_timeout',
  'max_lifetime',
  'drain',
  'protocol_error',
  'server_closed',
  /** Answered with an error status and never relayed: `error` says why. */
  'refused',
] as const;
export type CloseCause = (typeof CLOSE_CAUSES)[number];

/** One access-log line but its `time`: the servers fill it, the field names exist here only. */
export interface AccessLogEntry {
  /** `address:port` of the client (after a PROXY protocol header, the address it names). */
  readonly client: string;
  /** The authenticated user (the proxy's), else null. */
  readonly user: string | null;
  /** The request's method; null when there was no HTTP request (the gateway's SNI passthrough). */
  readonly method: string | null;
  /** Where it went: the proxy's request target, the gateway's upstream URL and path (the request path when no upstream was chosen), the bridge's `host:port`; null when the request never said (a malformed or incomplete head). */
  readonly target: string | null;
  /** The status the client was answered with (101 for a WebSocket); null when no HTTP answer was sent. */
  readonly status: number | null;
  /** Bytes from the client towards the upstream (payload: a body, a tunnel's bytes, a WebSocket's frames). */
  readonly bytes_up: number;
  /** Bytes from the upstream towards the client. */
  readonly bytes_down: number;
  readonly duration_ms: number;
  readonly close: CloseCause;
  /** The first WebSocket close code seen (1005: a close frame without one); null when none went by. */
  readonly close_code: number | null;
  /** Why it was refused or failed: a stable snake_case reason; null when nothing failed. */
  readonly error: string | null;
}

/** The entry for a request answered with an error and never relayed. */
export function refusedEntry(r: {
  readonly client: string;
  readonly user?: string | null;
  readonly method: string | null;
  readonly target: string | null;
  /** Null for a refusal that could not be answered in HTTP (a TLS connection reset before its handshake). */
  readonly status: number | null;
  readonly error: string;
  readonly duration_ms: number;
}): AccessLogEntry {
  return {
    client: r.client,
    user: r.user ?? null,
    method: r.method,
    target: r.target,
    status: r.status,
    bytes_up: 0,
    bytes_down: 0,
    duration_ms: r.duration_ms,
    close: 'refused',
    close_code: null,
    error: r.error,
  };
}

/** `address:port`, with an IPv6 address in brackets. */
export function clientName(address: string | undefined, port: number | undefined): string {
  return `${formatHost(address ?? '?')}:${port ?? 0}`;
}

/** A batch this large is written at once rather than at the end of the turn. */
const MAX_BATCH = 64 * 1024;

export interface AccessLogOptions {
  /** Told of the first write error only (a log that fails, fails for every line after). */
  readonly onError?: (error: Error) => void;
  /**
   * Write the lines of one turn of the event loop in one write at its end (a server that closes many tunnels at
   * once makes one write, not one each). {@link AccessLog.open} turns it on; a stream given to the constructor gets
   * each line as it is written unless this is set.
   */
  readonly batch?: boolean;
}

export class AccessLog {
  readonly #out: Writable | undefined;
  readonly #onError: ((error: Error) => void) | undefined;
  #blocked = false;
  #failed: Error | undefined;
  /** Lines of this turn of the event loop, written at its end. */
  #batch = '';
  #batchLines = 0;
  #flushQueued = false;
  readonly #batches: boolean;
  readonly #errorCounters: Counter[] = [];
  readonly #droppedCounters: Counter[] = [];
  /** Lines dropped because the destination was not keeping up. */
  dropped = 0;
  /** Write errors, and lines lost to a log that had failed. */
  errors = 0;

  constructor(out: Writable | undefined, options: AccessLogOptions = {}) {
    this.#out = out;
    this.#onError = options.onError;
    this.#batches = options.batch === true;
    out?.on('drain', () => (this.#blocked = false));
    out?.on('error', (e: Error) => this.#fail(e));
  }

  /**
   * `-` is stdout; a path is opened for appending now, so that a path that cannot be written is a
   * `CONFIG_INVALID` error naming it, before any server listens; undefined disables the log.
   */
  static open(target: string | undefined, options: AccessLogOptions = {}): AccessLog {
    options = { batch: true, ...options };
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

  /** Adds a line; with `batch`, at the end of this turn of the event loop (a batch over 64 KiB goes at once). */
  write(entry: AccessLogEntry): void {
    if (!this.#out) return;
    if (this.#failed) return this.#countError();
    if (this.#blocked) {
      this.dropped++;
      for (const c of this.#droppedCounters) c.inc();
      return;
    }
    const line = JSON.stringify({
      time: new Date().toISOString(),
      ...entry,
      duration_ms: Math.round(entry.duration_ms),
    });
    this.#batch += `${line}\n`;
    this.#batchLines++;
    if (!this.#batches || this.#batch.length >= MAX_BATCH) this.#flush();
    else if (!this.#flushQueued) {
      this.#flushQueued = true;
      setImmediate(this.#flushNow);
    }
  }

  readonly #flushNow = (): void => {
    this.#flushQueued = false;
    this.#flush();
  };

  #flush(): void {
    const out = this.#out;
    const lines = this.#batchLines;
    if (out === undefined || lines === 0) return;
    const batch = this.#batch;
    this.#batch = '';
    this.#batchLines = 0;
    if (this.#failed) {
      for (let i = 0; i < lines; i++) this.#countError();
      return;
    }
    // A failed write is one error event; the other lines of its batch are counted as lost with it.
    const ok = out.write(batch, (e) => {
      if (e) for (let i = 1; i < lines; i++) this.#countError();
    });
    if (!ok) this.#blocked = true;
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
    this.#flush();
    const out = this.#out;
    if (!out || out === process.stdout || this.#failed || out.writableEnded) return Promise.resolve();
    return new Promise((resolve) => {
      out.once('error', () => resolve());
      out.end(resolve);
    });
  }
}
