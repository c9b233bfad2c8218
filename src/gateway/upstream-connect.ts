/**
 * Connecting to a route's pool with failover: members in the balancer's order, a refusal or timeout marks the
 * member dead and the next is tried at once, so one dead member costs a client nothing but a refused connect.
 * Then the upstream's response head is read with the shared head reader, leftover kept.
 */
import type { Duplex, Writable } from 'node:stream';
import { dial } from '../dial/dial.js';
import { WsviaError, isWsviaError, type ErrorCode } from '../errors.js';
import { ResponseHeadReader, serializeHead, type HeadResult, type ResponseHead } from '../protocol/head.js';
import { ANY_DESTINATION } from '../route/destination.js';
import { guardedConnect } from '../serve/guarded-connect.js';
import type { KeySource } from './balancer.js';
import type { UpstreamSpec } from './config.js';
import type { UpstreamPool } from './upstream-pool.js';

/** How to reach upstreams: the connect timeout and the CA for wss:// and https:// ones. */
export interface DialSettings {
  readonly connectTimeout: number;
  readonly ca: string | undefined;
}

/** Where connections dialed ahead of need come from (the gateway's warm pools). */
export interface WarmSource {
  /** A connection to `u` ready for one request, or undefined (none waiting). */
  take(u: UpstreamSpec): Duplex | undefined;
  /**
   * The request that took a connection to `u` has its answer relayed: the pool refills now. Its dials are then on
   * the path of neither that request nor its answer (a refill between the request and the answer delayed the
   * answer by the connect and by the upstream's accept).
   */
  answered?(u: UpstreamSpec): void;
}

export interface ConnectContext extends DialSettings {
  markDead(u: UpstreamSpec, code: ErrorCode): void;
  /** Connections dialed ahead of need; a WebSocket upgrade takes one before it dials. */
  readonly warm?: WarmSource | undefined;
}

export interface UpstreamConnection {
  readonly socket: Duplex;
  readonly upstream: UpstreamSpec;
  /** It came from the warm pool: it may have been closed by the upstream while it waited (see `retryable`). */
  readonly warm?: boolean;
}

/**
 * A connection to one upstream. Plain ones go through the shared guarded connect with every address allowed (the
 * upstreams are the operator's): no proxy route, environment or trace to consult per connection, which the
 * client-side `dial()` does. TLS ones go through `dial()` for its TLS step (CA, ALPN, errors).
 */
export async function dialUpstream(u: UpstreamSpec, s: DialSettings): Promise<Duplex> {
  if (u.tls) {
    return dial(
      { host: u.host, port: u.port, tls: true },
      {
        proxy: false,
        timeouts: { tcp: s.connectTimeout, tls: s.connectTimeout },
        ...(s.ca === undefined ? {} : { ca: s.ca }),
        alpn: ['http/1.1'],
      },
    );
  }
  // The timeout, not a signal: to an IP literal that is one plain timer, no AbortController per connection.
  const { socket } = await guardedConnect(
    { host: u.host, port: u.port },
    { rules: ANY_DESTINATION, signal: undefined, timeout: s.connectTimeout },
  );
  // As dial() hands sockets out: a FIN from the upstream ends the socket (the relay passes closes on as frames).
  socket.allowHalfOpen = false;
  return socket;
}

/**
 * A warm connection that failed before the upstream sent a byte was closed while it waited (an upstream's idle
 * timeout racing the take): the request never reached the upstream's application, so it is safe to send again on
 * a fresh connection, once.
 */
export function retryable(conn: UpstreamConnection, e: unknown): boolean {
  return (
    conn.warm === true &&
    isWsviaError(e) &&
    e.code === 'CONNECTION_RESET' &&
    (conn.socket as { bytesRead?: number }).bytesRead === 0
  );
}

const TIMEOUTS: readonly ErrorCode[] = ['TCP_TIMEOUT', 'TLS_TIMEOUT'];

/**
 * Tries each member in the balancer's order for `request` (its hash key); throws the last failure (a WsviaError)
 * when none connects.
 */
export async function connectPool(
  pool: UpstreamPool,
  ctx: ConnectContext,
  request?: KeySource,
): Promise<UpstreamConnection> {
  let last: WsviaError | undefined;
  let timedOut = false;
  for (const u of pool.candidates(request)) {
    const warm = ctx.warm?.take(u);
    if (warm) {
      pool.holdOpen(u, warm);
      return { socket: warm, upstream: u, warm: true };
    }
    try {
      const socket = await dialUpstream(u, ctx);
      pool.holdOpen(u, socket);
      return { socket, upstream: u };
    } catch (e) {
      const err = isWsviaError(e)
        ? e
        : new WsviaError('CONNECTION_RESET', `cannot connect to ${u.url}`, { hop: 'tcp', cause: e });
      if (TIMEOUTS.includes(err.code)) timedOut = true;
      ctx.markDead(u, err.code);
      last = err;
    }
  }
  throw new WsviaError(
    timedOut ? 'TCP_TIMEOUT' : 'CONNECTION_REFUSED',
    `no upstream of route ${pool.route.name} accepted a connection (last: ${last?.summary ?? 'none'})`,
    { hop: 'tcp', cause: last, details: { timedOut } },
  );
}

/** More interim (1xx) responses than this before the final one is an upstream fault: 502, not endless relaying. */
export const MAX_INTERIM_RESPONSES = 16;

/**
 * Reads the upstream's response head. Interim 1xx responses other than 101 (100 Continue, 103 Early Hints) are
 * written to `interimTo` (the client) and reading goes on (RFC 9110 §15.2). A client that does not read pauses the
 * upstream until it drains (STYLE.md trap 17), and more than {@link MAX_INTERIM_RESPONSES} of them fail the read.
 */
export function readResponseHead(
  socket: Duplex,
  options: {
    peer: string;
    maxHeadBytes: number;
    timeout: number;
    interimTo?: Writable;
  },
): Promise<HeadResult<ResponseHead>> {
  return new Promise((resolve, reject) => {
    let reader = new ResponseHeadReader(
      { peer: options.peer, hop: 'upgrade' },
      { maxHeadBytes: options.maxHeadBytes, maxHeaders: 200 },
    );
    const timer =
      options.timeout > 0
        ? setTimeout(
            () =>
              finish(
                new WsviaError(
                  'UPGRADE_TIMEOUT',
                  `${options.peer} sent no response within ${options.timeout} ms`,
                  {
                    hop: 'upgrade',
                  },
                ),
              ),
            options.timeout,
          )
        : undefined;
    let interim = 0;
    let done = false;
    const onSinkDrain = (): void => {
      if (!done) socket.resume();
    };
    const passInterim = (r: HeadResult<ResponseHead>): void => {
      const sink = options.interimTo;
      if (++interim > MAX_INTERIM_RESPONSES)
        throw new WsviaError(
          'PROTOCOL_ERROR',
          `${options.peer} sent more than ${MAX_INTERIM_RESPONSES} interim (1xx) responses`,
          { hop: 'upgrade' },
        );
      if (sink && !sink.write(serializeHead(`HTTP/1.1 ${r.head.status} ${r.head.reason}`, r.head.headers))) {
        socket.pause();
        sink.once('drain', onSinkDrain);
      }
    };
    const finish = (err: unknown, result?: HeadResult<ResponseHead>): void => {
      done = true;
      options.interimTo?.removeListener('drain', onSinkDrain);
      clearTimeout(timer);
      socket.removeListener('data', onData);
      socket.removeListener('end', onEnd);
      socket.removeListener('error', onEnd);
      socket.removeListener('close', onEnd);
      socket.pause();
      if (result) resolve(result);
      else reject(err);
    };
    const onData = (chunk: Buffer): void => {
      let data: Uint8Array = chunk;
      try {
        for (;;) {
          const r = reader.receive(data);
          if (!r) return;
          const s = r.head.status;
          if (s >= 100 && s < 200 && s !== 101) {
            passInterim(r);
            reader = new ResponseHeadReader(
              { peer: options.peer, hop: 'upgrade' },
              { maxHeadBytes: options.maxHeadBytes, maxHeaders: 200 },
            );
            data = r.leftover;
            if (data.length === 0) return;
            continue;
          }
          finish(undefined, r);
          return;
        }
      } catch (e) {
        finish(e);
      }
    };
    const onEnd = (): void =>
      finish(
        new WsviaError('CONNECTION_RESET', `${options.peer} closed the connection before its response`, {
          hop: 'upgrade',
        }),
      );
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('error', onEnd);
    // Destroyed without an error (the client left first): neither 'end' nor 'error' comes, only 'close'.
    socket.once('close', onEnd);
    socket.resume();
  });
}
