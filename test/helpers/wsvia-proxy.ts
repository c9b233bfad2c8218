/**
 * Helpers for the proxy tests: an in-process `wsvia proxy` on a port the OS chose, a TCP echo peer, and raw
 * requests whose answers are read with the project's own head reader.
 */
import net from 'node:net';
import { ResponseHeadReader, type ResponseHead } from '../../src/protocol/head.js';
import { getHeader } from '../../src/protocol/headers.js';
import { parseHostRule, parsePortList } from '../../src/route/destination.js';
import type { ProxyServerOptions } from '../../src/proxy/options.js';
import { ProxyServer } from '../../src/proxy/server.js';

export interface RunningWsviaProxy {
  readonly server: ProxyServer;
  readonly port: number;
  readonly url: string;
  close(drain?: number): Promise<void>;
}

/** Loopback allowed (tests run there), every port. */
export const LOOPBACK_POLICY = {
  ports: parsePortList('*'),
  allowPrivate: false,
  allow: [parseHostRule('127.0.0.0/8'), parseHostRule('::1/128'), parseHostRule('localhost')],
  deny: [],
};

/**
 * With `relay: 'splice'` tunnels go to the native relay from their first byte (a CONNECT's destination dialed
 * natively; through a parent proxy, `spliceAfter: 0`), so every suite run against it exercises it whatever few
 * bytes a test sends; test/proxy/splice-after.test.ts covers the move of a tunnel dialed in JavaScript.
 */
export async function startProxy(options: ProxyServerOptions = {}): Promise<RunningWsviaProxy> {
  const server = new ProxyServer({
    host: '127.0.0.1',
    port: 0,
    policy: LOOPBACK_POLICY,
    spliceAfter: 0,
    ...options,
  });
  const a = await server.listen();
  return { server, port: a.port, url: a.url, close: (drain = 0) => server.close(drain) };
}

/** A TCP server that echoes, honours half-close (answers FIN with FIN after echoing), and records bytes. */
export interface TcpPeer {
  readonly port: number;
  readonly sockets: net.Socket[];
  close(): Promise<void>;
}

export async function startTcpEcho(host = '127.0.0.1'): Promise<TcpPeer> {
  const sockets: net.Socket[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.push(s);
    s.on('error', () => {});
    s.pipe(s);
  });
  await new Promise<void>((r) => server.listen(0, host, () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    sockets,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

export interface Answer {
  readonly head: ResponseHead;
  readonly socket: net.Socket;
  /** Bytes after the head so far. */
  readonly rest: Buffer;
}

/** Sends `request` (text or bytes) to the proxy and reads the answer's head. */
export function request(port: number, requestBytes: string | Buffer, host = '127.0.0.1'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, allowHalfOpen: true });
    const reader = new ResponseHeadReader({ peer: 'proxy', hop: 'proxy' });
    const timer = setTimeout(() => reject(new Error('no answer within 10 s')), 10_000);
    socket.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    const onData = (chunk: Buffer): void => {
      const r = reader.receive(chunk);
      if (!r) return;
      clearTimeout(timer);
      socket.removeListener('data', onData);
      socket.removeListener('end', closedEarly);
      socket.removeListener('close', closedEarly);
      socket.pause();
      resolve({ head: r.head, socket, rest: Buffer.from(r.leftover) });
    };
    socket.on('data', onData);
    const closedEarly = (): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(new Error(`closed before an answer (received ${JSON.stringify(reader.received.toString())})`));
    };
    socket.on('end', closedEarly);
    socket.on('close', closedEarly);
    socket.write(requestBytes);
  });
}

/** Reads until the socket ends; returns everything (bounded to 1 MB). */
export function readAll(socket: net.Socket, first: Buffer = Buffer.alloc(0)): Promise<Buffer> {
  return new Promise((resolve) => {
    const parts = [first];
    let size = first.length;
    socket.on('data', (c: Buffer) => {
      if (size < 1 << 20) parts.push(c);
      size += c.length;
    });
    socket.once('end', () => resolve(Buffer.concat(parts)));
    socket.once('close', () => resolve(Buffer.concat(parts)));
    socket.resume();
  });
}

/** An error answer's status, Proxy-Status, X-Wsvia-Error and body. */
export async function errorAnswer(
  port: number,
  requestText: string,
): Promise<{
  status: number;
  proxyStatus: string;
  rule: string | undefined;
  body: string;
  head: ResponseHead;
}> {
  const a = await request(port, requestText);
  const body = (await readAll(a.socket, a.rest)).toString();
  a.socket.destroy();
  return {
    status: a.head.status,
    proxyStatus: getHeader(a.head.headers, 'proxy-status') ?? '',
    rule: getHeader(a.head.headers, 'x-wsvia-error'),
    body,
    head: a.head,
  };
}

export function connectRequest(target: string, headers: string[] = [], version = '1.1'): string {
  return `CONNECT ${target} HTTP/${version}\r\nHost: ${target}\r\n${headers.map((h) => `${h}\r\n`).join('')}\r\n`;
}

/** Resolves when `socket` closes. */
export function closed(socket: net.Socket): Promise<void> {
  return new Promise((r) => (socket.closed ? r() : socket.once('close', () => r())));
}
