/**
 * Absolute-form requests that go wrong on purpose: a malformed body, an upstream that floods interim heads, a
 * Connection header that names a framing field. Each through the real proxy, counting its slots afterwards.
 */
import assert from 'node:assert/strict';
import net, { type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { MAX_INTERIM_RESPONSES } from '../../src/proxy/forward.js';
import { readAll, request, startProxy, type RunningWsviaProxy } from '../helpers/wsvia-proxy.js';
import { until } from '../helpers/eventually.js';

/** A raw origin that records what each connection sent and runs `onConnection` for it. */
async function rawOrigin(
  onConnection: (s: net.Socket) => void = (s) => s.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'),
): Promise<{ port: number; received: Buffer[]; connections: number; close(): void }> {
  const state = { received: [] as Buffer[], connections: 0 };
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    state.connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    const got: Buffer[] = [];
    state.received.push(Buffer.alloc(0));
    const i = state.received.length - 1;
    s.on('data', (c: Buffer) => {
      got.push(c);
      state.received[i] = Buffer.concat(got);
    });
    onConnection(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as AddressInfo).port,
    get received() {
      return state.received;
    },
    get connections() {
      return state.connections;
    },
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

describe('wsvia proxy: forwarded requests that fail', () => {
  let proxy: RunningWsviaProxy;
  before(async () => {
    proxy = await startProxy({ limits: { maxTunnelsPerClient: 3, maxTunnels: 5 } });
  });
  after(() => proxy.close());

  it('a malformed chunked body gives its slot back: more such requests than the per-client limit, then a good one', async () => {
    // The upstream never answers: only the client's broken body can end these exchanges.
    const silent = await rawOrigin(() => {});
    after(() => silent.close());
    for (let i = 0; i < 8; i++) {
      const a = await request(
        proxy.port,
        `POST http://127.0.0.1:${silent.port}/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n`,
      );
      assert.equal(a.head.status, 400, `request ${i} refused for its body`);
      a.socket.destroy();
      await until('the slot released', () => proxy.server.active === 0);
    }
    // The same, with the broken chunk arriving after the head was already forwarded.
    const socket = net.connect(proxy.port, '127.0.0.1');
    socket.on('error', () => {});
    socket.write(
      `POST http://127.0.0.1:${silent.port}/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n`,
    );
    await until(
      'the head to reach the upstream',
      () => silent.received.at(-1)?.includes('\r\n\r\n') === true,
    );
    socket.write('zz\r\n');
    assert.match((await readAll(socket)).toString(), /^HTTP\/1\.1 400 /);
    await until('the slot released', () => proxy.server.active === 0);

    const good = await rawOrigin();
    after(() => good.close());
    const a = await request(proxy.port, `GET http://127.0.0.1:${good.port}/ HTTP/1.1\r\nHost: x\r\n\r\n`);
    assert.equal(a.head.status, 200);
    assert.equal((await readAll(a.socket, a.rest)).toString(), 'ok');
    await until('the slot released', () => proxy.server.active === 0);
    assert.equal(proxy.server.metrics.tunnelsActive.get({}), 0);
  });

  it('an upstream that streams 100 Continue heads without end to a client that does not read: 502 after a bounded number, upstream closed', async () => {
    let written = 0;
    let upstreamClosed = false;
    const flood = await rawOrigin((s) => {
      const head = Buffer.from('HTTP/1.1 100 Continue\r\nX-Pad: ' + 'p'.repeat(200) + '\r\n\r\n');
      const pump = setInterval(() => {
        for (let i = 0; i < 50 && !s.destroyed; i++) {
          s.write(head);
          written++;
        }
      }, 1);
      s.on('close', () => {
        upstreamClosed = true;
        clearInterval(pump);
      });
    });
    after(() => flood.close());
    const client = net.connect(proxy.port, '127.0.0.1');
    client.on('error', () => {});
    after(() => client.destroy());
    client.write(`GET http://127.0.0.1:${flood.port}/ HTTP/1.1\r\nHost: x\r\n\r\n`);
    client.pause(); // never reads
    await until('the proxy to close the flooding upstream', () => upstreamClosed);
    await until('the slot released', () => proxy.server.active === 0);
    assert.ok(written > 0);
    // Others are served meanwhile, while the first client still has not read a byte.
    const good = await rawOrigin();
    after(() => good.close());
    const a = await request(proxy.port, `GET http://127.0.0.1:${good.port}/ HTTP/1.1\r\nHost: x\r\n\r\n`);
    assert.equal(a.head.status, 200);
    a.socket.destroy();
    // What the first client gets once it reads: the interim heads passed on, at most MAX_INTERIM_RESPONSES, then 502.
    const text = (await readAll(client)).toString('latin1');
    const interim = text.split('HTTP/1.1 100 Continue').length - 1;
    assert.ok(interim <= MAX_INTERIM_RESPONSES, `${interim} interim heads passed on`);
    assert.match(text, /HTTP\/1\.1 502 Bad Gateway\r\n[^]*more than 16 interim/);
  });

  it('a Connection header naming Content-Length or Transfer-Encoding: 400, the upstream receives nothing', async () => {
    const origin = await rawOrigin();
    after(() => origin.close());
    const smuggled = 'GET /admin HTTP/1.1\r\nHost: x\r\n\r\n';
    for (const [conn, framing] of [
      ['Content-Length', `Content-Length: ${smuggled.length}\r\n\r\n${smuggled}`],
      [
        'close, Transfer-Encoding',
        `Transfer-Encoding: chunked\r\n\r\n${smuggled.length.toString(16)}\r\n${smuggled}\r\n0\r\n\r\n`,
      ],
    ] as const) {
      const a = await request(
        proxy.port,
        `POST http://127.0.0.1:${origin.port}/ HTTP/1.1\r\nHost: x\r\nConnection: ${conn}\r\n${framing}`,
      );
      assert.equal(a.head.status, 400, conn);
      assert.match((await readAll(a.socket, a.rest)).toString(), /Connection header naming/);
    }
    assert.equal(origin.connections, 0);
    assert.equal(proxy.server.active, 0);
  });
});
