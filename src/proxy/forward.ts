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
import { ResponseHeadReader, serializeHead, type RequestHead } from '../protocol/head.js';
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

export interface ForwardExchange {
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
  /** Nothing was sent to the client yet: answer this error instead. */
  readonly onFailure: (f: ProxyFailure) => void;
}

/** Sends the request upstream, streams its body, and hands the answer to the relay. */
export function startForward(x: ForwardExchange): void {
  const { client, upstream, head, target } = x;
  const headers = endToEnd(head.headers).filter(([k]) => k.toLowerCase() !== 'host');
  // RFC 9112 §3.2.2: a proxy replaces Host with the authority of the absolute-form target.
  headers.unshift(['Host', target.hostHeader]);
  if (target.upgrade !== undefined) headers.push(['Connection', 'Upgrade'], ['Upgrade', target.upgrade]);
  else headers.push(['Connection', 'close']);
  withVia(headers, head.version, x.name);
  upstream.write(serializeHead(`${head.method} ${target.path} HTTP/1.1`, headers));

  // The request body, streamed with backpressure; anything after its end (a pipelined request) is read and
  // dropped, since the answer closes the connection. Reading on also notices a client that resets meanwhile.
  const body = new BodyTracker(requestFraming(head, 'the client'), { peer: 'the client', hop: 'server' });
  const feed = (chunk: Buffer): void => {
    const step = body.receive(chunk);
    if (step.body.length > 0 && !upstream.write(step.body)) client.pause();
    if (step.done) upstream.removeListener('drain', onDrain);
  };
  const onBody = (chunk: Buffer): void => {
    try {
      feed(chunk);
    } catch {
      client.destroy();
      upstream.destroy();
    }
  };
  const onDrain = (): void => void client.resume();
  if (target.upgrade === undefined) {
    try {
      feed(x.leftover);
    } catch {
      client.destroy();
      upstream.destroy();
      return;
    }
    client.on('data', onBody);
    if (!body.done) upstream.on('drain', onDrain);
    client.resume();
  }

  const newReader = (): ResponseHeadReader =>
    new ResponseHeadReader({ peer: `server ${target.hostHeader}`, hop: 'server' });
  let reader = newReader();
  let timer: NodeJS.Timeout | undefined;
  const done = (): void => {
    clearTimeout(timer);
    upstream.removeListener('data', onData);
    upstream.removeListener('close', onClose);
    upstream.removeListener('error', onError);
    client.removeListener('close', onClientGone);
  };
  const failed = (f: ProxyFailure): void => {
    done();
    client.removeListener('data', onBody);
    upstream.destroy();
    x.onFailure(f);
  };
  const onData = (chunk: Buffer): void => {
    let r;
    try {
      r = reader.receive(chunk);
    } catch (e) {
      return failed({
        status: 502,
        error: 'http_protocol_error',
        details: e instanceof RemoteProtocolError ? e.summary : 'the server sent an invalid response',
        reason: 'upstream',
      });
    }
    if (!r) return;
    const res = r.head;
    const upgraded = res.status === 101 && target.upgrade !== undefined;
    if (res.status >= 100 && res.status < 200 && !upgraded) {
      // RFC 9110 §15.2: interim responses (100 Continue, 103 Early Hints) are forwarded, hop-by-hop fields
      // removed and Via added like any other; the final response is read from what follows.
      const interim = endToEnd(res.headers);
      withVia(interim, res.version, x.name);
      client.write(serializeHead(`HTTP/1.1 ${res.status} ${res.reason}`, interim));
      reader = newReader();
      if (r.leftover.length > 0) onData(Buffer.from(r.leftover));
      return;
    }
    done();
    upstream.pause();
    const out = endToEnd(res.headers);
    if (upgraded)
      out.push(
        ['Connection', 'Upgrade'],
        ['Upgrade', getHeader(res.headers, 'upgrade') ?? target.upgrade ?? ''],
      );
    else out.push(['Connection', 'close']);
    withVia(out, res.version, x.name);
    client.write(serializeHead(`HTTP/1.1 ${res.status} ${res.reason}`, out));
    // A client should wait for the 101 before sending frames (RFC 6455 §4.1); whatever came early is passed on.
    if (upgraded && x.leftover.length > 0) upstream.write(x.leftover);
    if (r.leftover.length > 0) client.write(r.leftover);
    x.onResponse(res.status, upgraded);
  };
  const onClose = (): void =>
    failed({
      status: 502,
      error: 'http_response_incomplete',
      details: `server ${target.hostHeader} closed the connection before its response head`,
      reason: 'upstream',
    });
  const onError = (): void => {};
  // The client left while the server was still thinking: nobody is waiting for the answer any more.
  const onClientGone = (): void =>
    failed({
      status: 502,
      error: 'connection_terminated',
      details: 'the client closed first',
      reason: 'upstream',
    });
  client.on('close', onClientGone);
  upstream.on('data', onData);
  upstream.on('close', onClose);
  upstream.on('error', onError);
  if (x.responseTimeout > 0)
    timer = setTimeout(
      () =>
        failed({
          status: 504,
          error: 'http_response_timeout',
          details: `server ${target.hostHeader} sent no response head within ${x.responseTimeout} ms`,
          reason: 'timeout',
        }),
      x.responseTimeout,
    );
  upstream.resume();
}
