/**
 * One client connection speaking HTTP/1.1 (plain, or inside TLS the gateway terminated): an optional PROXY
 * protocol header, then requests read with the shared head reader. A WebSocket upgrade is forwarded and, after
 * the upstream's 101, handed to the raw {@link WsRelay}; a plain request is proxied with its body streamed, one
 * upstream connection per request, and the client connection kept alive between requests when framing allows.
 */
import type { Duplex } from 'node:stream';
import { RemoteProtocolError } from '../errors.js';
import { BodyTracker, requestFraming, responseFraming, type BodyFraming } from '../protocol/body.js';
import {
  RequestHeadReader,
  serializeHead,
  type HeadResult,
  type RequestHead,
  type ResponseHead,
} from '../protocol/head.js';
import { getHeader, hasToken, headerTokens } from '../protocol/headers.js';
import { ProxyProtocolReader } from '../protocol/proxy-protocol.js';
import { clientName } from '../observe/access-log.js';
import { redactUrl } from '../observe/redact.js';
import { AdmissionRefusal, releaseOnClose } from '../serve/admission.js';
import { routeKeepalive, routeOrigins, type RouteSpec } from './config.js';
import { clientResponseHeaders, isTrusted, upstreamHeaders } from './forwarded.js';
import type { RefusalReason } from './gateway-metrics.js';
import { recordHttpExchange, recordRefusal, upstreamFailure } from './http-exchange.js';
import { applyHeaderOptions, upstreamTarget } from './route-table.js';
import type { Runtime, Snapshot } from './runtime.js';
import { connectPool, readResponseHead, retryable, type UpstreamConnection } from './upstream-connect.js';
import { logTarget, originAllowed, startWebSocketSession } from './websocket-session.js';

/** Upstream response heads: more room than requests get (Set-Cookie lists), still bounded. */
const RESPONSE_HEAD_LIMIT = 32 * 1024;

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  403: 'Forbidden',
  404: 'Not Found',
  408: 'Request Timeout',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/** A short error response, then the connection ends (RFC 9112 §9.6: `Connection: close`). */
export function sendError(
  socket: Duplex,
  status: number,
  message: string,
  headers: readonly (readonly [string, string])[] = [],
): void {
  if (socket.destroyed || !socket.writable) return;
  const body = `${message}\n`;
  socket.end(
    serializeHead(`HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}`, [
      ['Content-Type', 'text/plain; charset=utf-8'],
      ['Content-Length', String(Buffer.byteLength(body))],
      ['Connection', 'close'],
      ...headers,
    ]).toString('latin1') + body,
  );
}

const HEAD_TIMER = Symbol('wsvia.headTimer');

/** A client socket, with the timer of the request head it waits for (if any). */
type ClientSocket = Duplex & { [HEAD_TIMER]?: NodeJS.Timeout | undefined };

/*
 * Module-level handlers, so that once a WebSocket is relayed nothing of the connection's setup (this object, the
 * request) stays reachable from the socket: an idle WebSocket keeps only what the relay needs (issue 15).
 */
function destroyOnError(this: Duplex): void {
  this.destroy();
}

function clearHeadTimer(this: ClientSocket): void {
  clearTimeout(this[HEAD_TIMER]);
}

export interface Http1Options {
  readonly proto: 'http' | 'https';
  /** The socket's peer address (the PROXY protocol may replace it). */
  readonly remoteAddress: string;
  /** Bytes already read from the socket (a TLS sniff). */
  readonly initial?: Uint8Array;
  /** The TLS listener already counted this connection against the limits. */
  readonly admitted?: boolean;
}

export class Http1Connection {
  readonly #socket: ClientSocket;
  readonly #rt: Runtime;
  readonly #proto: 'http' | 'https';
  #address: string;
  #port: number | undefined;
  /** The request being handled, for its access-log line; undefined until its head is complete. */
  #request: { method: string; target: string } | undefined;
  #waitingSince = Date.now();
  #pp: ProxyProtocolReader | undefined;
  #reader: RequestHeadReader | undefined;
  #requests = 0;
  #received = 0;
  readonly #onData = (chunk: Buffer): void => this.#receive(chunk);

  constructor(socket: Duplex, rt: Runtime, options: Http1Options) {
    this.#socket = socket;
    this.#rt = rt;
    this.#proto = options.proto;
    this.#address = options.remoteAddress;
    this.#port = (socket as { remotePort?: number }).remotePort;
    const snap = rt.snapshot();
    this.#pp = snap.config.proxyProtocol ? new ProxyProtocolReader() : undefined;
    socket.on('error', destroyOnError);
    socket.on('close', clearHeadTimer);
    if (options.admitted) this.#pp = undefined;
    else if (!this.#pp && !this.#admit()) return;
    this.#waitForRequest(options.initial ?? new Uint8Array(0));
  }

  #newReader(snap: Snapshot): RequestHeadReader {
    return new RequestHeadReader(
      { peer: `client ${this.#address}`, hop: 'server' },
      { maxHeadBytes: snap.config.limits.maxHeaderBytes, maxHeaders: 100 },
    );
  }

  #admit(): boolean {
    const slot = this.#rt.admit(this.#address);
    if (slot instanceof AdmissionRefusal) {
      const why = slot.describe({ maxConnections: '--max-connections', maxPerClient: '--max-per-client' });
      const what = slot.reason === 'rate' ? 'too many new connections' : 'too many connections';
      this.#refuse(slot.reason, slot.status, `${what}: ${why}`, slot.headers);
      return false;
    }
    // Given back when the socket closes (at once if it closed while its PROXY header was read).
    releaseOnClose(this.#socket, slot);
    return true;
  }

  #refuse(
    reason: RefusalReason,
    status: number,
    message: string,
    headers: readonly (readonly [string, string])[] = [],
  ): void {
    this.#stopReading();
    recordRefusal(this.#rt, {
      client: this.#client,
      method: this.#request?.method ?? null,
      target: this.#request?.target ?? null,
      reason,
      status,
      started: this.#waitingSince,
    });
    sendError(this.#socket, status, message, headers);
    this.#closeAfterAnswer();
  }

  /**
   * The connection was ended after an answer. What the client still sends is read and dropped: a paused socket
   * never sees the client's FIN or reset, and would hold its admission slot for good. Once the answer is flushed,
   * a client that does not close is cut after 2 s.
   */
  #closeAfterAnswer(): void {
    const socket = this.#socket;
    socket.resume();
    const cut = (): void => void setTimeout(() => socket.destroy(), 2000).unref();
    if (socket.writableFinished) cut();
    else socket.once('finish', cut);
  }

  get #client(): string {
    return clientName(this.#address, this.#port);
  }

  #waitForRequest(leftover: Uint8Array): void {
    const ms = this.#rt.snapshot().config.limits.handshakeTimeout;
    this.#received = 0;
    this.#request = undefined;
    this.#waitingSince = Date.now();
    this.#socket[HEAD_TIMER] = setTimeout(() => {
      // A keep-alive connection that stays silent is simply closed; a request that stalls mid-head gets 408.
      if (this.#received === 0 && this.#requests > 0) this.#socket.destroy();
      else this.#refuse('handshake_timeout', 408, `no complete request head within ${ms} ms`);
    }, ms);
    this.#socket.on('data', this.#onData);
    if (leftover.length > 0) this.#receive(Buffer.from(leftover));
    this.#socket.resume();
  }

  #receive(chunk: Buffer): void {
    this.#received += chunk.length;
    let data: Uint8Array = chunk;
    if (this.#pp) {
      let r;
      try {
        r = this.#pp.receive(chunk);
      } catch {
        this.#stopReading();
        this.#rt.metrics.refused.inc({ reason: 'bad_request' });
        this.#socket.destroy();
        return;
      }
      if (!r) return;
      this.#pp = undefined;
      if (r.header.command === 'proxy' && r.header.source) {
        this.#address = r.header.source.address;
        this.#port = r.header.source.port;
      }
      if (!this.#admit()) return;
      data = r.leftover;
      if (data.length === 0) return;
    }
    let result;
    this.#reader ??= this.#newReader(this.#rt.snapshot());
    try {
      result = this.#reader.receive(data);
    } catch (e) {
      this.#stopReading();
      const status = e instanceof RemoteProtocolError ? e.statusHint : 400;
      this.#refuse(
        status === 431 ? 'header_too_large' : 'bad_request',
        status === 431 ? 431 : 400,
        'bad request',
      );
      return;
    }
    if (!result) return;
    this.#stopReading();
    // The reader's buffer is not needed until the next request (and never after an upgrade).
    this.#reader = undefined;
    this.#requests++;
    const { method, target } = result.head;
    this.#request = {
      method,
      target: target.startsWith('/') ? logTarget(undefined, target) : redactUrl(target.slice(0, 300)),
    };
    this.#handle(result.head, result.leftover).catch((err: unknown) => this.#internalError(err));
  }

  /** A fault of ours while handling one request answers that client (500) and nobody else: the process goes on. */
  #internalError(_err: unknown): void {
    if (this.#socket.destroyed) return;
    this.#refuse('internal_error', 500, 'internal gateway error');
  }

  #stopReading(): void {
    clearTimeout(this.#socket[HEAD_TIMER]);
    this.#socket[HEAD_TIMER] = undefined;
    this.#socket.removeListener('data', this.#onData);
    this.#socket.pause();
  }

  async #handle(head: RequestHead, leftover: Uint8Array): Promise<void> {
    const snap = this.#rt.snapshot();
    if (!head.target.startsWith('/')) {
      this.#refuse('bad_request', 400, 'the gateway accepts origin-form request targets only');
      return;
    }
    const route = snap.table.match(head.target, getHeader(head.headers, 'host'));
    if (!route) {
      this.#refuse('no_route', 404, 'no route for this path');
      return;
    }
    let framing;
    try {
      // Before any upstream is reached, upgrade or not: a Connection header naming a framing field is refused.
      framing = requestFraming(head, `client ${this.#address}`);
    } catch {
      this.#refuse('bad_request', 400, 'bad request framing');
      return;
    }
    const upgrade =
      hasToken(head.headers, 'connection', 'upgrade') &&
      headerTokens(head.headers, 'upgrade').includes('websocket');
    if (upgrade) await this.#upgrade(snap, route, head, leftover);
    else await this.#http(snap, route, head, leftover, framing);
  }

  /** The request head bound for `conn`'s upstream: its target rewritten, its fields filtered and added to. */
  #upstreamHead(
    snap: Snapshot,
    route: RouteSpec,
    conn: UpstreamConnection,
    head: RequestHead,
    upgrade: boolean,
  ): Buffer {
    const headers = upstreamHeaders(
      head.headers,
      { address: this.#address, proto: this.#proto },
      { trusted: this.#trusted(snap), upgrade },
    );
    const target = upstreamTarget(route, conn.upstream, head.target);
    return serializeHead(`${head.method} ${target} HTTP/1.1`, applyHeaderOptions(headers, route.options));
  }

  /**
   * Connects to the route's upstream. Undefined when none could be reached (already answered) or the client left
   * meanwhile. Until the caller removes `onClientClose` from the client's 'close', the client leaving closes it.
   */
  async #connect(
    snap: Snapshot,
    route: RouteSpec,
    head: RequestHead,
    warm = false,
  ): Promise<{ conn: UpstreamConnection; upstream: Duplex; onClientClose: () => void } | undefined> {
    const conn = await this.#reachUpstream(snap, route, head, warm);
    if (!conn) return undefined;
    const upstream = conn.socket;
    if (this.#socket.destroyed) {
      upstream.destroy();
      return undefined;
    }
    const onClientClose = (): void => {
      upstream.destroy();
    };
    this.#socket.once('close', onClientClose);
    return { conn, upstream, onClientClose };
  }

  /** `warm`: a connection dialed ahead may serve (a WebSocket upgrade, which can be sent again if it was closed). */
  async #reachUpstream(
    snap: Snapshot,
    route: RouteSpec,
    head: RequestHead,
    warm: boolean,
  ): Promise<UpstreamConnection | undefined> {
    const pool = snap.pools.get(route.name);
    if (!pool) throw new Error(`no pool for ${route.name}`);
    const rt = this.#rt;
    try {
      return await connectPool(
        pool,
        {
          connectTimeout: snap.config.limits.connectTimeout,
          ca: snap.ca,
          markDead: (u, code) => rt.markDead(u, code),
          warm: warm ? rt.warm : undefined,
        },
        { address: this.#address, headers: head.headers, target: head.target },
      );
    } catch (e) {
      const f = upstreamFailure(e);
      this.#refuse(f.reason, f.status, f.message);
      return undefined;
    }
  }

  /** From here on the access log names the upstream, not only the path. */
  #upstreamChosen(conn: UpstreamConnection, head: RequestHead): void {
    this.#request = { method: head.method, target: logTarget(conn.upstream.url, head.target) };
  }

  #trusted(snap: Snapshot): boolean {
    return isTrusted(this.#address, snap.config.trustProxy);
  }

  async #upgrade(snap: Snapshot, route: RouteSpec, head: RequestHead, leftover: Uint8Array): Promise<void> {
    const started = Date.now();
    if (!originAllowed(routeOrigins(snap.config, route), getHeader(head.headers, 'origin'))) {
      this.#refuse('origin', 403, 'origin not allowed');
      return;
    }
    if (this.#rt.draining) {
      this.#refuse('draining', 503, 'the gateway is shutting down');
      return;
    }
    if (head.version !== '1.1') {
      this.#refuse('bad_request', 400, 'WebSocket upgrades need HTTP/1.1');
      return;
    }
    const reached = await this.#connect(snap, route, head, true);
    if (!reached) return;
    try {
      await this.#completeUpgrade(snap, route, head, leftover, reached, started);
    } finally {
      // The pool dials the replacement of a warm connection once its answer is relayed (the 101 on its way, or
      // a refusal), not between the request and the answer: that dial delayed the answer.
      if (reached.conn.warm === true) this.#rt.warm?.answered?.(reached.conn.upstream);
    }
  }

  async #completeUpgrade(
    snap: Snapshot,
    route: RouteSpec,
    head: RequestHead,
    leftover: Uint8Array,
    first: { conn: UpstreamConnection; upstream: Duplex; onClientClose: () => void },
    started: number,
  ): Promise<void> {
    let reached = first;
    let res = await this.#askUpgrade(snap, route, head, reached);
    if (res === 'retry') {
      // The warm connection was closed by the upstream as it was taken: once more, on a fresh one.
      const again = await this.#connect(snap, route, head);
      if (!again) return;
      reached = again;
      res = await this.#askUpgrade(snap, route, head, reached);
    }
    if (res === undefined || res === 'retry') return;
    const { conn, upstream } = reached;
    const client = this.#socket;
    if (res.head.status !== 101) {
      this.#rt.metrics.refused.inc({ reason: 'upstream_rejected' });
      this.#relayResponse(snap, route, conn, head, res.head, res.leftover, {
        error: 'upstream_rejected',
        keepAlive: false,
        started,
        bodyDone: true,
      });
      return;
    }
    client.write(serializeHead(`HTTP/1.1 101 ${res.head.reason || 'Switching Protocols'}`, res.head.headers));
    startWebSocketSession(
      this.#rt,
      routeKeepalive(snap.config, route),
      client,
      upstream,
      {
        client: this.#client,
        route: route.name,
        upstream: conn.upstream.url,
        path: head.target.split('?')[0] ?? '',
        status: 101,
        started,
      },
      { fromUpstream: res.leftover, fromClient: leftover },
    );
  }

  /**
   * Sends the upgrade request on `reached` and reads the upstream's answer. Undefined when it failed (answered
   * 502) or the client left; `retry` when a warm connection failed before the upstream's first byte.
   */
  async #askUpgrade(
    snap: Snapshot,
    route: RouteSpec,
    head: RequestHead,
    reached: { conn: UpstreamConnection; upstream: Duplex; onClientClose: () => void },
  ): Promise<HeadResult<ResponseHead> | 'retry' | undefined> {
    const { conn, upstream, onClientClose } = reached;
    this.#upstreamChosen(conn, head);
    const client = this.#socket;
    upstream.write(this.#upstreamHead(snap, route, conn, head, true));
    let res;
    try {
      res = await readResponseHead(upstream, {
        peer: `upstream ${conn.upstream.url}`,
        maxHeadBytes: RESPONSE_HEAD_LIMIT,
        timeout: snap.config.limits.handshakeTimeout,
        interimTo: client,
      });
    } catch (e) {
      client.removeListener('close', onClientClose);
      upstream.destroy();
      if (retryable(conn, e) && !client.destroyed) return 'retry';
      this.#refuse('upstream_unavailable', 502, 'the upstream did not answer the upgrade');
      return undefined;
    }
    client.removeListener('close', onClientClose);
    if (client.destroyed) {
      upstream.destroy();
      return undefined;
    }
    return res;
  }

  async #http(
    snap: Snapshot,
    route: RouteSpec,
    head: RequestHead,
    leftover: Uint8Array,
    framing: BodyFraming,
  ): Promise<void> {
    const started = Date.now();
    const reached = await this.#connect(snap, route, head);
    if (!reached) return;
    const { conn, upstream, onClientClose } = reached;
    this.#upstreamChosen(conn, head);
    const client = this.#socket;
    upstream.on('error', () => {
      upstream.destroy();
    });
    upstream.write(this.#upstreamHead(snap, route, conn, head, false));

    // The request body, streamed with backpressure; what follows it is the next pipelined request.
    const body = new BodyTracker(framing, { peer: `client ${this.#address}`, hop: 'server' });
    let next: Uint8Array = new Uint8Array(0);
    let bodyDone = body.done;
    if (bodyDone) next = leftover;
    let bytesIn = 0;
    const onDrain = (): void => {
      client.resume();
    };
    const feed = (chunk: Uint8Array): void => {
      let step;
      try {
        step = body.receive(chunk);
      } catch {
        client.destroy();
        return;
      }
      bytesIn += step.body.length;
      const ok = step.body.length === 0 || upstream.write(step.body);
      if (step.done) {
        bodyDone = true;
        next = step.leftover;
        client.removeListener('data', feed);
        upstream.removeListener('drain', onDrain);
        client.pause();
      } else if (!ok) client.pause();
    };
    if (!bodyDone) {
      if (leftover.length > 0) feed(leftover);
      if (!bodyDone) {
        client.on('data', feed);
        upstream.on('drain', onDrain);
        client.resume();
      }
    }
    let res;
    try {
      res = await readResponseHead(upstream, {
        peer: `upstream ${conn.upstream.url}`,
        maxHeadBytes: RESPONSE_HEAD_LIMIT,
        timeout: 0,
        interimTo: client,
      });
    } catch {
      client.removeListener('close', onClientClose);
      client.removeListener('data', feed);
      upstream.destroy();
      this.#refuse('upstream_unavailable', 502, 'the upstream did not answer');
      return;
    }
    client.removeListener('close', onClientClose);
    const wantsKeepAlive = head.version === '1.1' && !hasToken(head.headers, 'connection', 'close');
    this.#relayResponse(snap, route, conn, head, res.head, res.leftover, {
      keepAlive: wantsKeepAlive && !this.#rt.draining,
      started,
      bodyDone,
      next: () => next,
      stillReading: () => !bodyDone,
      bytesIn: () => bytesIn,
      stopFeeding: () => {
        client.removeListener('data', feed);
        upstream.removeListener('drain', onDrain);
      },
    });
  }

  /** Relays a response head and body to the client, then reads the next request or closes. */
  #relayResponse(
    snap: Snapshot,
    route: RouteSpec,
    conn: UpstreamConnection,
    request: RequestHead,
    response: import('../protocol/head.js').ResponseHead,
    leftover: Uint8Array,
    o: {
      keepAlive: boolean;
      started: number;
      /** The refusal reason when the upstream's answer refused an upgrade. */
      error?: RefusalReason;
      bodyDone: boolean;
      next?: () => Uint8Array;
      stillReading?: () => boolean;
      bytesIn?: () => number;
      stopFeeding?: () => void;
    },
  ): void {
    const client = this.#socket;
    const upstream = conn.socket;
    let framing;
    try {
      framing = responseFraming(response, request.method, `upstream ${conn.upstream.url}`, 'server');
    } catch {
      upstream.destroy();
      this.#refuse('upstream_unavailable', 502, 'the upstream sent an invalid response');
      return;
    }
    const keepAlive = o.keepAlive && framing.kind !== 'close';
    client.write(
      serializeHead(
        `HTTP/1.1 ${response.status} ${response.reason}`,
        clientResponseHeaders(response.headers, keepAlive),
      ),
    );
    const tracker = new BodyTracker(framing, { peer: `upstream ${conn.upstream.url}`, hop: 'server' });
    let bytesOut = 0;
    let finished = false;
    const done = (ok: boolean): void => {
      if (finished) return;
      finished = true;
      upstream.removeListener('data', onData);
      client.removeListener('drain', onDrain);
      upstream.destroy();
      recordHttpExchange(this.#rt, {
        client: this.#client,
        route: route.name,
        upstream: conn.upstream.url,
        method: request.method,
        target: request.target,
        status: response.status,
        bytesToUpstream: o.bytesIn?.() ?? 0,
        bytesToClient: bytesOut,
        started: o.started,
        complete: ok,
        error: o.error ?? null,
      });
      const reading = o.stillReading?.() ?? false;
      if (!ok || !keepAlive || reading || client.destroyed) {
        o.stopFeeding?.();
        if (!ok) return void client.destroy();
        client.end();
        this.#closeAfterAnswer();
        return;
      }
      this.#waitForRequest(o.next?.() ?? new Uint8Array(0));
    };
    const onDrain = (): void => {
      upstream.resume();
    };
    const onData = (chunk: Uint8Array): void => {
      let step;
      try {
        step = tracker.receive(chunk);
      } catch {
        done(false);
        return;
      }
      bytesOut += step.body.length;
      const ok = client.write(step.body);
      if (step.done) done(true);
      else if (!ok) upstream.pause();
    };
    client.on('drain', onDrain);
    upstream.once('end', () => {
      try {
        tracker.receiveEof();
        done(true);
      } catch {
        done(false);
      }
    });
    upstream.once('close', () => done(tracker.done));
    if (tracker.done) {
      done(true);
      return;
    }
    if (leftover.length > 0) onData(leftover);
    if (!finished) {
      upstream.on('data', onData);
      upstream.resume();
    }
  }
}
