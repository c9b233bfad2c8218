/**
 * A client that resets right after its TLS handshake, while the server's session tickets are still on their way,
 * must not leave the server a connection that never closes. Node loses a reset that its TLS layer's own write is
 * the first to meet: the read side then sees a clean end and every later write waits for good. The gateway's
 * terminator had the cut (test/fuzz/regressions.test.ts); the bridge's and the proxy's TLS listeners did not, and
 * the bridge's `close()` then waited forever for that connection (a CI run hung in test/fuzz/bridge.test.ts).
 * The proxy's tunnels were left to the idle timeout (5 minutes by default), which is set a minute away here; the
 * cut's bound is the header timeout for the proxy and the handshake timeout for the bridge.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { BridgeServer } from '../../src/bridge/server.js';
import { localhostCert } from '../helpers/certs.js';
import { until } from '../helpers/eventually.js';
import { openSockets } from '../fuzz/harness.js';
import { captureClientHello, resetAfterTlsHandshake } from '../fuzz/peers.js';
import {
  connectRequest,
  startProxy,
  startTcpEcho,
  type RunningWsviaProxy,
  type TcpPeer,
} from '../helpers/wsvia-proxy.js';

/** What the client writes once its handshake is done, just before it resets. */
const WRITES: Record<string, (port: number) => string> = {
  'a whole WebSocket upgrade': () =>
    'GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    `Sec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  'a whole CONNECT': (echoPort) => connectRequest(`127.0.0.1:${echoPort}`),
  'half a head': () => 'GET / HTTP/1.1\r\nHost: local',
  'an oversized head': () => `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(70_000)}\r\n\r\n`,
  nothing: () => '',
};

/** A bridge to the echo peer over TLS, its handshake timeout (and so its cut) 300 ms. */
async function tlsBridge(echoPort: number): Promise<BridgeServer> {
  const bridge = new BridgeServer({
    host: '127.0.0.1',
    port: 0,
    target: { host: '127.0.0.1', port: echoPort },
    tls: localhostCert(),
    handshakeTimeout: 300,
  });
  await bridge.listen();
  return bridge;
}

/** Resets after each of {@link WRITES}, four times, then waits until the process holds no more sockets than before. */
async function resetsLeaveNothingOpen(server: string, port: number, echoPort: number): Promise<void> {
  const before = openSockets();
  for (const bytes of Object.values(WRITES))
    for (let i = 0; i < 4; i++) await resetAfterTlsHandshake(port, bytes(echoPort));
  await until(
    `the ${server}'s sockets closed (${openSockets() - before} still open)`,
    () => openSockets() <= before,
    8000,
  );
}

describe('TLS listeners: a client reset met by the session tickets still releases its connection', () => {
  let echo: TcpPeer;
  before(async () => {
    echo = await startTcpEcho();
  });
  after(() => echo.close());

  it('bridge --tls-cert: every connection is closed, and close() returns', async () => {
    const bridge = await tlsBridge(echo.port);
    try {
      await resetsLeaveNothingOpen('bridge', bridge.port, echo.port);
      assert.equal(bridge.admitted, 0);
    } finally {
      await bridge.close(0);
    }
  });

  it('bridge --tls-cert: a client that sends its ClientHello and nothing more is cut at the handshake timeout', async () => {
    // Node's own default is 120 s, and a handshake that times out is only reported, not closed.
    const bridge = await tlsBridge(echo.port);
    try {
      const hello = await captureClientHello();
      const s = net.connect({ host: '127.0.0.1', port: bridge.port }, () => s.write(hello));
      s.on('error', () => {});
      s.resume();
      const closed = new Promise<boolean>((r) => s.once('close', () => r(true)));
      let timer: NodeJS.Timeout | undefined;
      const cut = await Promise.race([
        closed,
        new Promise<boolean>((r) => (timer = setTimeout(r, 5000, false))),
      ]);
      clearTimeout(timer);
      s.destroy();
      assert.ok(
        cut,
        'the bridge still held the connection 5 s after a ClientHello (handshake timeout 300 ms)',
      );
    } finally {
      await bridge.close(0);
    }
  });

  describe('proxy --tls-cert', () => {
    let proxy: RunningWsviaProxy;
    before(async () => {
      proxy = await startProxy({
        tls: localhostCert(),
        limits: { headerTimeout: 300, idleTimeout: 60_000 },
      });
    });
    after(() => proxy.close());

    it('every connection is closed and its slot comes back', async () => {
      await resetsLeaveNothingOpen('proxy', proxy.port, echo.port);
      assert.equal(proxy.server.active, 0);
    });

    it('a tunnel its client half-closed still gets every byte the destination sends after the cut time', async () => {
      // The destination answers the client's FIN with 8 pieces, 100 ms apart (more than twice the 300 ms bound),
      // then its own FIN: a cut while the tunnel still carries bytes would lose the last ones.
      const late = net.createServer({ allowHalfOpen: true }, (d) => {
        d.on('error', () => {});
        d.resume();
        d.once('end', () => {
          let n = 0;
          const next = (): void => {
            if (n === 8) return void d.end();
            d.write(`piece ${n++};`);
            setTimeout(next, 100);
          };
          next();
        });
      });
      await new Promise<void>((r) => late.listen(0, '127.0.0.1', () => r()));
      const port = (late.address() as net.AddressInfo).port;
      try {
        const t = tls.connect({
          host: '127.0.0.1',
          port: proxy.port,
          servername: 'localhost',
          rejectUnauthorized: false,
          allowHalfOpen: true,
        } as tls.ConnectionOptions);
        t.on('error', () => {});
        await new Promise<void>((r) => t.once('secureConnect', () => r()));
        t.write(connectRequest(`127.0.0.1:${port}`));
        let got = '';
        t.on('data', (b: Buffer) => {
          got += b.toString('latin1');
          if (got.includes('\r\n\r\n') && !t.writableEnded) t.end();
        });
        const ended = await new Promise<boolean>((r) => {
          t.once('end', () => r(true));
          t.once('close', () => r(false));
        });
        t.destroy();
        assert.ok(ended, 'the tunnel was cut, not ended');
        assert.equal(
          got.slice(got.indexOf('\r\n\r\n') + 4),
          Array.from({ length: 8 }, (_, i) => `piece ${i};`).join(''),
        );
      } finally {
        await new Promise<void>((r) => late.close(() => r()));
      }
    });
  });
});
