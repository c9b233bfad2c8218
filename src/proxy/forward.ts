/**
 * Absolute-form requests (`GET http://host/path HTTP/1.1`, RFC 9112 §3.2.2): forwarded in origin-form with the
 * hop-by-hop fields removed and a Via entry added (RFC 9110 §7.6), the body streamed as it comes (framing
 * untouched, tracked only to know where it ends), and the upstream's answer passed back the same way. A WebSocket
 * `Upgrade` is forwarded as such and gets the upstream's own `101` (not a CONNECT-style 200), after which both
 * directions are relayed raw. One exchange per connection: both answers carry `Connection: close`.
 */
import type net from 'node:net';
import { RemoteProtocolError } from '../errors.js';
import { formatHost, unbracket, type Authority } from '../protocol/authority.js';
import { BodyTracker, requestFraming } from '../protocol/body.js';
import { getHeader, hasToken } from '../protocol/headers.js';
import { ResponseHeadReader, serializeHead, type RequestHead, type ResponseHead } from '../protocol/head.js';
import type { ProxyFailure } from './error-response.js';
import { endToEnd, withVia } from './hop-by-hop.js';
import type { Tunnel } from './relay.js';

export interface ForwardTarget {
  readonly authority: Authority;
  /** The request-target to send upstream (origin-form). */
  readonly path: string;
  /** The Host field value for the upstream. */
  readonly hostHeader: string;
  /** The Upgrade value when this is an upgrade request (a WebSocket handshake), else undefined. */
  readonly upgrade: string | undefined;
}

function badRequest(summary: string, hint: string): RemoteProtocolError {
  return new RemoteProtocolError(summary, { hop: 'server', hint });
}

/** Parses an absolute-form target; origin-form (a request to the proxy itself) and https: are a clear 400. */
export function parseForwardTarget(head: RequestHead): ForwardTarget {
  const t = head.target;
  if (t.startsWith('/') || t === '*') {
    throw badRequest(
      `this is a forward proxy, and ${head.method} ${t.slice(0, 100)} asks it for one of its own pages`,
      'configure this address as an HTTP proxy in the client (http_proxy, --proxy), or send CONNECT host:port',
    );
  }
  const m = /^([a-z][a-z0-9+.-]*):\/\//i.exec(t);
  const scheme = m?.[1]?.toLowerCase();
  if (scheme !== 'http' && scheme !== 'ws') {
    throw badRequest(
      `cannot forward ${JSON.stringify(t.slice(0, 100))}: only http:// and ws:// requests are forwarded`,
      'for https:// and wss://, clients send CONNECT host:443 and speak TLS through the tunnel',
    );
  }
  let url: URL;
  try {
    url = new URL(t);
  } catch {
    throw badRequest(
      `cannot parse the request-target ${JSON.stringify(t.slice(0, 100))}`,
      'expected http://host[:port]/path',
    );
  }
  if (url.username || url.password)
    throw badRequest(
      'the request-target carries credentials',
      'credentials go in Proxy-Authorization, never the URL',
    );
  const host = unbracket(url.hostname).toLowerCase();
  const port = url.port === '' ? 80 : Number(url.port);
  const upgrade =
    hasToken(head.headers, 'connection', 'upgrade') && getHeader(head.headers, 'upgrade') !== undefined
      ? (getHeader(head.headers, 'upgrade') as string)
      : undefined;
  return {
    authority: { host, port },
    path: `${url.pathname}${url.search}`,
    hostHeader: url.port === '' ? formatHost(host) : `${formatHost(host)}:${port}`,
    upgrade,
  };
}

/** Interim (1xx) heads passed on before the final one; more is an upstream misbehaving (RFC 9110 §15.2). */
export const MAX_INTERIM_RESPONSES = 16;

export interface ForwardOptions {
  readonly client: net.Socket;
  readonly upstream: net.Socket;
  readonly head: RequestHead;
  readonly leftover: Buffer;
  readonly target: ForwardTarget;
  readonly name: string;
  /** How long to wait for the upstream's response head; 0: forever. */
  readonly responseTimeout: number;
  /** The response head was forwarded: relay from here (both ways after a 101). */
  readonly onResponse: (status: number, upgraded: boolean) => Tunnel;
  /** Nothing but interim heads was sent to the client yet: answer this error instead. */
  readonly onFailure: (f: ProxyFailure) => void;
}

/**
 * One forwarded exchange, from the request head sent upstream to the response head passed back: the request body
 * streamed with backpressure, interim heads passed on with backpressure and a bound, then the relay takes over.
 * It ends exactly once: in `#respond` (the relay owns both sockets from there) or in `#fail`.
 */
export class ForwardExchange {
  readonly #o: ForwardOptions;
  readonly #body: BodyTracker;
  #reader: ResponseHeadReader;
  #interim = 0;
  #timer: NodeJS.Timeout | undefined;
  /** The final response head was passed on (the relay owns the sockets), or the exchange failed. */
  #settled = false;
  readonly #onBody = (chunk: Buffer): void => this.#receiveBody(chunk);
  readonly #onUpstreamDrain = (): void => void this.#o.client.resume();
  readonly #onClientDrain = (): void => void this.#o.upstream.resume();
  readonly #onData = (chunk: Buffer): void => this.#receiveResponse(chunk);
  readonly #onClose = (): void =>
    this.#fail({
      status: 502,
      error: 'http_response_incomplete',
      details: `server ${this.#o.target.hostHeader} closed the connection before its response head`,
      reason: 'upstream',
    });
  // A FIN is not the whole request: what reached the server is truncated, and it must not answer it (the body
  // reader's own error, like a malformed chunk).
  readonly #onClientEnd = (): void => {
    if (this.#body.done || this.#settled) return;
    this.#badBody(
      badRequest('the client ended the connection before the request body was complete', 'send it whole'),
    );
  };
  // The client left while the server was still thinking: nobody is waiting for the answer any more.
  readonly #onClientGone = (): void =>
    this.#fail({
      status: 502,
      error: 'connection_terminated',
      details: 'the client closed first',
      reason: 'upstream',
    });

  constructor(o: ForwardOptions) {
    this.#o = o;
    this.#body = new BodyTracker(requestFraming(o.head, 'the client'), { peer: 'the client', hop: 'server' });
    this.#reader = this.#newReader();
  }

  /** Sends the request upstream, starts streaming its body, and waits for the answer. */
  start(): void {
    const { client, upstream } = this.#o;
    client.on('close', this.#onClientGone);
    upstream.on('data', this.#onData);
    upstream.on('close', this.#onClose);
    // The upstream is half-open: a FIN before the head is the same failure as a close, and it never closes alone.
    upstream.on('end', this.#onClose);
    upstream.on('error', ignore);
    this.#armTimeout();
    upstream.write(this.#requestHead());
    if (this.#o.target.upgrade === undefined) this.#startBody();
    if (!this.#settled) upstream.resume();
  }

  #newReader(): ResponseHeadReader {
    return new ResponseHeadReader({ peer: `server ${this.#o.target.hostHeader}`, hop: 'server' });
  }

  #requestHead(): Buffer {
    const { head, target } = this.#o;
    const headers = endToEnd(head.headers).filter(([k]) => k.toLowerCase() !== 'host');
    // RFC 9112 §3.2.2: a proxy replaces Host with the authority of the absolute-form target.
    headers.unshift(['Host', target.hostHeader]);
    // `close` beside `Upgrade` (RFC 9110 §7.6.1): a server that answers without switching (a 200, a 4xx) closes
    // after its answer, which is how the relay, reading no framing, knows the exchange is over.
    if (target.upgrade !== undefined)
      headers.push(['Connection', 'Upgrade, close'], ['Upgrade', target.upgrade]);
    else headers.push(['Connection', 'close']);
    withVia(headers, head.version, this.#o.name);
    return serializeHead(`${head.method} ${target.path} HTTP/1.1`, headers);
  }

  #armTimeout(): void {
    const ms = this.#o.responseTimeout;
    if (ms <= 0) return;
    this.#timer = setTimeout(
      () =>
        this.#fail({
          status: 504,
          error: 'http_response_timeout',
          details: `server ${this.#o.target.hostHeader} sent no response head within ${ms} ms`,
          reason: 'timeout',
        }),
      ms,
    );
  }

  // The request body, streamed with backpressure; anything after its end (a pipelined request) is read and
  // dropped, since the answer closes the connection. Reading on also notices a client that resets meanwhile.
  #startBody(): void {
    const { client, upstream } = this.#o;
    client.on('data', this.#onBody);
    if (!this.#body.done) upstream.on('drain', this.#onUpstreamDrain);
    this.#receiveBody(this.#o.leftover);
    // The FIN may have come with the head, its 'end' event already past.
    if (client.readableEnded) this.#onClientEnd();
    else client.once('end', this.#onClientEnd);
    if (!this.#settled) client.resume();
  }

  #receiveBody(chunk: Buffer): void {
    let step;
    try {
      step = this.#body.receive(chunk);
    } catch (e) {
      return this.#badBody(e);
    }
    if (step.body.length > 0 && !this.#o.upstream.write(step.body)) this.#o.client.pause();
    if (step.done) this.#o.upstream.removeListener('drain', this.#onUpstreamDrain);
  }

  /** The client's body cannot be framed: the upstream got a truncated request and must not answer it. */
  #badBody(e: unknown): void {
    const { client, upstream } = this.#o;
    if (!this.#settled)
      return this.#fail({
        status: 400,
        error: 'http_request_error',
        details: e instanceof RemoteProtocolError ? e.summary : 'the request body could not be parsed',
        reason: 'protocol',
      });
    // The answer is already under way: nothing can be said any more, both sides are cut.
    client.removeListener('data', this.#onBody);
    client.destroy();
    upstream.destroy();
  }

  #receiveResponse(chunk: Uint8Array): void {
    let rest: Uint8Array = chunk;
    while (!this.#settled && rest.length > 0) {
      let r;
      try {
        r = this.#reader.receive(rest);
      } catch (e) {
        return this.#fail({
          status: 502,
          error: 'http_protocol_error',
          details: e instanceof RemoteProtocolError ? e.summary : 'the server sent an invalid response',
          reason: 'upstream',
        });
      }
      if (!r) return;
      const upgraded = r.head.status === 101 && this.#o.target.upgrade !== undefined;
      if (r.head.status >= 200 || upgraded) return this.#respond(r.head, r.leftover, upgraded);
      this.#passInterim(r.head);
      rest = r.leftover;
    }
  }

  /**
   * RFC 9110 §15.2: interim responses (100 Continue, 103 Early Hints) are forwarded, hop-by-hop fields removed and
   * Via added like any other; the final response is read from what follows. A client that does not read pauses
   * the upstream (the write's return value), and an upstream that sends interim heads without end gets a 502.
   */
  #passInterim(res: ResponseHead): void {
    const { client, upstream } = this.#o;
    if (++this.#interim > MAX_INTERIM_RESPONSES)
      return this.#fail({
        status: 502,
        error: 'http_protocol_error',
        details: `server ${this.#o.target.hostHeader} sent more than ${MAX_INTERIM_RESPONSES} interim (1xx) responses`,
        reason: 'upstream',
      });
    const interim = endToEnd(res.headers);
    withVia(interim, res.version, this.#o.name);
    if (!client.write(serializeHead(`HTTP/1.1 ${res.status} ${res.reason}`, interim))) {
      upstream.pause();
      client.once('drain', this.#onClientDrain);
    }
    this.#reader = this.#newReader();
  }

  /** The final response head: passed on, and the relay takes both sockets over. */
  #respond(res: ResponseHead, rest: Uint8Array, upgraded: boolean): void {
    const { client, upstream, target } = this.#o;
    this.#settle();
    upstream.pause();
    const out = endToEnd(res.headers);
    if (upgraded)
      out.push(
        ['Connection', 'Upgrade'],
        ['Upgrade', getHeader(res.headers, 'upgrade') ?? target.upgrade ?? ''],
      );
    else out.push(['Connection', 'close']);
    withVia(out, res.version, this.#o.name);
    client.write(serializeHead(`HTTP/1.1 ${res.status} ${res.reason}`, out));
    // A client should wait for the 101 before sending frames (RFC 6455 §4.1); whatever came early is passed on.
    if (upgraded && this.#o.leftover.length > 0) upstream.write(this.#o.leftover);
    if (rest.length > 0) client.write(rest);
    this.#o.onResponse(res.status, upgraded);
  }

  #fail(f: ProxyFailure): void {
    if (this.#settled) return;
    this.#settle();
    this.#o.client.removeListener('data', this.#onBody);
    this.#o.upstream.removeListener('drain', this.#onUpstreamDrain);
    this.#o.upstream.destroy();
    this.#o.onFailure(f);
  }

  /** Removes the handlers that wait for the response head; the body feed stays until the body ends. */
  #settle(): void {
    this.#settled = true;
    clearTimeout(this.#timer);
    const { client, upstream } = this.#o;
    upstream.removeListener('data', this.#onData);
    upstream.removeListener('close', this.#onClose);
    upstream.removeListener('end', this.#onClose);
    upstream.removeListener('error', ignore);
    client.removeListener('close', this.#onClientGone);
    client.removeListener('drain', this.#onClientDrain);
  }
}

/** Keeps an error on the upstream from being thrown before the relay adds its own handler. */
function ignore(): void {}

/** Starts a forwarded exchange (see {@link ForwardExchange}). */
export function startForward(o: ForwardOptions): ForwardExchange {
  const x = new ForwardExchange(o);
  x.start();
  return x;
}
