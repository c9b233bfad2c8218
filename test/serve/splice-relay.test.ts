/**
 * The handover to the native splice relay, on the TunnelSet itself: bytes Node had already read and writes still
 * pending are carried before the spliced bytes, in order; byte counts are exact; the sockets' close listeners run
 * only when the native relay ends; every fd it took is closed again.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { after, test } from 'node:test';
import { Admission, AdmissionRefusal, releaseOnClose } from '../../src/serve/admission.js';
import { TunnelSet, type Tunnel } from '../../src/serve/relay.js';
import { spliceSupport, splicedOpen } from '../../src/serve/splice-relay.js';
import { until } from '../helpers/eventually.js';
import { openFds } from '../helpers/fds.js';
import { heapAfterGc } from '../fuzz/harness.js';
import { howItEnds } from '../helpers/endings.js';
import { relayOptions } from '../helpers/relays.js';

/** A TCP pair: `inner` goes to the relay, `outer` is the far peer the test drives. */
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

/** Every set made here: a failed test must not leave native relays open (they keep the process alive). */
const sets: TunnelSet<string>[] = [];
after(() => {
  for (const set of sets) set.abortAll('server_closed');
});

function spliceSet(idleTimeout = 0): { set: TunnelSet<string>; finished: Tunnel<string>[] } {
  const finished: Tunnel<string>[] = [];
  const set = new TunnelSet<string>({
    idleTimeout,
    maxLifetime: 0,
    relay: 'splice',
    onFinish: (t) => finished.push(t),
  });
  sets.push(set);
  return { set, finished };
}

function collect(s: net.Socket): { bytes: () => Buffer } {
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  return { bytes: () => Buffer.concat(chunks) };
}

const SKIP = relayOptions('splice');

test(
  'the handover carries what Node had read and what it still had to write, then splices, with exact byte counts',
  SKIP,
  async () => {
    assert.ok(spliceSupport().available);
    const a = await tcpPair();
    const b = await tcpPair();
    const { set, finished } = spliceSet();
    assert.equal(set.relay, 'splice');
    // Bytes already in Node's read buffer of the client side, before the tunnel opens.
    a.outer.write('early-from-client;');
    await until('Node read the early bytes', () => a.inner.readableLength > 0);
    // A write still pending on the upstream side: 8 MiB while its peer does not read.
    b.outer.pause();
    const pending = Buffer.alloc(8 << 20, 0x62);
    b.inner.write(pending);
    assert.ok(b.inner.writableLength > 0, 'a write is still pending');
    const atB = collect(b.outer);
    const atA = collect(a.outer);
    // The far end has every byte once it reads the FIN (the tunnel may finish before the last bytes are read).
    const bEnded = once(b.outer, 'end');
    set.open(a.inner, b.inner, 'spliced');
    b.outer.resume();
    const big = Buffer.alloc(4 << 20, 0x61);
    a.outer.end(big);
    b.outer.end('answer');
    await until('the tunnel finished', () => finished.length === 1, 20_000);
    const t = finished[0] as Tunnel<string>;
    await bEnded;
    assert.equal(atB.bytes().length, pending.length + 18 + big.length);
    assert.equal(
      atB
        .bytes()
        .subarray(pending.length, pending.length + 18)
        .toString(),
      'early-from-client;',
    );
    await until('the answer arrived', () => atA.bytes().toString() === 'answer');
    // As with the JavaScript relay, bytes read before the tunnel opened belong to its setup (a request head).
    assert.equal(t.bytesUp, big.length);
    assert.equal(t.bytesDown, 6);
    assert.equal(t.reset, false);
    assert.match(t.reason ?? '', /^(client|upstream)_closed$/);
    await until('every spliced fd closed', () => splicedOpen() === 0);
    a.close();
    b.close();
  },
);

test(
  'a spliced tunnel keeps no socket object alive, and its admission slot comes back when the relay ends',
  SKIP,
  async () => {
    const a = await tcpPair();
    const b = await tcpPair();
    const { set, finished } = spliceSet();
    const admission = new Admission({ maxConnections: 10, maxPerClient: 10 });
    const slot = admission.admit('127.0.0.1');
    assert.ok(!(slot instanceof AdmissionRefusal));
    releaseOnClose(a.inner, slot);
    const sockets = [new WeakRef(a.inner), new WeakRef(b.inner)];
    set.open(a.inner, b.inner, 'idle');
    try {
      await until('handed over', () => splicedOpen() > 0);
      // Only the WeakRefs point at the two sockets now (the test's pairs drop theirs).
      Reflect.deleteProperty(a, 'inner');
      Reflect.deleteProperty(b, 'inner');
      await until(
        'both socket objects collected',
        () => {
          heapAfterGc();
          return sockets.every((r) => r.deref() === undefined);
        },
        5000,
      );
      a.outer.write('ping');
      const atB = collect(b.outer);
      await until('relayed', () => atB.bytes().toString() === 'ping');
      assert.equal(admission.open, 1, 'the slot is held while the native relay carries the tunnel');
      a.outer.end();
      b.outer.end();
      await until('the tunnel finished', () => finished.length === 1);
      assert.equal(admission.open, 0);
    } finally {
      a.outer.destroy();
      b.outer.destroy();
      a.close();
      b.close();
    }
  },
);

test("the sockets' close listeners run when the native relay ends, not at the handover", SKIP, async () => {
  const a = await tcpPair();
  const b = await tcpPair();
  const { set, finished } = spliceSet();
  let closes = 0;
  a.inner.on('close', () => closes++);
  set.open(a.inner, b.inner, 'held');
  await until('handed over', () => splicedOpen() > 0);
  a.outer.write('ping');
  const atB = collect(b.outer);
  await until('relayed', () => atB.bytes().toString() === 'ping');
  assert.equal(closes, 0, 'the client socket still counts as open while the native relay holds it');
  const ending = howItEnds(a.outer);
  b.outer.resetAndDestroy();
  assert.equal(await ending, 'ECONNRESET');
  await until('the tunnel finished', () => finished.length === 1);
  assert.equal(closes, 1);
  assert.equal(finished[0]?.reason, 'upstream_reset');
  assert.equal(finished[0]?.reset, true);
  await until('every spliced fd closed', () => splicedOpen() === 0);
  a.close();
  b.close();
});

test('the idle sweep cuts a spliced tunnel: both sides reset, reason idle_timeout', SKIP, async () => {
  const a = await tcpPair();
  const b = await tcpPair();
  const { set, finished } = spliceSet(200);
  set.open(a.inner, b.inner, 'idle');
  const endings = [howItEnds(a.outer), howItEnds(b.outer)];
  assert.deepEqual(await Promise.all(endings), ['ECONNRESET', 'ECONNRESET']);
  await set.whenEmpty();
  assert.equal(finished[0]?.reason, 'idle_timeout');
  await until('every spliced fd closed', () => splicedOpen() === 0);
  a.close();
  b.close();
});

test('idle spliced tunnels hold no pipe: a pipe is taken only while bytes are in flight', SKIP, async () => {
  const { set, finished } = spliceSet();
  const pairs: { inner: net.Socket; outer: net.Socket; close: () => void }[][] = [];
  for (let i = 0; i < 20; i++) pairs.push([await tcpPair(), await tcpPair()]);
  // The cut at the end resets every far peer.
  for (const pair of pairs) for (const p of pair) p.outer.on('error', () => {});
  const before = openFds('pipe');
  for (const [a, b] of pairs) set.open(a!.inner, b!.inner, 'idle');
  await until('all handed over', () => splicedOpen() === 20);
  // A byte through one tunnel takes a pipe from the pool (or makes one) and gives it back once relayed.
  const [a0, b0] = pairs[0]!;
  const got = collect(b0!.outer);
  a0!.outer.write('z');
  await until('the byte relayed', () => got.bytes().length === 1);
  // 20 idle tunnels: at most the one pipe pair the byte used, kept in the pool, not 2 pipes (4 fds) per tunnel.
  assert.ok(openFds('pipe') - before <= 2, `${openFds('pipe') - before} pipe fds for 20 idle tunnels`);
  set.abortAll('drain');
  await set.whenEmpty();
  assert.equal(finished.length, 20);
  for (const [a, b] of pairs) {
    a!.close();
    b!.close();
  }
});
