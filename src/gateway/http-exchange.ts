/**
 * What the HTTP/1.1 and HTTP/2 request paths share once a request is proxied: how an unreachable upstream is
 * answered, and how a finished exchange is counted and logged, so both write the same metrics and log fields.
 */
import { isWsviaError } from '../errors.js';
import type { RefusalReason } from './gateway-metrics.js';
import { refusedEntry } from '../observe/access-log.js';
import type { Runtime } from './runtime.js';
import { logTarget } from './websocket-session.js';

/** A pool that could not be reached: 504 when every member timed out, 502 otherwise. */
export function upstreamFailure(e: unknown): { reason: RefusalReason; status: 502 | 504; message: string } {
  return isWsviaError(e) && e.code === 'TCP_TIMEOUT'
    ? { reason: 'upstream_timeout', status: 504, message: 'upstream connect timeout' }
    : { reason: 'upstream_unavailable', status: 502, message: 'no upstream available' };
}

export interface HttpExchange {
  /** `address:port` of the client. */
  readonly client: string;
  readonly route: string;
  readonly upstream: string;
  readonly method: string;
  /** The request target, query included (the log keeps the path only). */
  readonly target: string;
  readonly status: number;
  readonly bytesToUpstream: number;
  readonly bytesToClient: number;
  readonly started: number;
  /** Whether the response went out whole (false: the upstream broke off and the client's side was cut). */
  readonly complete: boolean;
  /** Why it failed, a stable snake_case reason, when it did. */
  readonly error?: string | null;
}

/** Counts a finished request in the metrics and writes its access-log line. */
export function recordHttpExchange(rt: Runtime, x: HttpExchange): void {
  const m = rt.metrics;
  m.requests.inc({ route: x.route, status: `${Math.floor(x.status / 100)}xx` });
  m.bytes.inc({ direction: 'client' }, x.bytesToClient);
  m.bytes.inc({ direction: 'upstream' }, x.bytesToUpstream);
  rt.log.write({
    client: x.client,
    user: null,
    method: x.method,
    target: logTarget(x.upstream, x.target),
    status: x.status,
    bytes_up: x.bytesToUpstream,
    bytes_down: x.bytesToClient,
    duration_ms: Date.now() - x.started,
    // An exchange ends with the upstream's response: complete, or cut.
    close: x.complete ? 'upstream_closed' : 'upstream_reset',
    close_code: null,
    error: x.error ?? null,
  });
}

/**
 * Counts and logs a request the gateway answered itself with an error, over HTTP/1.1 and HTTP/2 alike. `target` is
 * logged without its query (a query may carry a token); null when no request head was read.
 */
export function recordRefusal(
  rt: Runtime,
  r: {
    client: string;
    method: string | null;
    target: string | null;
    reason: RefusalReason;
    status: number;
    started: number;
  },
): void {
  rt.metrics.refused.inc({ reason: r.reason });
  rt.log.write(
    refusedEntry({
      client: r.client,
      method: r.method,
      target: r.target === null ? null : logTarget(undefined, r.target),
      status: r.status,
      error: r.reason,
      duration_ms: Date.now() - r.started,
    }),
  );
}
