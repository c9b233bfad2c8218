/**
 * The proxy's own answers: every error carries `Proxy-Status` (RFC 9209) naming the error type and details, and a
 * short human-readable body; denials also name the rule in `X-Wsvia-Error`. The connection closes after each one,
 * so nothing the client sent after its head is ever interpreted as a second request.
 */
import { formatProxyStatus, type ProxyErrorType } from '../protocol/proxy-status.js';
import { serializeHead } from '../protocol/head.js';

/** A failure on the way to a tunnel, as the proxy will answer it. */
export interface ProxyFailure {
  readonly status: number;
  readonly error: ProxyErrorType;
  /** One sentence for humans and for the `details` parameter (never secrets). */
  readonly details: string;
  /** For denials: the rule that denied (goes to X-Wsvia-Error). */
  readonly rule?: string;
  /** Why, for the access log and metrics: `denied`, `auth`, `limit`, `dns`, `refused`, `timeout`, `protocol`. */
  readonly reason: FailureReason;
  readonly headers?: readonly (readonly [string, string])[];
}

export const FAILURE_REASONS = [
  'denied',
  'auth',
  'limit',
  'dns',
  'refused',
  'timeout',
  'protocol',
  'upstream',
  'draining',
] as const;
export type FailureReason = (typeof FAILURE_REASONS)[number];

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  403: 'Forbidden',
  405: 'Method Not Allowed',
  407: 'Proxy Authentication Required',
  408: 'Request Timeout',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

export function reasonPhrase(status: number): string {
  return REASONS[status] ?? 'Error';
}

/** The bytes of an error response for `failure`, from the proxy called `name`. */
export function errorResponse(name: string, f: ProxyFailure): Buffer {
  const body = Buffer.from(
    `${f.status} ${reasonPhrase(f.status)}: ${f.details}${f.rule === undefined ? '' : `\ndenied by rule: ${f.rule}`}\n`,
    'utf8',
  );
  const headers: [string, string][] = [
    ['Proxy-Status', formatProxyStatus(name, f.error, f.details)],
    ...(f.rule === undefined ? [] : ([['X-Wsvia-Error', ascii(f.rule)]] as [string, string][])),
    ...(f.headers ?? []).map(([k, v]): [string, string] => [k, v]),
    ['Content-Type', 'text/plain; charset=utf-8'],
    ['Content-Length', String(body.length)],
    ['Connection', 'close'],
  ];
  return Buffer.concat([serializeHead(`HTTP/1.1 ${f.status} ${reasonPhrase(f.status)}`, headers), body]);
}

/** Header values are octets: keep them printable ASCII. */
function ascii(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, '?');
}

export const CONNECTION_ESTABLISHED = Buffer.from('HTTP/1.1 200 Connection established\r\n\r\n', 'latin1');
