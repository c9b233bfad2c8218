import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_POLICY } from '../../src/route/destination.js';
import {
  closed,
  connectRequest,
  errorAnswer,
  readAll,
  request,
  startProxy,
  startTcpEcho,
  type RunningWsviaProxy,
  type TcpPeer,
} from '../helpers/wsvia-proxy.js';
import { until } from '../helpers/eventually.js';
import { howItEnds } from '../helpers/endings.js';
import { RELAYS, relayOptions } from '../helpers/relays.js';
import { splicedOpen } from '../../src/serve/splice-relay.js';

for (const relay of RELAYS)
  describe(`wsvia proxy: CONNECT tunnels (${relay} relay)`, relayOptions(relay), () => {
    let proxy: RunningWsviaProxy;
    let echo: TcpPeer;
    let echo6: TcpPeer;
    before(async () => {
      proxy = await startProxy({ relay });
      assert.equal(proxy.server.relay, relay);
      echo = await startTcpEcho();
      echo6 = await startTcpEcho('::1');
    });
    after(async () => {
      await proxy.close();
      await echo.close();
      await echo6.close();
    });

    for (const version of ['1.0', '1.1']) {
      it(`answers an HTTP/${version} CONNECT with "HTTP/1.1 200 Connection established" and relays both ways`, async () => {
        const a = await request(proxy.port, connectRequest(`127.0.0.1:${echo.port}`, [], version));
        assert.equal(a.head.status, 200);
        assert.equal(a.head.reason, 'Connection established');
        assert.equal(a.head.version, '1.1');
        a.socket.end('ping');
        assert.equal((await readAll(a.socket, a.rest)).toString(), 'ping');
      });
    }

    it('tunnels to IPv6 literals and to host names', async () => {
      for (const target of [`[::1]:${echo6.port}`, `localhost:${echo.port}`]) {
        const port = target.startsWith('[') ? echo6.port : echo.port;
        assert.ok(port > 0);
        const a = await request(proxy.port, connectRequest(target));
        if (target.startsWith('localhost') && a.head.status !== 200) {
          // localhost may resolve to ::1 first, where echo (IPv4) is not: both are loopback, so allowed.
          assert.equal(a.head.status, 502);
          a.socket.destroy();
          continue;
        }
        assert.equal(a.head.status, 200, target);
        a.socket.end('v6');
        assert.equal((await readAll(a.socket, a.rest)).toString(), 'v6');
      }
    });

    it('forwards the bytes sent right after the CONNECT head (an eager ClientHello)', async () => {
      const a = await request(proxy.port, `${connectRequest(`127.0.0.1:${echo.port}`)}EAGER`);
      assert.equal(a.head.status, 200);
      a.socket.end('+more');
      assert.equal((await readAll(a.socket, a.rest)).toString(), 'EAGER+more');
    });

    it('propagates half-close: the client ends, the answer still comes back', async () => {
      const a = await request(proxy.port, connectRequest(`127.0.0.1:${echo.port}`));
      if (relay === 'splice') await until('the tunnel handed to the native relay', () => splicedOpen() > 0);
      a.socket.end('half');
      // The echo peer writes after our FIN arrived: only possible if its side stayed open.
      assert.equal((await readAll(a.socket, a.rest)).toString(), 'half');
    });

    it('propagates half-close from the server side', async () => {
      const server = net.createServer({ allowHalfOpen: true }, (s) => {
        s.end('bye');
        s.on('data', () => {});
        s.on('end', () => s.destroy());
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      after(() => server.close());
      const port = (server.address() as net.AddressInfo).port;
      const a = await request(proxy.port, connectRequest(`127.0.0.1:${port}`));
      const ended = new Promise<void>((r) => a.socket.once('end', () => r()));
      a.socket.resume();
      await ended;
      // Our sending side is still open after the server's FIN.
      assert.equal(a.socket.writable, true);
      a.socket.end('x');
      await closed(a.socket);
    });

    it('resets the client when the server resets, and resets the server when the client does (ECONNRESET, not a FIN)', async () => {
      const first = echo.sockets.length;
      const a = await request(proxy.port, connectRequest(`127.0.0.1:${echo.port}`));
      a.socket.write('x');
      await until('the echo connection', () => echo.sockets.length > first);
      const upstream = echo.sockets[first] as net.Socket;
      const clientEnding = howItEnds(a.socket);
      upstream.resetAndDestroy();
      assert.equal(await clientEnding, 'ECONNRESET');

      const before = echo.sockets.length;
      const b = await request(proxy.port, connectRequest(`127.0.0.1:${echo.port}`));
      b.socket.write('y');
      await until('the second echo connection', () => echo.sockets.length > before);
      const up2 = echo.sockets[before] as net.Socket;
      // A reset with a write still queued goes out as a FIN (Node closes gracefully then): let 'y' arrive first.
      await until('the byte relayed', () => up2.bytesRead > 0);
      const upstreamEnding = howItEnds(up2);
      b.socket.resetAndDestroy();
      assert.equal(await upstreamEnding, 'ECONNRESET');
      await until('tunnels released', () => proxy.server.active === 0);
      // The slot comes back when the client socket closes; the tunnel is logged once both sides have.
      await until(
        'both tunnels logged',
        () => proxy.server.metrics.closes.get({ reason: 'client_reset' }) === 1,
      );
      assert.equal(proxy.server.metrics.closes.get({ reason: 'upstream_reset' }), 1);
      assert.equal(proxy.server.metrics.closes.get({ reason: 'client_reset' }), 1);
      // Every fd the native relay took is closed again.
      await until('no spliced relay left', () => splicedOpen() === 0);
    });
  });

describe('wsvia proxy: error answers', () => {
  let proxy: RunningWsviaProxy;
  before(async () => {
    // The default policy: ports 443 and 80 only, no private addresses.
    proxy = await startProxy({ policy: DEFAULT_POLICY });
  });
  after(() => proxy.close());

  it('denies loopback by default with 403, Proxy-Status and the rule', async () => {
    const r = await errorAnswer(proxy.port, connectRequest('127.0.0.1:443'));
    assert.equal(r.status, 403);
    assert.match(r.proxyStatus, /^wsvia; error=destination_ip_prohibited; details=/);
    assert.match(r.rule ?? '', /loopback address, denied by default/);
    assert.match(r.body, /denied by rule: .*--allow-private/);
  });

  it('denies ports outside --allow-ports with 403 naming the rule', async () => {
    const r = await errorAnswer(proxy.port, connectRequest('93.184.216.34:22'));
    assert.equal(r.status, 403);
    assert.equal(r.rule, 'port 22 is not in --allow-ports 443,80');
  });

  it('denies the cloud metadata address even as a name resolution result', async () => {
    const r = await errorAnswer(proxy.port, connectRequest('169.254.169.254:80'));
    assert.equal(r.status, 403);
    assert.match(r.rule ?? '', /metadata/);
  });

  it('answers a malformed authority with 400', async () => {
    const r = await errorAnswer(proxy.port, connectRequest('::1:443'));
    assert.equal(r.status, 400);
    assert.match(r.proxyStatus, /error=http_request_error/);
  });

  it('answers garbage with 400 and an origin-form request with a clear 400', async () => {
    const g = await errorAnswer(proxy.port, 'NOT HTTP AT ALL\r\n\r\n');
    assert.equal(g.status, 400);
    const o = await errorAnswer(proxy.port, 'GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.equal(o.status, 400);
    assert.match(o.body, /this is a forward proxy/);
  });

  it('answers a DNS failure with 502 dns_error and the reason', async () => {
    const r = await errorAnswer(proxy.port, connectRequest('no-such-host.invalid:443'));
    assert.equal(r.status, 502);
    assert.match(r.proxyStatus, /error=dns_error/);
    assert.match(r.body, /cannot resolve no-such-host\.invalid/);
  });
});

describe('wsvia proxy: rules', () => {
  it('--deny wins over --allow, and --allow-private lifts the loopback denial', async () => {
    const echo = await startTcpEcho();
    const { parseHostRule, parsePortList } = await import('../../src/route/destination.js');
    const p = await startProxy({
      policy: {
        ports: parsePortList(String(echo.port)),
        allowPrivate: true,
        allow: [],
        deny: [parseHostRule('*.blocked.test'), parseHostRule('127.0.0.2')],
      },
    });
    after(async () => {
      await p.close();
      await echo.close();
    });
    const ok = await request(p.port, connectRequest(`127.0.0.1:${echo.port}`));
    assert.equal(ok.head.status, 200);
    ok.socket.destroy();
    const denied = await errorAnswer(p.port, connectRequest(`127.0.0.2:${echo.port}`));
    assert.equal(denied.status, 403);
    assert.equal(denied.rule, '--deny 127.0.0.2');
    const byName = await errorAnswer(p.port, connectRequest(`a.blocked.test:${echo.port}`));
    assert.equal(byName.status, 403);
    assert.equal(byName.rule, '--deny *.blocked.test');
  });
});
