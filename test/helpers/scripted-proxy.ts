/**
 * Scripted misbehaving proxies: each answers CONNECT the way a broken or hostile proxy does (403, 407, 500, 503,
 * early close, garbage, stall, split heads), with helpers to grant and relay a tunnel when a script wants one.
 */
import net from 'node:net';
import { RequestHeadReader, type RequestHead } from '../../src/protocol/head.js';
import type { RunningProxy } from './process.js';

/**
 * A proxy whose answer to CONNECT is scripted: `behave` gets the client socket and the parsed CONNECT head
 * (and the bytes that followed it), and does whatever a broken or hostile proxy does.
 */
export async function startScriptedProxy(
  behave: (socket: net.Socket, head: RequestHead, leftover: Uint8Array) => void,
): Promise<RunningProxy & { heads: RequestHead[] }> {
  const heads: RequestHead[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let reader = new RequestHeadReader({ peer: 'test client', hop: 'server' });
    const onData = (chunk: Buffer): void => {
      const r = reader.receive(chunk);
      if (!r) return;
      heads.push(r.head);
      reader = new RequestHeadReader({ peer: 'test client', hop: 'server' });
      socket.removeListener('data', onData);
      behave(socket, r.head, r.leftover);
      // Scripts that keep the connection for another request re-attach a reader themselves.
    };
    socket.on('data', onData);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    heads,
    log: () => heads.map((h) => `${h.method} ${h.target}`).join('\n'),
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Relays a granted tunnel to `host:port`, sending `bytesFirst` to the client before relaying (eager bytes). */
export function relay(client: net.Socket, host: string, port: number, leftover: Uint8Array): void {
  const upstream = net.connect({ host, port });
  if (leftover.length) upstream.write(leftover);
  client.pipe(upstream).on('error', () => {});
  upstream.pipe(client).on('error', () => {});
  upstream.on('error', () => client.destroy());
  client.on('error', () => upstream.destroy());
}

export function targetOf(head: RequestHead): { host: string; port: number } {
  const t = head.target;
  const colon = t.lastIndexOf(':');
  return { host: t.slice(0, colon).replace(/^\[|\]$/g, ''), port: Number(t.slice(colon + 1)) };
}
