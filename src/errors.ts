/**
 * The error taxonomy. Every failure wsvia reports is a {@link WsviaError} with a stable `code`, the `hop` that
 * failed, what the peer answered (when it answered) and a one-line hint. The message is built from those fields,
 * so callers never need to match on message text.
 */

export const ERROR_CODES = [
  // The proxy hop.
  'PROXY_REFUSED', // the proxy answered CONNECT (or the request) with a non-2xx status
  'PROXY_AUTH_REQUIRED', // 407 without usable credentials, or credentials rejected
  'PROXY_UNAVAILABLE', // 503/502/504 from the proxy: no capacity, or its own upstream failed
  'PROXY_TLS_FAILED', // the https:// proxy's own TLS handshake failed
  'PROXY_CONNECT_FAILED', // TCP to the proxy was refused or reset
  // Network.
  'DNS_FAILED',
  'CONNECTION_REFUSED',
  'CONNECTION_RESET', // the peer closed or reset before the hop completed
  'TCP_TIMEOUT',
  'TUNNEL_TIMEOUT',
  'TLS_TIMEOUT',
  'UPGRADE_TIMEOUT',
  // TLS to the target.
  'TLS_UNTRUSTED',
  'TLS_INTERCEPTED',
  'TLS_HOSTNAME_MISMATCH',
  'TLS_FAILED',
  'TLS_NOT_SPOKEN', // the peer answered a ClientHello with something that is not TLS
  // The WebSocket upgrade and after.
  'UPGRADE_REJECTED',
  'PING_TIMEOUT',
  'QUEUE_FULL',
  'WEBSOCKET_CLOSED',
  // Bytes that do not parse.
  'PROTOCOL_ERROR',
  'HEAD_TOO_LARGE',
  // Server-side policy.
  'DESTINATION_DENIED',
  'LIMIT_REACHED',
  'AUTH_FAILED',
  // A server could not listen (the address is in use, or not ours to bind).
  'LISTEN_FAILED',
  // Our caller's fault.
  'INVALID_ARGUMENT',
  'CONFIG_INVALID',
] as const;
/** A stable error code, one of {@link ERROR_CODES}. */
export type ErrorCode = (typeof ERROR_CODES)[number];

/** Where along the path a failure happened. */
export const HOPS = [
  'route',
  'dns',
  'tcp',
  'proxy',
  'tunnel',
  'tls',
  'upgrade',
  'websocket',
  'server',
  'config',
] as const;
/** Where on the path a failure happened, one of {@link HOPS}. */
export type Hop = (typeof HOPS)[number];

/** What a peer answered, trimmed for display: never more than a status line, a few headers and an excerpt. */
export interface PeerAnswer {
  readonly statusLine: string;
  readonly status?: number;
  /** Selected headers worth showing (Via, Server, Proxy-Authenticate, Proxy-Status, ...). */
  readonly headers?: readonly (readonly [string, string])[];
  /** A short printable excerpt of the body, HTML tags stripped. */
  readonly bodyExcerpt?: string;
}

export interface WsviaErrorFields {
  readonly hop: Hop;
  /** The proxy URL with credentials redacted, when a proxy was involved. */
  readonly proxy?: string;
  /** The target authority (`host:port`) or URL. */
  readonly target?: string;
  readonly answer?: PeerAnswer;
  readonly hint?: string;
  readonly cause?: unknown;
  /** Free-form facts for the doctor and JSON output (never secrets). */
  readonly details?: Readonly<Record<string, unknown>>;
}

/**
 * Every error wsvia raises: a stable `code`, the `hop` that failed, what the peer answered and a one-line hint. The
 * message reads as one sentence: `proxy http://p:3128 answered "407 Proxy Authentication Required" to CONNECT a:443:
 * pass --proxy-user`.
 */
export class WsviaError extends Error {
  override readonly name = 'WsviaError';
  readonly code: ErrorCode;
  readonly hop: Hop;
  readonly proxy: string | undefined;
  readonly target: string | undefined;
  readonly answer: PeerAnswer | undefined;
  readonly hint: string | undefined;
  readonly details: Readonly<Record<string, unknown>> | undefined;
  /** The sentence without the hint, e.g. `proxy http://p:3128 answered "403 Forbidden" to CONNECT a:443`. */
  readonly summary: string;

  constructor(code: ErrorCode, summary: string, fields: WsviaErrorFields) {
    super(
      fields.hint ? `${summary}: ${fields.hint}` : summary,
      fields.cause === undefined ? {} : { cause: fields.cause },
    );
    this.code = code;
    this.summary = summary;
    this.hop = fields.hop;
    this.proxy = fields.proxy;
    this.target = fields.target;
    this.answer = fields.answer;
    this.hint = fields.hint;
    this.details = fields.details;
  }

  /** A plain object for `--json` output and logs. */
  toJSON(): Record<string, unknown> {
    return {
      code: this.code,
      hop: this.hop,
      message: this.message,
      ...(this.proxy === undefined ? {} : { proxy: this.proxy }),
      ...(this.target === undefined ? {} : { target: this.target }),
      ...(this.answer === undefined ? {} : { answer: this.answer }),
      ...(this.hint === undefined ? {} : { hint: this.hint }),
      ...(this.details === undefined ? {} : { details: this.details }),
    };
  }
}

/** Bytes from a peer that break the protocol. `statusHint` is what a server should answer (h11's convention). */
export class RemoteProtocolError extends WsviaError {
  readonly statusHint: 400 | 408 | 414 | 431 | 502;
  constructor(
    summary: string,
    fields: WsviaErrorFields & { statusHint?: 400 | 408 | 414 | 431 | 502; code?: ErrorCode },
  ) {
    super(fields.code ?? 'PROTOCOL_ERROR', summary, fields);
    this.statusHint = fields.statusHint ?? 400;
  }
}

/** Whether `e` is a {@link WsviaError}. */
export function isWsviaError(e: unknown): e is WsviaError {
  return e instanceof WsviaError;
}

export function invalidArgument(summary: string, hint?: string): WsviaError {
  return new WsviaError(
    'INVALID_ARGUMENT',
    summary,
    hint === undefined ? { hop: 'config' } : { hop: 'config', hint },
  );
}

/**
 * CLI exit codes, one per family of failure: the one table every command exits by, prints in its `--help` and the
 * README documents (test/cli/exit-codes.test.ts checks the README against it). 2 is usage, as getopt tools do.
 */
export const EXIT_CODES = {
  ok: 0,
  failure: 1,
  usage: 2,
  proxyRefused: 3,
  proxyAuth: 4,
  tls: 5,
  upgradeRejected: 6,
  timeout: 7,
  network: 8,
  closed: 9,
  /** Stopped by Ctrl-C (SIGINT): 128 + 2, as shells report it. */
  interrupted: 130,
} as const;

/** What each exit code means, in the words `--help` and the README use. */
export const EXIT_CODE_MEANINGS: Readonly<Record<(typeof EXIT_CODES)[keyof typeof EXIT_CODES], string>> = {
  0: 'ok (a server: stopped by SIGINT or SIGTERM)',
  1: 'other failure (a port in use, a peer that does not speak HTTP)',
  2: 'usage or configuration error',
  3: 'refused by a proxy or a server policy (403, 5xx, no capacity)',
  4: "authentication: proxy credentials missing or rejected (407), or the server's 401",
  5: 'TLS',
  6: 'upgrade rejected (the server, or something in front of it, did not answer 101)',
  7: 'timeout',
  8: 'network or DNS',
  9: 'the connection closed abnormally',
  130: 'interrupted (Ctrl-C)',
};

/**
 * The CLI exit code for an error code (one of {@link EXIT_CODES}). A rejected upgrade exits by its status where a
 * family says more: 401 is authentication (4), 403 a refusal (3), as for a proxy's 407 and 403.
 */
export function exitCodeFor(code: ErrorCode, status?: number): number {
  switch (code) {
    case 'PROXY_REFUSED':
    case 'PROXY_UNAVAILABLE':
    case 'DESTINATION_DENIED':
    case 'LIMIT_REACHED':
      return EXIT_CODES.proxyRefused;
    case 'PROXY_AUTH_REQUIRED':
    case 'AUTH_FAILED':
      return EXIT_CODES.proxyAuth;
    case 'PROXY_TLS_FAILED':
    case 'TLS_UNTRUSTED':
    case 'TLS_INTERCEPTED':
    case 'TLS_HOSTNAME_MISMATCH':
    case 'TLS_FAILED':
    case 'TLS_NOT_SPOKEN':
      return EXIT_CODES.tls;
    case 'UPGRADE_REJECTED':
      if (status === 401) return EXIT_CODES.proxyAuth;
      if (status === 403) return EXIT_CODES.proxyRefused;
      return EXIT_CODES.upgradeRejected;
    case 'TCP_TIMEOUT':
    case 'TUNNEL_TIMEOUT':
    case 'TLS_TIMEOUT':
    case 'UPGRADE_TIMEOUT':
    case 'PING_TIMEOUT':
      return EXIT_CODES.timeout;
    case 'DNS_FAILED':
    case 'CONNECTION_REFUSED':
    case 'CONNECTION_RESET':
    case 'PROXY_CONNECT_FAILED':
      return EXIT_CODES.network;
    case 'WEBSOCKET_CLOSED':
    case 'QUEUE_FULL':
      return EXIT_CODES.closed;
    case 'INVALID_ARGUMENT':
    case 'CONFIG_INVALID':
      return EXIT_CODES.usage;
    case 'PROTOCOL_ERROR':
    case 'HEAD_TOO_LARGE':
    case 'LISTEN_FAILED':
      return EXIT_CODES.failure;
    default:
      return assertNever(code);
  }
}

/** The exit code for an error: its code's, refined by the status the peer answered. */
export function exitCodeOf(e: WsviaError): number {
  return exitCodeFor(e.code, e.answer?.status);
}

export function assertNever(x: never): never {
  throw new Error(`Unreachable: ${String(x)}`);
}
