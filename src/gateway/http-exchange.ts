/**
 * What the HTTP/1.1 and HTTP/2 request paths share once a request is proxied: how an unreachable upstream is
 * answered, and how a finished exchange is counted and logged, so both write the same metrics and log fields.
 */
import { isWsviaError } from '../errors.js';
import type { RefusalReason } from './gateway-metrics.js';
import type { Runtime } from './runtime.js';

/** A pool that could not be reached: 504 when every member timed out, 502 otherwise. */
export function upstreamFailure(e: unknown): { reason: RefusalReason; status: 502 | 504; message: string } {
  return isWsviaError(e) && e.code === 'TCP_TIMEOUT'
    ? { reason: 'upstream_timeout', status: 504, message: 'upstream connect timeout' }
    : { reason: 'upstream_unavailable', status: 502, message: 'no upstream available' };
}

export interface HttpExchange {
  /** Set for HTTP/2 clients; HTTP/1.1 ones leave it out. */
  readonly http?: '2';
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
}

/** Counts a finished request in the metrics and writes its access-log line. */
export function recordHttpExchange(rt: Runtime, x: HttpExchange): void {
  const m = rt.metrics;
  m.requests.inc({ route: x.route, status: `${Math.floor(x.status / 100)}xx` });
  m.bytes.inc({ direction: 'client' }, x.bytesToClient);
  m.bytes.inc({ direction: 'upstream' }, x.bytesToUpstream);
  rt.log.write({
    kind: 'http',
    ...(x.http ? { http: x.http } : {}),
    client: x.client,
    route: x.route,
    upstream: x.upstream,
    method: x.method,
    path: x.target.split('?')[0],
    status: x.status,
    bytesToUpstream: x.bytesToUpstream,
    bytesToClient: x.bytesToClient,
    durationMs: Date.now() - x.started,
  });
}
