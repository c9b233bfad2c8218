/**
 * A target that resets right behind its last bytes, through `wsvia tunnel -L` and `wsvia bridge`: the tunnel's local
 * client reads a reset, never a clean end. On Node 20 and 22 the bridge's read of those bytes and the RST looked like
 * a FIN (libuv's POLLHUP short-circuit), which the bridge passed on as the tunnel protocol's `eof`.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startBridge, type Bridge } from '../../src/bridge/server.js';
import { startLocalTunnel, type LocalTunnel } from '../../src/bridge/tunnel.js';
import { dialTcp, runSessions, seededBytes, Tally, tcpSession } from './sessions.js';

describe('faults: a target that resets right behind its answer, through tunnel and bridge', () => {
  const sockets = new Set<net.Socket>();
  let resetter: net.Server;
  let bridge: Bridge;
  let tunnel: LocalTunnel;
  before(async () => {
    // Answers the request's end with 1000 bytes and an RST in the same moment.
    resetter = net.createServer({ allowHalfOpen: true }, (s) => {
      sockets.add(s);
      s.on('error', () => {});
      s.on('end', () => {
        s.write(Buffer.alloc(1000, 1));
        s.resetAndDestroy();
      });
      s.resume();
    });
    await new Promise<void>((r) => resetter.listen(0, '127.0.0.1', r));
    const port = (resetter.address() as net.AddressInfo).port;
    bridge = await startBridge({ port: 0, target: { host: '127.0.0.1', port } });
    tunnel = await startLocalTunnel({ host: '127.0.0.1', port: 0 }, { url: bridge.url, onError: () => {} });
  });
  after(async () => {
    await tunnel?.close();
    await bridge?.close();
    for (const s of sockets) s.destroy();
    await new Promise((r) => resetter?.close(r));
  });

  it('the local client reads a reset, not an end, every time', async () => {
    const tally = new Tally();
    await runSessions(
      10,
      5,
      (i) => tcpSession(() => dialTcp(tunnel.port), seededBytes(i, 100), 5000),
      tally,
      'bridge',
    );
    assert.deepEqual(tally.silent, [], tally.summary());
    assert.equal(tally.failures.get('ECONNRESET'), 10, tally.summary());
  });
});
