/**
 * The echo server: every message comes back as it was sent (text as text, binary as binary). The stand-in for
 * echo.websocket.org in demos and tests. It records each upgrade request it receives, so a test can prove
 * what reached the server (and what did not, such as proxy credentials). With `mirror`, the first message to
 * each client is a JSON report of the request as received, for the doctor to compare with what was sent.
 */
import http from 'node:http';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { WebSocketServer } from 'ws';
import { formatHost } from '../protocol/authority.js';
import { listen } from '../serve/listener.js';

/** Where the echo server listens, with or without TLS, and what it answers. */
export interface EchoServerOptions {
  readonly host?: string;
  readonly port?: number;
  readonly tls?: { readonly cert: string | Buffer; readonly key: string | Buffer };
  /** Send each client, as its first message, the upgrade request as received (`{"wsviaMirror": ...}`). */
  readonly mirror?: boolean;
  /** Subprotocols the server accepts (the first offered that is in this list is chosen). */
  readonly protocols?: readonly string[];
}

export interface ReceivedUpgrade {
  readonly method: string;
  readonly url: string;
  readonly httpVersion: string;
  /** Raw header pairs, in order, as received. */
  readonly headers: readonly [string, string][];
  readonly remoteAddress: string | undefined;
  readonly tls?: {
    readonly servername: string | false | null | undefined;
    readonly alpn: string | false | null;
    readonly protocol: string | null;
  };
}

/** A running echo server: its URL, the upgrade requests it received, and `close()`. */
export interface EchoServer {
  readonly url: string;
  readonly port: number;
  /** Upgrade requests received, oldest first (bounded to the last 1000). */
  readonly received: readonly ReceivedUpgrade[];
  /** Closes every WebSocket with 1001 (going away), cuts those that do not answer within a second, stops listening. */
  close(): Promise<void>;
}

/**
 * Starts a WebSocket server that echoes every message back (on 127.0.0.1 and a port the system chooses by default);
 * resolves once it listens.
 */
export async function startEchoServer(options: EchoServerOptions = {}): Promise<EchoServer> {
  const host = options.host ?? '127.0.0.1';
  const handler = (_req: http.IncomingMessage, res: http.ServerResponse): void => {
    res.writeHead(426, { 'Content-Type': 'text/plain', Upgrade: 'websocket', Connection: 'Upgrade' });
    res.end('This is a WebSocket echo server: connect with a WebSocket client.\n');
  };
  const server = options.tls
    ? https.createServer({ cert: options.tls.cert, key: options.tls.key }, handler)
    : http.createServer(handler);
  const accepted = options.protocols;
  const wss = new WebSocketServer({
    server,
    perMessageDeflate: false,
    ...(accepted
      ? { handleProtocols: (offered: Set<string>) => [...offered].find((p) => accepted.includes(p)) ?? false }
      : {}),
  });
  // ws passes the HTTP server's errors on; a failed listen is reported by listen() below.
  wss.on('error', () => {});
  const received: ReceivedUpgrade[] = [];
  wss.on('connection', (ws, req) => {
    const headers: [string, string][] = [];
    for (let i = 0; i + 1 < req.rawHeaders.length; i += 2)
      headers.push([req.rawHeaders[i] as string, req.rawHeaders[i + 1] as string]);
    const sock = req.socket as TLSSocket;
    const record: ReceivedUpgrade = {
      method: req.method ?? 'GET',
      url: req.url ?? '/',
      httpVersion: req.httpVersion,
      headers,
      remoteAddress: req.socket.remoteAddress,
      ...(options.tls
        ? { tls: { servername: sock.servername, alpn: sock.alpnProtocol, protocol: sock.getProtocol() } }
        : {}),
    };
    received.push(record);
    if (received.length > 1000) received.shift();
    if (options.mirror) ws.send(JSON.stringify({ wsviaMirror: record }));
    ws.on('message', (data, isBinary) => {
      // Backpressure: a client that does not read its echoes is not buffered for without bound.
      if (ws.bufferedAmount > 16 * 1024 * 1024) return ws.close(1008, 'not reading');
      ws.send(data, { binary: isBinary });
    });
    ws.on('error', () => ws.terminate());
  });
  const { port } = await listen(server, host, options.port ?? 0, '--host/--port');
  return {
    url: `${options.tls ? 'wss' : 'ws'}://${formatHost(host)}:${port}/`,
    port,
    received,
    close: () => closeEchoServer(server, wss),
  };
}

/** How long clients have to answer the 1001 before their connections are cut. */
const CLOSE_GRACE_MS = 1000;

/**
 * RFC 6455 §7.4.1: 1001, going away, to every client; a client that does not answer the close within
 * {@link CLOSE_GRACE_MS} is cut. Resolves once the listener is closed.
 */
function closeEchoServer(server: http.Server, wss: WebSocketServer): Promise<void> {
  return new Promise<void>((resolve) => {
    const clients = [...wss.clients];
    wss.close();
    const cut = setTimeout(() => {
      for (const c of clients) c.terminate();
      server.closeAllConnections();
    }, CLOSE_GRACE_MS);
    cut.unref();
    server.close(() => {
      clearTimeout(cut);
      resolve();
    });
    server.closeIdleConnections();
    for (const c of clients) c.close(1001, 'server shutting down');
  });
}
