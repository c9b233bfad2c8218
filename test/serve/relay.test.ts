/**
 * The shared relay on a pair that is not two TCP sockets (the bridge's WebSocket stream against TCP): a FIN is
 * passed on as a FIN, a failure on either side as a reset, and each tunnel is reported exactly once.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { Duplex } from 'node:stream';
import { test } from 'node:test';
import { TunnelSet, type Tunnel } from '../../src/serve/relay.js';
import { howItEnds } from '../helpers/endings.js';
import { until } from '../helpers/eventually.js';

/** A TCP pair: `inner` goes to the relay, `outer` is the far peer the test watches. */
async function tcpPair(): Promise<{ inner: net.Socket; outer: net.Socket; close: () => void }> {
  const server = net.createServer({ allowHalfOpen: true });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const outer = net.connect({ port: (server.address() as net.AddressInfo).port, allowHalfOpen: true });
  const [inner] = (await once(server, 'connection')) as [net.Socket];
  await once(outer, 'connect');
  inner.pause();
  return { inner, outer, close: () => server.close() };
}

/** A Duplex standing for a WebSocket stream: what the relay writes lands in `written`. */
function messageStream(): Duplex & { written: Buffer[] } {
  const written: Buffer[] = [];
  const d = new Duplex({
    read() {},
    write(chunk: Buffer, _enc, cb) {
      written.push(chunk);
      cb();
    },
  });
  return Object.assign(d, { written });
}

function tunnels(): { set: TunnelSet<string>; finished: Tunnel<string>[] } {
  const finished: Tunnel<string>[] = [];
  const set = new TunnelSet<string>({ idleTimeout: 0, maxLifetime: 0, onFinish: (t) => finished.push(t) });
  return { set, finished };
}

test('a stream that fails resets the TCP side (ECONNRESET), and the tunnel ends once as client_reset', async () => {
  const { inner, outer, close } = await tcpPair();
  const ws = messageStream();
  const { set, finished } = tunnels();
  set.open(ws, inner, 'ws');
  ws.push('hello');
  outer.write('back');
  await until('both directions relayed', () => outer.bytesRead === 5 && ws.written.length > 0);
  const ending = howItEnds(outer);
  ws.destroy(new Error('the WebSocket dropped without a close frame'));
  assert.equal(await ending, 'ECONNRESET');
  await until('the tunnel finished', () => finished.length === 1);
  const t = finished[0] as Tunnel<string>;
  assert.equal(t.reason, 'client_reset');
  assert.equal(t.bytesUp, 5);
  assert.equal(t.bytesDown, 4);
  close();
});

test('the end of the stream becomes a FIN on the TCP side, and the answer still flows back (half-close)', async () => {
  const { inner, outer, close } = await tcpPair();
  const ws = messageStream();
  const { set, finished } = tunnels();
  set.open(ws, inner, 'ws');
  const ending = howItEnds(outer);
  ws.push('last words');
  ws.push(null);
  assert.equal(await ending, 'FIN');
  outer.end('answer');
  await until('the tunnel finished', () => finished.length === 1);
  assert.equal(Buffer.concat(ws.written).toString(), 'answer');
  assert.equal(finished[0]?.reason, 'client_closed');
  close();
});

test('a TCP reset destroys the stream with an error, never a clean end', async () => {
  const { inner, outer, close } = await tcpPair();
  const ws = messageStream();
  const { set, finished } = tunnels();
  set.open(ws, inner, 'ws');
  outer.write('x');
  await until('the byte relayed', () => ws.written.length > 0);
  const ending = new Promise<string>((resolve) => {
    ws.once('error', (e) => resolve(e.name));
    ws.once('finish', () => resolve('FIN'));
  });
  outer.resetAndDestroy();
  assert.equal(await ending, 'StreamReset');
  await until('the tunnel finished', () => finished.length === 1);
  assert.equal(finished[0]?.reason, 'upstream_reset');
  close();
});

test('the idle sweep resets both sides and whenEmpty() waits for the report', async () => {
  const { inner, outer, close } = await tcpPair();
  const ws = messageStream();
  const finished: Tunnel<string>[] = [];
  const set = new TunnelSet<string>({ idleTimeout: 100, maxLifetime: 0, onFinish: (t) => finished.push(t) });
  set.open(ws, inner, 'ws');
  const ending = howItEnds(outer);
  assert.equal(await ending, 'ECONNRESET');
  await set.whenEmpty();
  assert.equal(finished.length, 1);
  assert.equal(finished[0]?.reason, 'idle_timeout');
  close();
});

function byteStreamTunnels(flushTimeout: number): { set: TunnelSet<string>; finished: Tunnel<string>[] } {
  const finished: Tunnel<string>[] = [];
  const set = new TunnelSet<string>({
    idleTimeout: 0,
    maxLifetime: 0,
    byteStream: { flushTimeout },
    onFinish: (t) => finished.push(t),
  });
  return { set, finished };
}

test('byte-stream mode: a stream destroyed before its reads ended resets the TCP side (no error needed)', async () => {
  const { inner, outer, close } = await tcpPair();
  const ws = messageStream();
  const { set, finished } = byteStreamTunnels(30_000);
  set.open(ws, inner, 'ws');
  ws.push('part');
  await until('the bytes relayed', () => outer.bytesRead === 4);
  const ending = howItEnds(outer);
  ws.destroy();
  assert.equal(await ending, 'ECONNRESET');
  await until('the tunnel finished', () => finished.length === 1);
  assert.equal(finished[0]?.reason, 'client_reset');
  assert.equal(finished[0]?.reset, true);
  close();
});
