/**
 * Real peers for the gateway tests: `ws` upstream servers that report what reached them, and an in-process
 * gateway built from YAML text (the same path a config file takes).
 */
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type tls from 'node:tls';
import { once } from 'node:events';
import WebSocket, { WebSocketServer } from 'ws';
import { parseConfig } from '../../src/config.js';
import { configFromNode, type GatewayConfig } from '../../src/gateway/config.js';
import { Gateway } from '../../src/gateway/gateway.js';
import { AccessLog } from '../../src/observe/access-log.js';
import type { RelayChoice } from '../../src/serve/splice-relay.js';
import { Writable } from 'node:stream';

export interface Upstream {
  readonly name: string;
  readonly port: number;
  readonly url: string;
  /** Every WebSocket server-side connection, for close codes. */
  readonly sockets: WebSocket[];
  readonly closes: number[];
  close(): Promise<void>;
}

/**
 * A `ws` server: the first message to each client is a JSON report (its name, the request line and headers it
 * received), then it echoes. Plain HTTP: GET answers its name, POST echoes the body.
 */
export async function startUpstream(
  name: string,
  options: { port?: number; tls?: { cert: string; key: string } } = {},
): Promise<Upstream> {
  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    if (req.method === 'POST') {
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'X-Upstream': name });
      req.pipe(res);
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/json', 'X-Upstream': name });
    res.end(JSON.stringify({ name, url: req.url, headers: req.headers }));
  };
  const server = options.tls ? https.createServer(options.tls, handler) : http.createServer(handler);
  const wss = new WebSocketServer({
    server,
    perMessageDeflate: true,
    handleProtocols: (offered) => (offered.has('chat.v2') ? 'chat.v2' : false),
  });
  wss.on('headers', (headers) => headers.push('Set-Cookie: session=from-upstream'));
  const sockets: WebSocket[] = [];
  const closes: number[] = [];
  wss.on('connection', (ws, req) => {
    sockets.push(ws);
    ws.on('close', (code) => closes.push(code));
    ws.on('error', () => {});
    ws.send(
      JSON.stringify({
        name,
        url: req.url,
        headers: req.headers,
        protocol: ws.protocol,
        extensions: ws.extensions,
      }),
    );
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  server.listen(options.port ?? 0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  return {
    name,
    port,
    url: `${options.tls ? 'wss' : 'ws'}://127.0.0.1:${port}`,
    sockets,
    closes,
    close: () =>
      new Promise((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface TestGateway {
  readonly gateway: Gateway;
  readonly url: string;
  readonly wsUrl: string;
  readonly tlsPort: number | undefined;
  readonly adminUrl: string | undefined;
  /** Access log records written so far. */
  readonly records: Record<string, unknown>[];
  metric(line: string): Promise<number>;
}

export function configFromYaml(yaml: string): GatewayConfig {
  return configFromNode(parseConfig(yaml, 'test.yaml'), 'test.yaml');
}

export async function startGateway(
  yaml: string,
  options: { relay?: RelayChoice } = {},
): Promise<TestGateway> {
  const records: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n').filter(Boolean))
        records.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  const gateway = new Gateway(configFromYaml(yaml), { accessLog: new AccessLog(sink), ...options });
  const a = await gateway.start();
  const url = a.listen ? `http://127.0.0.1:${a.listen.port}` : '';
  const adminUrl = a.admin ? `http://127.0.0.1:${a.admin.port}` : undefined;
  return {
    gateway,
    url,
    wsUrl: url.replace('http:', 'ws:'),
    tlsPort: a.tls?.port,
    adminUrl,
    records,
    async metric(line: string): Promise<number> {
      if (!adminUrl) throw new Error('no admin listener');
      const text = await (await fetch(`${adminUrl}/metrics`)).text();
      const found = text.split('\n').find((l) => l.startsWith(`${line} `));
      return found === undefined ? 0 : Number(found.slice(line.length + 1));
    },
  };
}

/** Opens a WebSocket and resolves with it and its first message (the upstream's report). */
export async function openWs(
  url: string,
  options: WebSocket.ClientOptions & tls.ConnectionOptions & { protocols?: string[] } = {},
): Promise<{ ws: WebSocket; report: Record<string, unknown>; response: http.IncomingMessage }> {
  const ws = new WebSocket(url, options.protocols ?? [], options);
  const response = await new Promise<http.IncomingMessage>((resolve, reject) => {
    ws.once('upgrade', resolve);
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`unexpected response ${res.statusCode}`)));
  });
  const [data] = (await once(ws, 'message')) as [Buffer];
  return { ws, report: JSON.parse(data.toString()) as Record<string, unknown>, response };
}

/** The status of a refused upgrade. */
export function refusedStatus(url: string, options: WebSocket.ClientOptions = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, options);
    ws.once('open', () => {
      ws.terminate();
      reject(new Error('the upgrade was accepted'));
    });
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
      ws.terminate();
    });
    ws.once('error', (e) => reject(e));
  });
}

export async function echo(ws: WebSocket, data: string | Buffer): Promise<Buffer> {
  ws.send(data);
  const [reply] = (await once(ws, 'message')) as [Buffer];
  return reply;
}

export function closed(ws: WebSocket): Promise<number> {
  if (ws.readyState === ws.CLOSED) return Promise.resolve(-1);
  return new Promise((resolve) => ws.once('close', (code: number) => resolve(code)));
}

/** Sends raw bytes, resolves with everything the server sent until it closed (bounded by a timeout). */
export function rawExchange(port: number, bytes: string | Buffer, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    let out = '';
    const t = setTimeout(() => {
      s.destroy();
      reject(new Error(`no close within ${timeoutMs} ms; got ${JSON.stringify(out.slice(0, 200))}`));
    }, timeoutMs);
    s.on('data', (d: Buffer) => (out += d.toString('latin1')));
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(t);
      resolve(out);
    });
    if (bytes.length > 0) s.write(bytes);
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
