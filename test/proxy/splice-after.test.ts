/**
 * A tunnel whose destination has a socket object (through a parent proxy: a CONNECT straight to its destination is
 * dialed natively and spliced from its first byte, test/proxy/native-dial.test.ts) starts on the JavaScript relay
 * and moves to the native splice relay once it carries `spliceAfter` bytes in one direction (64 KiB by default), or
 * once it has been open 2 s: a tunnel that opens, says a little and closes never pays for the handover; a bulk
 * transfer moves mid-stream without losing, reordering or miscounting a byte; a long-lived one, idle or not, ends
 * up held by the native relay. The parent relays in JavaScript, so every spliced relay counted is this proxy's.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { SPLICE_AFTER } from '../../src/proxy/options.js';
import { parseProxyUrl } from '../../src/route/proxy-url.js';
import { splicedOpen } from '../../src/serve/splice-relay.js';
import { until } from '../helpers/eventually.js';
import { howItEnds } from '../helpers/endings.js';
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

/** `n` bytes that say where they are: a byte lost, doubled or moved changes what comes back. */
function pattern(n: number, from = 0): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = ((from + i) * 7 + ((from + i) >> 8)) & 0xff;
  return b;
}

describe(
  'wsvia proxy: tunnels move to the native relay after spliceAfter bytes',
  relayOptions('splice'),
  () => {
    let proxy: RunningWsviaProxy;
    let parent: RunningWsviaProxy;
    let echo: TcpPeer;
    before(async () => {
      parent = await startProxy({ relay: 'js' });
      // The proxy's own default (startProxy hands over at once unless told otherwise).
      proxy = await startProxy({
        relay: 'splice',
        spliceAfter: SPLICE_AFTER,
        upstream: parseProxyUrl(`http://127.0.0.1:${parent.port}`),
      });
      assert.equal(proxy.server.relay, 'splice');
      echo = await startTcpEcho();
    });
    after(async () => {
      await proxy.close();
      await parent.close();
      await echo.close();
    });

    it('a tunnel that says a little stays on the JavaScript relay: no handover', async () => {
      const a = await request(proxy.port, connectRequest(`127.0.0.1:${echo.port}`));
      assert.equal(a.head.status, 200);
      const got: Buffer[] = [a.rest];
      a.socket.on('data', (c: Buffer) => got.push(c));
      a.socket.resume();
      a.socket.write('hello');
      await until('the echo', () => Buffer.concat(got).toString() === 'hello');
      assert.equal(splicedOpen(), 0, 'a 5-byte tunnel was handed to the native relay');
      a.socket.end();
      await until(
        'the tunnel logged',
        () => proxy.server.metrics.closes.get({ reason: 'client_closed' }) === 1,
      );
      assert.equal(proxy.server.metrics.bytes.get({ direction: 'up' }), 5);
      assert.equal(proxy.server.metrics.bytes.get({ direction: 'down' }), 5);
    });

    it('a bulk tunnel moves mid-stream: every byte both ways, in order, counted once, half-close after the move', async () => {
      const upBefore = proxy.server.metrics.bytes.get({ direction: 'up' });
      const downBefore = proxy.server.metrics.bytes.get({ direction: 'down' });
      const a = await request(proxy.port, connectRequest(`127.0.0.1:${echo.port}`));
      assert.equal(a.head.status, 200);
      const first = 256 * 1024;
      const total = 768 * 1024;
      const got: Buffer[] = [a.rest];
      let size = a.rest.length;
      const onData = (c: Buffer): void => {
        got.push(c);
        size += c.length;
      };
      a.socket.on('data', onData);
      a.socket.resume();
      a.socket.write(pattern(first));
      await until('the first part echoed', () => size === first);
      await until('the tunnel handed to the native relay', () => splicedOpen() > 0);
      a.socket.removeListener('data', onData);
      const rest = readAll(a.socket, Buffer.concat(got));
      a.socket.end(pattern(total - first, first));
      const all = await rest;
      assert.equal(all.length, total);
      assert.ok(all.equals(pattern(total)), 'the echo differs from what was sent');
      await until('the tunnel logged', () => proxy.server.metrics.bytes.get({ direction: 'up' }) > upBefore);
      assert.equal(proxy.server.metrics.bytes.get({ direction: 'up' }) - upBefore, total);
      assert.equal(proxy.server.metrics.bytes.get({ direction: 'down' }) - downBefore, total);
      await until('every spliced fd closed', () => splicedOpen() === 0);
    });

    it('a tunnel that stays open moves at the sweep 2 s after it opened, idle, and still ends as a FIN', async () => {
      const upBefore = proxy.server.metrics.bytes.get({ direction: 'up' });
      const opened = Date.now();
      const a = await request(proxy.port, connectRequest(`127.0.0.1:${echo.port}`));
      assert.equal(a.head.status, 200);
      const got: Buffer[] = [a.rest];
      a.socket.on('data', (c: Buffer) => got.push(c));
      a.socket.resume();
      a.socket.write('x');
      await until('the echo', () => Buffer.concat(got).toString() === 'x');
      await until('the idle tunnel handed to the native relay', () => splicedOpen() > 0);
      assert.ok(Date.now() - opened >= 1900, 'moved before it had been open 2 s');
      a.socket.end('y');
      await until('the echo after the move and the end', () => a.socket.readableEnded);
      assert.equal(Buffer.concat(got).toString(), 'xy');
      await until('every spliced fd closed', () => splicedOpen() === 0);
      await until(
        'the tunnel logged',
        () => proxy.server.metrics.bytes.get({ direction: 'up' }) - upBefore === 2,
      );
    });

    it('after the move, a reset from the destination reaches the client as a reset', async () => {
      const known = echo.sockets.length;
      const a = await request(proxy.port, connectRequest(`127.0.0.1:${echo.port}`));
      assert.equal(a.head.status, 200);
      let size = 0;
      a.socket.on('data', (c: Buffer) => (size += c.length));
      a.socket.resume();
      a.socket.write(pattern(128 * 1024));
      await until('echoed', () => size === 128 * 1024);
      await until('the tunnel handed to the native relay', () => splicedOpen() > 0);
      const ending = howItEnds(a.socket);
      (echo.sockets[known] as net.Socket).resetAndDestroy();
      assert.equal(await ending, 'ECONNRESET');
      await until('every spliced fd closed', () => splicedOpen() === 0);
    });
  },
);
