/**
 * With the native relay, a CONNECT tunnel's destination is dialed by the addon (native/splice/dial.c): no socket
 * object is made for it, and the native relay carries the tunnel from its first byte, whatever `spliceAfter` says.
 * Bytes the client sent with its CONNECT still go first, and a client that leaves during the dial gets its slot back
 * and leaves no fd open.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it, mock } from 'node:test';
import { SPLICE_AFTER } from '../../src/proxy/options.js';
import { nativeDialer, splicedOpen } from '../../src/serve/splice-relay.js';
import { startBlackhole, type Blackhole } from '../helpers/blackhole.js';
import { until } from '../helpers/eventually.js';
import { openFds } from '../helpers/fds.js';
import { relayOptions } from '../helpers/relays.js';
import {
  connectRequest,
  readAll,
  request,
  startProxy,
  startTcpEcho,
  type RunningWsviaProxy,
  type TcpPeer,
} from '../helpers/wsvia-proxy.js';

describe('wsvia proxy: the native dialer (splice relay)', relayOptions('splice'), () => {
  let proxy: RunningWsviaProxy;
  let echo: TcpPeer;
  let hole: Blackhole;
  before(async () => {
    assert.ok(nativeDialer(), 'the loaded addon has no dialer');
    // The proxy's own spliceAfter: a tunnel dialed in JavaScript would stay there for its first 64 KiB.
    proxy = await startProxy({ relay: 'splice', spliceAfter: SPLICE_AFTER, limits: { connectTimeout: 300 } });
    echo = await startTcpEcho();
    hole = await startBlackhole();
  });
  after(async () => {
    await proxy.close();
    await echo.close();
    hole.stop();
  });

  it('a tunnel is on the native relay before its first byte, its destination has no socket object, and it is counted and logged as any tunnel', async () => {
    // One connect: the test's own to the proxy; the proxy's to the echo is the addon's.
    const connects = mock.method(net.Socket.prototype, 'connect');
    const a = await request(proxy.port, connectRequest(`127.0.0.1:${echo.port}`));
    assert.equal(connects.mock.callCount(), 1);
    connects.mock.restore();
    assert.equal(a.head.status, 200);
    assert.equal(splicedOpen(), 1, 'the tunnel was not handed to the native relay at its 200');
    const rest = readAll(a.socket, a.rest);
    a.socket.end('hello');
    assert.equal((await rest).toString(), 'hello');
    await until(
      'the tunnel logged',
      () => proxy.server.metrics.closes.get({ reason: 'client_closed' }) === 1,
    );
    assert.equal(proxy.server.metrics.bytes.get({ direction: 'up' }), 5);
    assert.equal(proxy.server.metrics.bytes.get({ direction: 'down' }), 5);
    assert.equal(splicedOpen(), 0);
    await until('the slot given back', () => proxy.server.active === 0);
  });

  it('an IPv6 destination is dialed natively too', async () => {
    const echo6 = await startTcpEcho('::1');
    after(() => echo6.close());
    const a = await request(proxy.port, connectRequest(`[::1]:${echo6.port}`));
    assert.equal(a.head.status, 200);
    assert.equal(splicedOpen(), 1);
    const rest = readAll(a.socket, a.rest);
    a.socket.end('six');
    assert.equal((await rest).toString(), 'six');
    // The echo listens on ::1 alone: what came back came through an IPv6 connection of the addon's.
    assert.equal(echo6.sockets.length, 1);
    await until('the slot given back', () => proxy.server.active === 0);
  });

  it('bytes sent with the CONNECT reach the destination first, written at once, and the tunnel is still spliced', async () => {
    const a = await request(proxy.port, `${connectRequest(`127.0.0.1:${echo.port}`)}early,`);
    assert.equal(a.head.status, 200);
    assert.equal(splicedOpen(), 1);
    const rest = readAll(a.socket, a.rest);
    a.socket.end('late');
    assert.equal((await rest).toString(), 'early,late');
    await until('the slot given back', () => proxy.server.active === 0);
  });

  it('a client that leaves during the dial: its slot is given back and the dialed fd closed', async () => {
    const fds = openFds();
    const failed = proxy.server.metrics.responses.get({ status: '504' });
    const c = net.connect({ host: '127.0.0.1', port: proxy.port });
    c.on('error', () => {});
    c.write(connectRequest(`127.0.0.1:${hole.port}`));
    await until('the dial under way', () => proxy.server.active === 1);
    c.destroy();
    await until('the slot given back', () => proxy.server.active === 0);
    // The dial itself ends at --connect-timeout, with no client left to answer.
    await until('the dial ended', () => proxy.server.metrics.responses.get({ status: '504' }) === failed + 1);
    await until('every fd closed', () => openFds() === fds);
  });
});
