import assert from 'node:assert/strict';
import net from 'node:net';
import { PassThrough } from 'node:stream';
import { once } from 'node:events';
import { test } from 'node:test';
import tls from 'node:tls';
import { endMayHideReset, resetStream } from '../../src/serve/reset.js';
import { localhostCert } from '../helpers/certs.js';

async function serverAndClient(): Promise<{ server: net.Server; client: net.Socket; accepted: net.Socket }> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  const client = net.connect(port, '127.0.0.1');
  const [accepted] = (await once(server, 'connection')) as [net.Socket];
  await once(client, 'connect');
  return { server, client, accepted };
}

test('resetStream sends a TCP RST on a plain socket: the peer sees ECONNRESET, not a FIN', async () => {
  const { server, client, accepted } = await serverAndClient();
  const err = once(client, 'error');
  resetStream(accepted);
  const [e] = (await err) as [NodeJS.ErrnoException];
  assert.equal(e.code, 'ECONNRESET');
  server.close();
});

test('resetStream on a TLS socket destroys it instead of throwing ERR_INVALID_HANDLE_TYPE', async () => {
  const pair = localhostCert();
  const server = tls.createServer({ cert: pair.cert, key: pair.key });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  const accepted = once(server, 'secureConnection');
  const client = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false });
  client.on('error', () => {});
  const [socket] = (await accepted) as [tls.TLSSocket];
  socket.on('error', () => {});
  assert.throws(() => socket.resetAndDestroy(), { code: 'ERR_INVALID_HANDLE_TYPE' });
  const s2 = once(server, 'secureConnection');
  const client2 = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false });
  client2.on('error', () => {});
  client2.resume();
  const [socket2] = (await s2) as [tls.TLSSocket];
  socket2.on('error', () => {});
  assert.doesNotThrow(() => resetStream(socket2));
  await once(socket2, 'close');
  // The client reads the RST as an error (events.once would reject on it): wait for its close alone.
  await new Promise((resolve) => client2.once('close', resolve));
  client.destroy();
  server.close();
});

test('resetStream ends any other Duplex with an error, so a reader cannot mistake it for a clean end', async () => {
  const stream = new PassThrough();
  const err = once(stream, 'error');
  resetStream(stream);
  const [e] = (await err) as [Error];
  assert.equal(e.name, 'StreamReset');
  assert.equal(stream.destroyed, true);
});

test('resetStream on a TLS socket over a TCP socket resets that TCP socket: the TLS peer sees ECONNRESET', async () => {
  const pair = localhostCert();
  const server = tls.createServer({ cert: pair.cert, key: pair.key });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  const accepted = once(server, 'secureConnection');
  const client = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false });
  await once(client, 'secureConnect');
  const [socket] = (await accepted) as [tls.TLSSocket];
  socket.on('error', () => {});
  const ending = new Promise<string>((resolve) => {
    client.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.name));
    client.once('end', () => resolve('FIN'));
    client.resume();
  });
  resetStream(socket);
  assert.equal(await ending, 'ECONNRESET');
  server.close();
});

test('the end-of-stream reset probe runs on libuv before 1.52 only (Node 20 and 22), and when the version is unknown', () => {
  for (const v of ['1.46.0', '1.51.0', '1.9.9', '0.99.1']) assert.equal(endMayHideReset(v), true, v);
  for (const v of ['1.52.0', '1.52.1', '1.60.2', '2.0.0']) assert.equal(endMayHideReset(v), false, v);
  for (const v of [undefined, '', 'dev', '1']) assert.equal(endMayHideReset(v), true, String(v));
});
