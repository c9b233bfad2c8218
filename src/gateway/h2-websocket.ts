/**
 * WebSockets over HTTP/2 (RFC 8441): the server announces SETTINGS_ENABLE_CONNECT_PROTOCOL (§3), a client opens a
 * stream with `:method CONNECT` and `:protocol websocket` (§4), and a 200 answers it (§5). Upstreams speak
 * HTTP/1.1, so each stream is bridged to an ordinary upgrade there: a fresh Sec-WebSocket-Key (§5 says the h2
 * request has none), the upstream's 101 checked, then the stream and the upstream socket relayed as raw frames —
 * the framing inside is the same RFC 6455 framing on both sides (§5).
 *
 * Other HTTP/2 requests are answered 421 Misdirected Request with `Alt-Svc`-free advice to use HTTP/1.1: the
 * gateway proxies plain HTTP over HTTP/1.1 only.
 */
import { createHash, randomBytes } from 'node:crypto';
import http2 from 'node:http2';
import { getHeader } from '../protocol/headers.js';
import { serializeHead } from '../protocol/head.js';
import { routeKeepalive, routeOrigins } from './config.js';
import { isTrusted, upstreamHeaders } from './forwarded.js';
import { applyHeaderOptions, upstreamTarget } from './route-table.js';
import type { Runtime } from './runtime.js';
import { connectPool, readResponseHead } from './upstream-connect.js';
import { originAllowed, startWebSocketSession } from './websocket-session.js';

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** An HTTP/2 server that is fed TLS sockets already negotiated to h2. */
export function createH2Server(rt: Runtime): http2.Http2Server {
  const server = http2.createServer({ settings: { enableConnectProtocol: true } });
  server.on(
    'stream',
    (
      stream: http2.ServerHttp2Stream,
      headers: http2.IncomingHttpHeaders,
      _flags: number,
      rawHeaders: string[],
    ) => {
      stream.on('error', () => stream.destroy());
      const remoteAddress = stream.session?.socket.remoteAddress ?? '';
      if (headers[':method'] !== 'CONNECT' || headers[':protocol'] !== 'websocket') {
        stream.respond({ ':status': 421, 'content-type': 'text/plain' });
        stream.end('this gateway proxies HTTP/2 WebSockets (RFC 8441); use HTTP/1.1 for other requests\n');
        return;
      }
      bridge(rt, stream, headers, rawHeaders, remoteAddress).catch(() => {
        // A fault of ours answers this stream only: the session and the process go on.
        rt.metrics.refused.inc({ reason: 'internal_error' });
        refuse(stream, 500, 'internal gateway error');
        stream.destroy();
      });
    },
  );
  server.on('sessionError', () => {});
  return server;
}

function refuse(stream: http2.ServerHttp2Stream, status: number, message: string): void {
  if (stream.destroyed || stream.headersSent) return;
  stream.respond({ ':status': status, 'content-type': 'text/plain' });
  stream.end(`${message}\n`);
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
  const m = rt.metrics;
  if (!route) {
    m.refused.inc({ reason: 'no_route' });
    return refuse(stream, 404, 'no route for this path');
  }
  const origin = headers.origin === undefined ? undefined : String(headers.origin);
  if (!originAllowed(routeOrigins(snap.config, route), origin)) {
    m.refused.inc({ reason: 'origin' });
    return refuse(stream, 403, 'origin not allowed');
  }
  if (rt.draining) {
    m.refused.inc({ reason: 'draining' });
    return refuse(stream, 503, 'the gateway is shutting down');
  }
  // The HTTP/1.1 request the upstream expects: regular fields as sent, pseudo-fields turned into Host.
  const fields: [string, string][] = [['Host', String(headers[':authority'] ?? '')]];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const k = raw[i] as string;
    if (k.startsWith(':') || k === 'sec-websocket-key') continue;
    fields.push([k, raw[i + 1] as string]);
  }
  const key = randomBytes(16).toString('base64');
  fields.push(['Upgrade', 'websocket'], ['Connection', 'Upgrade'], ['Sec-WebSocket-Key', key]);
  if (getHeader(fields, 'sec-websocket-version') === undefined) fields.push(['Sec-WebSocket-Version', '13']);
  const pool = snap.pools.get(route.name);
  if (!pool) return refuse(stream, 404, 'no route for this path');
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
    m.refused.inc({ reason: 'upstream_unavailable' });
    return refuse(stream, 502, 'no upstream available');
  }
  const upstream = conn.socket;
  const out = upstreamHeaders(
    fields,
    { address, proto: 'https' },
    {
      trusted: isTrusted(address, snap.config.trustProxy),
      upgrade: true,
    },
  );
  const target = upstreamTarget(route, conn.upstream, path);
  upstream.write(serializeHead(`GET ${target} HTTP/1.1`, applyHeaderOptions(out, route.options)));
  let res;
  try {
    res = await readResponseHead(upstream, {
      peer: `upstream ${conn.upstream.url}`,
      maxHeadBytes: 32 * 1024,
      timeout: snap.config.limits.handshakeTimeout,
    });
  } catch {
    upstream.destroy();
    m.refused.inc({ reason: 'upstream_unavailable' });
    return refuse(stream, 502, 'the upstream did not answer the upgrade');
  }
  const accept = createHash('sha1')
    .update(key + WS_GUID)
    .digest('base64');
  if (res.head.status !== 101 || getHeader(res.head.headers, 'sec-websocket-accept') !== accept) {
    upstream.destroy();
    m.refused.inc({ reason: 'upstream_rejected' });
    return refuse(
      stream,
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
      client: address,
      route: route.name,
      upstream: conn.upstream.url,
      path: path.split('?')[0] ?? '',
      status: 200,
      started,
    },
    { fromUpstream: res.leftover, fromClient: new Uint8Array(0) },
  );
  upstream.resume();
}
