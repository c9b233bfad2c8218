/**
 * Ordinary HTTP/2 requests on the TLS listener (everything but an RFC 8441 WebSocket), proxied to the route's
 * upstream over HTTP/1.1 as the HTTP/1 path proxies them (RFC 9113 §8.3 mapped to RFC 9112): `:authority` becomes
 * Host, split Cookie fields are joined (§8.2.3), the forwarding headers are added by the same code, one upstream
 * connection per request. The request body is streamed up (chunked when the client gave no length), the
 * response body down with its HTTP/1.1 framing removed, each direction paused while the other side is full.
 */
import http2 from 'node:http2';
import type { Duplex } from 'node:stream';
import { BodyTracker, responseFraming } from '../protocol/body.js';
import { serializeHead, type ResponseHead } from '../protocol/head.js';
import { getHeader, HOP_BY_HOP_FIELDS, headerTokens } from '../protocol/headers.js';
import type { RouteSpec } from './config.js';
import { isTrusted, upstreamHeaders } from './forwarded.js';
import type { RefusalReason } from './gateway-metrics.js';
import { clientName } from '../observe/access-log.js';
import { recordHttpExchange, recordRefusal, upstreamFailure } from './http-exchange.js';
import type { Runtime, Snapshot } from './runtime.js';
import { connectPool, readResponseHead, type UpstreamConnection } from './upstream-connect.js';

const RESPONSE_HEAD_LIMIT = 32 * 1024;
/** Fields HTTP/2 forbids (RFC 9113 §8.2.2): a response carrying them would be malformed. */
const CONNECTION_SPECIFIC = new Set<string>([...HOP_BY_HOP_FIELDS, 'transfer-encoding', 'http2-settings']);
const { NGHTTP2_CANCEL, NGHTTP2_INTERNAL_ERROR } = http2.constants;

/** A plain text answer of the gateway's own, unless the stream is gone or already answered. */
export function refuseStream(stream: http2.ServerHttp2Stream, status: number, message: string): void {
  if (stream.destroyed || stream.headersSent) return;
  stream.respond({ ':status': status, 'content-type': 'text/plain; charset=utf-8' });
  stream.end(`${message}\n`);
}

/** The HTTP/1.1 request fields for an HTTP/2 request: pseudo-fields out, Host in, Cookie fields joined. */
export function http1Fields(headers: http2.IncomingHttpHeaders, raw: readonly string[]): [string, string][] {
  const host = headers[':authority'] ?? headers.host;
  const fields: [string, string][] = host === undefined ? [] : [['Host', String(host)]];
  const cookies: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const k = raw[i] as string;
    const v = raw[i + 1] as string;
    if (k.startsWith(':') || k === 'host') continue;
    if (k === 'cookie') cookies.push(v);
    else fields.push([k, v]);
  }
  if (cookies.length > 0) fields.push(['Cookie', cookies.join('; ')]);
  return fields;
}

/** The upstream's response fields as HTTP/2 allows them: connection-specific ones, and those it names, dropped. */
function h2ResponseHeaders(head: ResponseHead): http2.OutgoingHttpHeaders {
  const named = new Set(headerTokens(head.headers, 'connection'));
  const out: http2.OutgoingHttpHeaders = { ':status': head.status };
  for (const [k, v] of head.headers) {
    const lower = k.toLowerCase();
    if (CONNECTION_SPECIFIC.has(lower) || named.has(lower) || lower === 'host') continue;
    const prev = out[lower];
    out[lower] = prev === undefined ? v : [...(Array.isArray(prev) ? prev : [String(prev)]), v];
  }
  return out;
}

/** Proxies one HTTP/2 request stream; resolves when the upstream's response head is in (or it was refused). */
export async function forwardH2Request(
  rt: Runtime,
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
  raw: readonly string[],
  address: string,
  endStream: boolean,
): Promise<void> {
  const client = clientName(address, stream.session?.socket.remotePort);
  const snap = rt.snapshot();
  const target = String(headers[':path'] ?? '');
  const started = Date.now();
  const method = String(headers[':method'] ?? '');
  const refuse = (reason: RefusalReason, status: number, message: string): void => {
    recordRefusal(rt, { client, method, target, reason, status, started });
    refuseStream(stream, status, message);
  };
  // What becomes an HTTP/1.1 request line must read the same way to every parser: origin-form, visible ASCII.
  // (nghttp2 already refuses a space in :path; this holds whatever the HTTP/2 stack below lets through.)
  if (!/^\/[\x21-\x7e]*$/.test(target))
    return refuse('bad_request', 400, 'the gateway accepts origin-form paths of visible ASCII only');
  const route = snap.table.match(target);
  const pool = route && snap.pools.get(route.path);
  if (!route || !pool) return refuse('no_route', 404, 'no route for this path');
  let conn;
  try {
    conn = await connectPool(pool, {
      connectTimeout: snap.config.limits.connectTimeout,
      ca: snap.ca,
      markDead: (u, code) => rt.markDead(u, code),
    });
  } catch (e) {
    const f = upstreamFailure(e);
    return refuse(f.reason, f.status, f.message);
  }
  if (stream.destroyed) {
    conn.socket.destroy();
    return;
  }
  await new H2Exchange(rt, snap, stream, conn, {
    route,
    address,
    client,
    target,
    headers,
    raw,
    endStream,
  }).run();
}

interface H2Request {
  readonly route: RouteSpec;
  /** The client's address (X-Forwarded-For), and `address:port` for the access log. */
  readonly address: string;
  readonly client: string;
  readonly target: string;
  readonly headers: http2.IncomingHttpHeaders;
  readonly raw: readonly string[];
  /** The HEADERS frame ended the stream: there is no body. */
  readonly endStream: boolean;
}

/** One HTTP/2 stream and its HTTP/1.1 upstream connection, from request head to the end of the response. */
class H2Exchange {
  readonly #rt: Runtime;
  readonly #snap: Snapshot;
  readonly #stream: http2.ServerHttp2Stream;
  readonly #conn: UpstreamConnection;
  readonly #upstream: Duplex;
  readonly #req: H2Request;
  readonly #method: string;
  readonly #started = Date.now();
  #bytesUp = 0;
  #bytesDown = 0;
  #finished = false;

  constructor(
    rt: Runtime,
    snap: Snapshot,
    stream: http2.ServerHttp2Stream,
    conn: UpstreamConnection,
    req: H2Request,
  ) {
    this.#rt = rt;
    this.#snap = snap;
    this.#stream = stream;
    this.#conn = conn;
    this.#upstream = conn.socket;
    this.#req = req;
    this.#method = String(req.headers[':method'] ?? 'GET');
    this.#upstream.on('error', () => this.#upstream.destroy());
    // A client that resets its stream ends the upstream request too.
    stream.once('close', () => this.#upstream.destroy());
  }

  async run(): Promise<void> {
    const fields = http1Fields(this.#req.headers, this.#req.raw);
    const hasLength = getHeader(fields, 'content-length') !== undefined;
    // No length and more to come: the body goes up chunked (HTTP/2 has no Transfer-Encoding of its own).
    const chunked = !hasLength && !this.#req.endStream;
    if (chunked) fields.push(['Transfer-Encoding', 'chunked']);
    const out = upstreamHeaders(
      fields,
      { address: this.#req.address, proto: 'https' },
      { trusted: isTrusted(this.#req.address, this.#snap.config.trustProxy), upgrade: false },
    );
    let head;
    try {
      head = serializeHead(`${this.#method} ${this.#req.target} HTTP/1.1`, out);
    } catch {
      // A field HTTP/2 carries but HTTP/1.1 cannot (a control character or a non-Latin-1 value).
      this.#upstream.destroy();
      this.#rt.metrics.refused.inc({ reason: 'bad_request' });
      refuseStream(this.#stream, 400, 'a request header cannot be passed on over HTTP/1.1');
      return;
    }
    this.#upstream.write(head);
    // The gateway reads the body whatever the upstream says, so it says "go on" itself, as nginx does: an HTTP/1.1
    // upstream's own 100 is an interim response HTTP/2 would need relayed, and is dropped (RFC 9110 §10.1.1).
    if (String(this.#req.headers.expect ?? '').toLowerCase() === '100-continue' && !this.#req.endStream)
      this.#stream.additionalHeaders({ ':status': 100 });
    this.#sendBody(chunked);
    let res;
    try {
      res = await readResponseHead(this.#upstream, {
        peer: `upstream ${this.#conn.upstream.url}`,
        maxHeadBytes: RESPONSE_HEAD_LIMIT,
        timeout: 0,
      });
    } catch {
      this.#upstream.destroy();
      if (this.#stream.destroyed) return;
      this.#rt.metrics.refused.inc({ reason: 'upstream_unavailable' });
      refuseStream(this.#stream, 502, 'the upstream did not answer');
      return;
    }
    this.#relayResponse(res.head, res.leftover);
  }

  /** The client's DATA frames to the upstream, with backpressure; chunk-framed when `chunked`. */
  #sendBody(chunked: boolean): void {
    const stream = this.#stream;
    const upstream = this.#upstream;
    const onDrain = (): void => {
      stream.resume();
    };
    upstream.on('drain', onDrain);
    stream.on('data', (chunk: Buffer) => {
      this.#bytesUp += chunk.length;
      if (chunk.length === 0 || upstream.destroyed) return;
      const ok = chunked
        ? upstream.write(
            Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]),
          )
        : upstream.write(chunk);
      if (!ok) stream.pause();
    });
    stream.once('end', () => {
      upstream.removeListener('drain', onDrain);
      if (chunked && !upstream.destroyed) upstream.write('0\r\n\r\n');
    });
  }

  #relayResponse(head: ResponseHead, leftover: Uint8Array): void {
    const stream = this.#stream;
    const upstream = this.#upstream;
    const peer = `upstream ${this.#conn.upstream.url}`;
    let framing;
    try {
      if (head.status < 200) throw new Error(`status ${head.status} to a plain request`);
      framing = responseFraming(head, this.#method, peer, 'server');
    } catch {
      upstream.destroy();
      this.#rt.metrics.refused.inc({ reason: 'upstream_unavailable' });
      refuseStream(stream, 502, 'the upstream sent an invalid response');
      return;
    }
    if (stream.destroyed) return;
    const tracker = new BodyTracker(framing, {
      peer,
      hop: 'server',
      onPayload: (bytes) => this.#toClient(bytes),
    });
    try {
      stream.respond(h2ResponseHeaders(head), { endStream: tracker.done });
    } catch {
      // A field HTTP/2 cannot carry (a malformed value): the upstream's fault.
      upstream.destroy();
      stream.close(NGHTTP2_INTERNAL_ERROR);
      return;
    }
    if (tracker.done) return this.#finish(head.status, true);
    const onData = (chunk: Uint8Array): void => {
      try {
        if (tracker.receive(chunk).done) this.#finish(head.status, true);
      } catch {
        this.#finish(head.status, false);
      }
    };
    stream.on('drain', () => upstream.resume());
    upstream.once('end', () => {
      try {
        tracker.receiveEof();
        this.#finish(head.status, true);
      } catch {
        this.#finish(head.status, false);
      }
    });
    upstream.once('close', () => this.#finish(head.status, tracker.done));
    if (leftover.length > 0) onData(leftover);
    if (!this.#finished) {
      upstream.on('data', onData);
      upstream.resume();
    }
  }

  #toClient(bytes: Uint8Array): void {
    if (bytes.length === 0 || this.#stream.destroyed) return;
    this.#bytesDown += bytes.length;
    if (!this.#stream.write(bytes)) this.#upstream.pause();
  }

  /** Ends the response (or resets the stream when the upstream broke off), once, and logs it. */
  #finish(status: number, ok: boolean): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#upstream.destroy();
    if (!this.#stream.destroyed) {
      if (ok) {
        // A response complete before the request body: the rest of the upload is declined with NO_ERROR once the
        // response is flushed (RFC 9113 §8.1), rather than left open on the session.
        this.#stream.once('finish', () => {
          if (!this.#stream.readableEnded) this.#stream.close(http2.constants.NGHTTP2_NO_ERROR);
        });
        this.#stream.end();
      } else this.#stream.close(this.#stream.writableEnded ? NGHTTP2_CANCEL : NGHTTP2_INTERNAL_ERROR);
    }
    recordHttpExchange(this.#rt, {
      client: this.#req.client,
      route: this.#req.route.path,
      upstream: this.#conn.upstream.url,
      method: this.#method,
      target: this.#req.target,
      status,
      bytesToUpstream: this.#bytesUp,
      bytesToClient: this.#bytesDown,
      started: this.#started,
      complete: ok,
    });
  }
}
