/**
 * WebSockets over HTTP/2 (RFC 8441): the server announces SETTINGS_ENABLE_CONNECT_PROTOCOL (§3), a client opens a
 * stream with `:method CONNECT` and `:protocol websocket` (§4), and a 200 answers it (§5). Upstreams speak
 * HTTP/1.1, so each stream is bridged to an ordinary upgrade there: a fresh Sec-WebSocket-Key (§5 says the h2
 * request has none), the upstream's 101 checked, then the stream and the upstream socket relayed as raw frames —
 * the framing inside is the same RFC 6455 framing on both sides (§5).
 *
 * Other HTTP/2 requests are proxied as ordinary requests (h2-request.ts); a CONNECT for anything but a WebSocket
 * is refused with 405.
 */
import { createHash, randomBytes } from 'node:crypto';
import http2 from 'node:http2';
import { getHeader } from '../protocol/headers.js';
import { clientName } from '../observe/access-log.js';
import { recordRefusal } from './http-exchange.js';
import { serializeHead } from '../protocol/head.js';
import { routeKeepalive, routeOrigins } from './config.js';
import { isTrusted, upstreamHeaders } from './forwarded.js';
import { applyHeaderOptions, upstreamTarget } from './route-table.js';
import type { Runtime } from './runtime.js';
import type { PeerEnds } from './tls-listener.js';
import { forwardH2Request, http1Fields, refuseStream } from './h2-request.js';
import { connectPool, readResponseHead } from './upstream-connect.js';
import type { RefusalReason } from './gateway-metrics.js';
import { logTarget, originAllowed, startWebSocketSession } from './websocket-session.js';

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/**
 * One handler for every stream: a closure here would keep the request's scope (its headers, raw and parsed) alive
 * for as long as an idle WebSocket on the stream lives.
 */
function destroyOnError(this: http2.ServerHttp2Stream): void {
  this.destroy();
}

/** An HTTP/2 server that is fed TLS sockets already negotiated to h2. */
export function createH2Server(rt: Runtime, clientAddress: (socket: PeerEnds) => string): http2.Http2Server {
  const server = http2.createServer({ settings: { enableConnectProtocol: true } });
  server.on(
    'stream',
    (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, flags: number, raw: string[]) => {
      stream.on('error', destroyOnError);
      const socket = stream.session?.socket;
      const address = socket ? clientAddress(socket) : '';
      // A fault of ours answers this stream only: the session and the process go on.
      const internalError = (): void => {
        rt.metrics.refused.inc({ reason: 'internal_error' });
        refuseStream(stream, 500, 'internal gateway error');
        stream.destroy();
      };
      if (headers[':method'] !== 'CONNECT') {
        const endStream = (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0;
        forwardH2Request(rt, stream, headers, raw, address, endStream).catch(internalError);
        return;
      }
      if (headers[':protocol'] !== 'websocket') {
        rt.metrics.refused.inc({ reason: 'bad_request' });
        refuseStream(stream, 405, 'a reverse proxy does not tunnel CONNECT; only WebSockets (RFC 8441)');
        return;
      }
      bridge(rt, stream, headers, raw, address).catch(internalError);
    },
  );
  server.on('sessionError', () => {});
  return server;
}

async function bridge(
  rt: Runtime,
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
  raw: string[],
  address: string,
): Promise<void> {
  const started = Date.now();
  const snap = rt.snapshot();
  const path = String(headers[':path'] ?? '/');
  const authority = headers[':authority'] === undefined ? undefined : String(headers[':authority']);
  const route = snap.table.match(path, authority);
  const client = clientName(address, stream.session?.socket.remotePort);
  let target = logTarget(undefined, path);
  const deny = (reason: RefusalReason, status: number, message: string): void => {
    recordRefusal(rt, { client, method: 'CONNECT', target, reason, status, started });
    refuseStream(stream, status, message);
  };
  if (!route) {
    return deny('no_route', 404, 'no route for this path');
  }
  const origin = headers.origin === undefined ? undefined : String(headers.origin);
  if (!originAllowed(routeOrigins(snap.config, route), origin)) {
    return deny('origin', 403, 'origin not allowed');
  }
  if (rt.draining) {
    return deny('draining', 503, 'the gateway is shutting down');
  }
  // The HTTP/1.1 request the upstream expects: regular fields as sent, pseudo-fields turned into Host.
  const fields = http1Fields(headers, raw).filter(([k]) => k !== 'sec-websocket-key');
  const key = randomBytes(16).toString('base64');
  fields.push(['Upgrade', 'websocket'], ['Connection', 'Upgrade'], ['Sec-WebSocket-Key', key]);
  if (getHeader(fields, 'sec-websocket-version') === undefined) fields.push(['Sec-WebSocket-Version', '13']);
  const pool = snap.pools.get(route.name);
  if (!pool) return deny('no_route', 404, 'no route for this path');
  let conn;
  try {
    conn = await connectPool(
      pool,
      {
        connectTimeout: snap.config.limits.connectTimeout,
        ca: snap.ca,
        markDead: (u, code) => rt.markDead(u, code),
      },
      { address, headers: fields, target: path },
    );
  } catch {
    return deny('upstream_unavailable', 502, 'no upstream available');
  }
  const upstream = conn.socket;
  target = logTarget(conn.upstream.url, path);
  const out = upstreamHeaders(
    fields,
    { address, proto: 'https' },
    {
      trusted: isTrusted(address, snap.config.trustProxy),
      upgrade: true,
    },
  );
  const upstreamPath = upstreamTarget(route, conn.upstream, path);
  upstream.write(serializeHead(`GET ${upstreamPath} HTTP/1.1`, applyHeaderOptions(out, route.options)));
  let res;
  try {
    res = await readResponseHead(upstream, {
      peer: `upstream ${conn.upstream.url}`,
      maxHeadBytes: 32 * 1024,
      timeout: snap.config.limits.handshakeTimeout,
    });
  } catch {
    upstream.destroy();
    return deny('upstream_unavailable', 502, 'the upstream did not answer the upgrade');
  }
  const accept = createHash('sha1')
    .update(key + WS_GUID)
    .digest('base64');
  if (res.head.status !== 101 || getHeader(res.head.headers, 'sec-websocket-accept') !== accept) {
    upstream.destroy();
    return deny(
      'upstream_rejected',
      res.head.status === 101 ? 502 : res.head.status,
      'the upstream refused the WebSocket',
    );
  }
  if (stream.destroyed) {
    upstream.destroy();
    return;
  }
  const reply: http2.OutgoingHttpHeaders = { ':status': 200 };
  for (const name of ['sec-websocket-protocol', 'sec-websocket-extensions', 'set-cookie']) {
    const v = getHeader(res.head.headers, name);
    if (v !== undefined) reply[name] = v;
  }
  stream.respond(reply);
  startWebSocketSession(
    rt,
    routeKeepalive(snap.config, route),
    stream,
    upstream,
    {
      http: '2',
      client,
      route: route.name,
      upstream: conn.upstream.url,
      path: path.split('?')[0] ?? '',
      status: 200,
      started,
    },
    { fromUpstream: res.leftover, fromClient: new Uint8Array(0) },
  );
}
