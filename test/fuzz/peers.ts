/** Loopback peers the fuzzed servers connect to, and a real ClientHello to mutate. */
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import WebSocket from 'ws';
import type { HostLookup } from '../../src/serve/guarded-connect.js';

/** Names resolve only to loopback (`localhost`) or not at all: a fuzzed target never reaches the network. */
export const loopbackLookup: HostLookup = (host) =>
  host === 'localhost'
    ? Promise.resolve(['127.0.0.1'])
    : Promise.reject(Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' }));

export interface Sink {
  readonly port: number;
  close(): Promise<void>;
}

/** An HTTP server that answers every request `200 ok` (Content-Length framed) and keeps nothing. */
export async function startHttpSink(): Promise<Sink> {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('error', () => {});
    res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok\n');
  });
  server.on('clientError', (_e, socket) => socket.destroy());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** The first bytes Node's TLS client sends (a ClientHello for `servername`), for the fuzzers to mutate. */
export async function captureClientHello(servername = 'localhost'): Promise<Buffer> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  const first = new Promise<Buffer>((resolve) =>
    server.once('connection', (s: net.Socket) => {
      s.once('data', (b: Buffer) => {
        resolve(b);
        s.destroy();
      });
    }),
  );
  const c = tls.connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false });
  c.on('error', () => {});
  const hello = await first;
  c.destroy();
  await new Promise<void>((r) => server.close(() => r()));
  return hello;
}

/** A WebSocket to `url` carries a message there and back (`protocol`: the subprotocol to offer). */
export async function echoes(url: string, protocol?: string): Promise<void> {
  const ws = new WebSocket(url, protocol === undefined ? [] : [protocol], { rejectUnauthorized: false });
  await once(ws, 'open');
  const reply = once(ws, 'message');
  ws.send(Buffer.from('after the fuzz'));
  const [data] = (await reply) as [Buffer];
  assert.equal(Buffer.from(data).toString(), 'after the fuzz');
  ws.close(1000);
  await once(ws, 'close');
}

/**
 * Handshakes TLS with a server on `port`, writes `bytes`, and resets the TCP connection under the TLS at once (so
 * the server's session tickets meet the reset); resolves once it is closed here.
 */
export async function resetAfterTlsHandshake(port: number, bytes: string): Promise<void> {
  const raw = net.connect({ host: '127.0.0.1', port });
  raw.on('error', () => {});
  const t = tls.connect({ socket: raw, rejectUnauthorized: false, servername: 'localhost' });
  t.on('error', () => {});
  const gone = new Promise<void>((r) => raw.once('close', () => r()));
  t.once('secureConnect', () => {
    if (bytes) t.write(bytes);
    raw.resetAndDestroy();
  });
  await gone;
}
