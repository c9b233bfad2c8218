/**
 * `connect(url, options)`: an open `ws` WebSocket over a stream from `dial()`. The `ws` package does the
 * WebSocket protocol; wsvia does the path to the server and turns every way the upgrade can fail into a typed
 * error that says what answered.
 */
import { validateHeaderName, validateHeaderValue, type IncomingMessage } from 'node:http';
import WebSocket, { type ClientOptions } from 'ws';
import { WsviaError, invalidArgument } from '../errors.js';
import { excerptText } from '../protocol/body.js';
import { formatAuthority } from '../protocol/authority.js';
import { isToken } from '../protocol/headers.js';
import { dialDetailed, toDialTarget, type DialResult } from '../dial/dial.js';
import { DEFAULT_TIMEOUTS, normalizeHeaders, type DialOptions } from '../dial/options.js';
import { redactHeadText } from '../observe/redact.js';
import { startKeepalive, type PingOptions } from './keepalive.js';

export interface ConnectOptions extends DialOptions {
  /** Headers on the upgrade request (to the server, never to the proxy). */
  readonly headers?: Readonly<Record<string, string>>;
  /** Subprotocols to offer (Sec-WebSocket-Protocol). */
  readonly protocols?: string | readonly string[];
  readonly origin?: string;
  /** Keepalive pings; a missed pong closes the connection with PING_TIMEOUT. */
  readonly ping?: PingOptions;
  /** Largest message accepted, in bytes (default 100 MiB, as `ws`). */
  readonly maxPayload?: number;
  /** Negotiate permessage-deflate (default false: compression costs CPU and memory per connection). */
  readonly perMessageDeflate?: boolean;
}

/** What a connected WebSocket carries about the path it took. */
export interface ConnectInfo {
  readonly route: DialResult['route'];
  readonly proxyResponse: DialResult['proxyResponse'];
  readonly certificate: DialResult['certificate'];
}

const INFO = Symbol('wsvia.connectInfo');

/** The route, proxy answer and certificate behind a WebSocket opened by {@link connect}. */
export function connectInfo(ws: WebSocket): ConnectInfo | undefined {
  return (ws as unknown as { [INFO]?: ConnectInfo })[INFO];
}

function wsUrl(url: string | URL): URL {
  let u: URL;
  try {
    u = new URL(String(url));
  } catch {
    throw invalidArgument(
      `invalid URL ${JSON.stringify(String(url))}`,
      'expected ws://host[:port]/path or wss://...',
    );
  }
  if (u.protocol === 'http:') u.protocol = 'ws:';
  else if (u.protocol === 'https:') u.protocol = 'wss:';
  if (u.protocol !== 'ws:' && u.protocol !== 'wss:') {
    throw invalidArgument(`unsupported URL scheme "${u.protocol}"`, 'use ws:// or wss://');
  }
  return u;
}

/** RFC 6455 §4.1: each subprotocol is a token (RFC 9110 §5.6.2), offered once. */
function protocolList(p: ConnectOptions['protocols']): string[] {
  const list = p === undefined ? [] : typeof p === 'string' ? [p] : [...p];
  const seen = new Set<string>();
  for (const name of list) {
    if (typeof name !== 'string' || !isToken(name))
      throw invalidArgument(
        `invalid subprotocol ${JSON.stringify(name)}`,
        "a subprotocol is a token: letters, digits and !#$%&'*+-.^_`|~, no spaces or commas",
      );
    if (seen.has(name)) throw invalidArgument(`subprotocol ${JSON.stringify(name)} is offered twice`);
    seen.add(name);
  }
  return list;
}

function checkHeader(name: string, value: string, what: string): void {
  try {
    validateHeaderName(name);
    validateHeaderValue(name, value);
  } catch {
    throw invalidArgument(
      `invalid ${what} ${JSON.stringify(name)}: ${JSON.stringify(value)}`,
      'a header name is a token, and a value holds no CR, LF or NUL',
    );
  }
}

/**
 * Every argument checked before any I/O, as `ws` and undici do: a bad one used to throw from `new WebSocket`
 * after the dial, leaking the socket and leaving a timer armed.
 */
function checkArguments(options: ConnectOptions): string[] {
  for (const [k, v] of Object.entries(options.headers ?? {})) checkHeader(k, String(v), 'header');
  for (const [k, v] of normalizeHeaders(options.proxyHeaders)) checkHeader(k, v, 'proxy header');
  if (options.origin !== undefined) checkHeader('Origin', options.origin, 'origin');
  const max = options.maxPayload;
  if (max !== undefined && (!Number.isSafeInteger(max) || max < 0))
    throw invalidArgument(`invalid maxPayload ${String(max)}`, 'a whole number of bytes (0: no limit)');
  return protocolList(options.protocols);
}

function headText(req: {
  method: string;
  path: string;
  getRawHeaderNames(): string[];
  getHeader(n: string): unknown;
}): string {
  const lines = [`${req.method} ${req.path} HTTP/1.1`];
  for (const name of req.getRawHeaderNames()) {
    const v = req.getHeader(name);
    for (const value of Array.isArray(v) ? v : [v]) lines.push(`${name}: ${String(value)}`);
  }
  return redactHeadText(lines.join('\n'));
}

function responseText(res: IncomingMessage): string {
  const lines = [
    `HTTP/${res.httpVersion} ${res.statusCode ?? ''}${res.statusMessage ? ` ${res.statusMessage}` : ''}`,
  ];
  for (let i = 0; i + 1 < res.rawHeaders.length; i += 2)
    lines.push(`${res.rawHeaders[i]}: ${res.rawHeaders[i + 1]}`);
  return redactHeadText(lines.join('\n'));
}

/** Reads up to `max` bytes of a response body for an excerpt, without waiting more than `ms`. */
function readExcerpt(res: IncomingMessage, max: number, ms: number): Promise<string> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    let size = 0;
    const finish = (): void => {
      clearTimeout(timer);
      res.removeAllListeners('data');
      res.destroy();
      resolve(excerptText(Buffer.concat(parts).toString('utf8'), 200));
    };
    const timer = setTimeout(finish, ms);
    res.on('data', (c: Buffer) => {
      if (size < max) parts.push(c.subarray(0, max - size));
      size += c.length;
      if (size >= max) finish();
    });
    res.once('end', finish);
    res.once('error', finish);
  });
}

const SHOWN_HEADERS = [
  'server',
  'via',
  'content-type',
  'www-authenticate',
  'sec-websocket-version',
  'upgrade',
  'connection',
  'location',
];

function upgradeRejected(
  res: IncomingMessage,
  excerpt: string,
  url: URL,
  viaProxy: string | undefined,
): WsviaError {
  const status = res.statusCode ?? 0;
  const statusText = `${status}${res.statusMessage ? ` ${res.statusMessage}` : ''}`;
  const headers: [string, string][] = [];
  for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) {
    const k = res.rawHeaders[i] as string;
    if (SHOWN_HEADERS.includes(k.toLowerCase())) headers.push([k, res.rawHeaders[i + 1] as string]);
  }
  let hint: string;
  if (status === 200 || status === 400 || status === 426) {
    hint =
      'an intermediary (a reverse proxy, or a proxy forwarding plain HTTP) likely dropped the Upgrade and Connection headers: nginx needs proxy_http_version 1.1 and proxy_set_header Upgrade/Connection; squid needs http_upgrade_request_protocols';
  } else if (status === 401 || status === 403) {
    hint =
      'the server refused this client: check credentials (-H "Authorization: ..."), the Origin (--origin) or the path';
  } else if (status === 404) {
    hint = 'no WebSocket endpoint at this path: check the URL path';
  } else if (status >= 300 && status < 400) {
    hint = `the server redirects${res.headers.location ? ` to ${res.headers.location}` : ''}: connect to that URL instead`;
  } else if (status >= 500) {
    hint = 'the server (or a gateway in front of it) failed: its body says why';
  } else {
    hint = 'the server did not accept the WebSocket upgrade';
  }
  return new WsviaError(
    'UPGRADE_REJECTED',
    `${url.host} answered "${statusText}" to the WebSocket upgrade for ${url.pathname}`,
    {
      hop: 'upgrade',
      target: url.toString(),
      ...(viaProxy ? { proxy: viaProxy } : {}),
      answer: {
        statusLine: `HTTP/${res.httpVersion} ${statusText}`,
        status,
        headers,
        ...(excerpt ? { bodyExcerpt: excerpt } : {}),
      },
      hint,
    },
  );
}

/**
 * Opens a WebSocket to `url` along the route the options (or the environment) choose, and resolves once it is
 * open. Rejects with a {@link WsviaError} naming the hop that failed.
 *
 * @example
 * const ws = await connect('wss://echo.example/', { proxy: 'http://user:pass@proxy.corp:3128' });
 * ws.on('message', (m) => console.log(String(m)));
 * ws.send('hello');
 */
export async function connect(url: string | URL, options: ConnectOptions = {}): Promise<WebSocket> {
  const u = wsUrl(url);
  const protocols = checkArguments(options);
  const target = toDialTarget(u);
  const dialed = await dialDetailed(target, { ...options, alpn: options.alpn ?? ['http/1.1'] });
  return upgrade(u, dialed, options, protocols);
}

function upgrade(
  u: URL,
  dialed: DialResult,
  options: ConnectOptions,
  protocols: readonly string[],
): Promise<WebSocket> {
  const { socket, tracer, route } = dialed;
  const viaProxy = route.proxy?.display;
  const timeout = options.timeouts?.upgrade ?? DEFAULT_TIMEOUTS.upgrade;
  return new Promise<WebSocket>((resolve, reject) => {
    let sentAt = 0;
    let settled = false;
    const fail = (e: WsviaError): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      ws.removeAllListeners();
      ws.on('error', () => {});
      ws.terminate();
      socket.destroy();
      reject(e);
    };
    const timer = setTimeout(
      () =>
        fail(
          new WsviaError(
            'UPGRADE_TIMEOUT',
            `${u.host} did not answer the WebSocket upgrade within ${timeout} ms`,
            {
              hop: 'upgrade',
              target: u.toString(),
              ...(viaProxy ? { proxy: viaProxy } : {}),
              hint: 'the server accepted the connection but does not speak HTTP there, or is overloaded',
            },
          ),
        ),
      timeout,
    );
    const clientOptions: ClientOptions = {
      createConnection: () => socket as never,
      headers: { ...options.headers },
      ...(options.origin === undefined ? {} : { origin: options.origin }),
      perMessageDeflate: options.perMessageDeflate ?? false,
      ...(options.maxPayload === undefined ? {} : { maxPayload: options.maxPayload }),
      finishRequest: (req) => {
        sentAt = tracer.elapsed();
        tracer.emit({ type: 'head', from: 'client', to: 'server', text: headText(req), ms: sentAt });
        req.end();
      },
    };
    let ws: WebSocket;
    try {
      ws = new WebSocket(u, [...protocols], clientOptions);
    } catch (e) {
      // Arguments were checked before the dial; anything `ws` still refuses must not leak the socket or the timer.
      clearTimeout(timer);
      socket.destroy();
      settled = true;
      return reject(
        invalidArgument(`cannot open the WebSocket: ${e instanceof Error ? e.message : String(e)}`),
      );
    }
    // The server's answer, 101 or not, goes in the trace with the time since the request went out.
    const traceAnswer = (res: IncomingMessage): void =>
      tracer.emit({
        type: 'head',
        from: 'server',
        to: 'client',
        text: responseText(res),
        ms: tracer.elapsed() - sentAt,
      });
    ws.once('upgrade', traceAnswer);
    ws.once('unexpected-response', (_req, res) => {
      traceAnswer(res);
      readExcerpt(res, 4096, 1000).then(
        (excerpt) => fail(upgradeRejected(res, excerpt, u, viaProxy)),
        () => fail(upgradeRejected(res, '', u, viaProxy)),
      );
    });
    ws.once('error', (err: Error & { code?: string }) => fail(upgradeError(err, u, viaProxy)));
    ws.once('close', () =>
      fail(
        new WsviaError('CONNECTION_RESET', `${u.host} closed the connection during the WebSocket upgrade`, {
          hop: 'upgrade',
          target: u.toString(),
          ...(viaProxy ? { proxy: viaProxy } : {}),
        }),
      ),
    );
    ws.once('open', () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      ws.removeAllListeners('error');
      ws.removeAllListeners('close');
      ws.removeAllListeners('unexpected-response');
      tracer.emit({ type: 'open', ms: tracer.elapsed() });
      Object.defineProperty(ws, INFO, {
        value: { route: dialed.route, proxyResponse: dialed.proxyResponse, certificate: dialed.certificate },
        enumerable: false,
      });
      if (options.ping) startKeepalive(ws, options.ping, tracer);
      // Frames that came in the same read as the 101 (a server that greets at once, through a proxy that
      // coalesces) are parsed on the next tick, before the caller's `await connect()` continues and can add a
      // 'message' listener: they were lost. Hold the stream until the caller has had its turn.
      // Resumed only if the caller has not paused meanwhile (`ws` itself resumes only `if (!websocket.isPaused)`).
      socket.pause();
      setImmediate(() => {
        if (!ws.isPaused) socket.resume();
      });
      resolve(ws);
    });
  });
}

function upgradeError(err: Error & { code?: string }, u: URL, viaProxy: string | undefined): WsviaError {
  const fields = {
    hop: 'upgrade' as const,
    target: u.toString(),
    ...(viaProxy ? { proxy: viaProxy } : {}),
    cause: err,
  };
  if (
    err.code?.startsWith('WS_ERR_') ||
    /Sec-WebSocket|subprotocol|extension|Invalid Upgrade/i.test(err.message)
  ) {
    return new WsviaError(
      'UPGRADE_REJECTED',
      `${u.host} answered the upgrade with an invalid handshake: ${err.message}`,
      {
        ...fields,
        hint: /subprotocol/i.test(err.message)
          ? 'the server chose a subprotocol that was not offered, or none when one was required'
          : 'an intermediary may have altered the handshake headers',
      },
    );
  }
  return new WsviaError(
    'CONNECTION_RESET',
    `the connection to ${formatAuthority(toDialTarget(u))} failed during the upgrade: ${err.message}`,
    fields,
  );
}
