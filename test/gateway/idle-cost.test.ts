/**
 * What an idle WebSocket keeps in the gateway (issue 15): its two sockets carry the same listener functions as
 * every other WebSocket's (module-level handlers, the relay found through the socket), never a closure or a
 * `once()` wrapper of their own, which would keep per-connection state (the request's setup scope) alive for the
 * WebSocket's whole life. bench/heap-diff.ts measures the bytes; this checks the shape, on real sockets.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import type WebSocket from 'ws';
import { until } from '../helpers/eventually.js';
import { closed, openWs, startGateway, startUpstream, type TestGateway, type Upstream } from './peers.js';

const EVENTS = ['data', 'end', 'error', 'close', 'drain', 'timeout', 'finish'] as const;

/** The gateway's open sockets on one side: accepted on `localPort`, or connected to `remotePort`. */
function socketsWhere(match: (s: net.Socket) => boolean): net.Socket[] {
  const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
  return handles.filter((h): h is net.Socket => h instanceof net.Socket && !h.destroyed && match(h));
}

/** The listeners `a` has that `b` does not share (by identity), per event. */
function ownListeners(a: net.Socket, b: net.Socket): string[] {
  const own: string[] = [];
  for (const e of EVENTS) {
    const theirs = new Set(b.rawListeners(e));
    for (const l of a.rawListeners(e)) if (!theirs.has(l)) own.push(`${e}: ${l.name || '(anonymous)'}`);
  }
  return own;
}

describe('gateway: an idle WebSocket keeps no closures of its own', { timeout: 30_000 }, () => {
  let upstream: Upstream;
  let gw: TestGateway;
  const open: WebSocket[] = [];
  before(async () => {
    upstream = await startUpstream('idle');
    // The JavaScript relay's sockets: under the native relay (relay: auto) an idle WebSocket has no JavaScript
    // socket at all until an event hands it back (test/gateway/ws-relays.test.ts).
    gw = await startGateway(`
listen: 127.0.0.1:0
relay: js
routes: [{ path: /, upstream: ${upstream.url} }]
idle-timeout: 3600
`);
  });
  after(async () => {
    await gw.gateway.close();
    await upstream.close();
  });

  it('both sockets of two idle WebSockets share every listener function', async () => {
    for (let i = 0; i < 2; i++) open.push((await openWs(`${gw.wsUrl}/idle`)).ws);
    const gwPort = Number(new URL(gw.url).port);
    const clientSides = (): net.Socket[] => socketsWhere((s) => s.localPort === gwPort);
    // Carrying a request: the warm pool's connections waiting for one (src/gateway/warm-pool.ts) are not WebSockets.
    const upstreamSides = (): net.Socket[] =>
      socketsWhere((s) => s.remotePort === upstream.port && s.bytesWritten > 0);
    await until('both WebSockets relayed', () => gw.gateway.openWebSockets === 2);
    const [c1, c2] = clientSides();
    const [u1, u2] = upstreamSides();
    assert.ok(c1 && c2 && u1 && u2, 'the gateway holds two client and two upstream sockets');
    assert.deepEqual(ownListeners(c1, c2), [], 'client sockets');
    assert.deepEqual(ownListeners(u1, u2), [], 'upstream sockets');
    for (const ws of open) ws.close();
    await Promise.all(open.map(closed));
    await until('both WebSockets logged', () => gw.gateway.openWebSockets === 0);
  });
});
