import assert from 'node:assert/strict';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { StaticUsers } from '../../src/auth/server-auth.js';
import { startEchoServer, type EchoServer } from '../../src/echo/echo-server.js';
import { getHeader } from '../../src/protocol/headers.js';
import { readAll, request, startProxy, type RunningWsviaProxy } from '../helpers/wsvia-proxy.js';
import { until } from '../helpers/eventually.js';

const AUTH = `Proxy-Authorization: Basic ${Buffer.from('u:p').toString('base64')}`;

describe('wsvia proxy: absolute-form requests', () => {
  let proxy: RunningWsviaProxy;
  let echo: EchoServer;
  let origin: http.Server;
  let originPort: number;
  const seen: { headers: string[]; body: string; url: string }[] = [];
  before(async () => {
    proxy = await startProxy({ users: new StaticUsers(['u:p']) });
    echo = await startEchoServer();
    origin = http.createServer((req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (c: Buffer) => parts.push(c));
      req.on('end', () => {
        seen.push({ headers: req.rawHeaders, body: Buffer.concat(parts).toString(), url: req.url ?? '' });
        res.setHeader('Keep-Alive', 'timeout=5');
        res.setHeader('X-Origin', 'yes');
        res.end(`got ${Buffer.concat(parts).length} bytes`);
      });
    });
    await new Promise<void>((r) => origin.listen(0, '127.0.0.1', () => r()));
    originPort = (origin.address() as AddressInfo).port;
  });
  after(async () => {
    await proxy.close();
    await echo.close();
    origin.closeAllConnections();
    await new Promise((r) => origin.close(r));
  });

  it('forwards GET in origin-form, hop-by-hop fields removed, Via added, Proxy-Authorization kept back', async () => {
    const a = await request(
      proxy.port,
      `GET http://127.0.0.1:${originPort}/path?q=1 HTTP/1.1\r\nHost: wrong.example\r\n${AUTH}\r\n` +
        'Connection: keep-alive, X-Hop\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nX-Hop: 1\r\nX-End: 2\r\n\r\n',
    );
    assert.equal(a.head.status, 200);
    assert.equal(getHeader(a.head.headers, 'via'), '1.1 wsvia');
    assert.equal(getHeader(a.head.headers, 'connection'), 'close');
    assert.equal(getHeader(a.head.headers, 'keep-alive'), undefined);
    assert.equal(getHeader(a.head.headers, 'x-origin'), 'yes');
    assert.equal((await readAll(a.socket, a.rest)).toString(), 'got 0 bytes');
    const got = seen[seen.length - 1];
    assert.ok(got);
    assert.equal(got.url, '/path?q=1');
    const names = got.headers.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
    for (const hop of ['proxy-authorization', 'keep-alive', 'proxy-connection', 'x-hop'])
      assert.ok(!names.includes(hop), `${hop} removed`);
    assert.ok(names.includes('x-end'));
    const value = (n: string): string | undefined =>
      got.headers[got.headers.findIndex((h) => h.toLowerCase() === n) + 1];
    assert.equal(value('host'), `127.0.0.1:${originPort}`);
    assert.equal(value('via'), '1.1 wsvia');
  });

  it('streams a chunked request body through, framing untouched', async () => {
    let firstChunk = '';
    origin.once('request', (req: http.IncomingMessage) =>
      req.once('data', (c: Buffer) => (firstChunk = c.toString())),
    );
    const socket = net.connect(proxy.port, '127.0.0.1');
    socket.write(
      `POST http://127.0.0.1:${originPort}/up HTTP/1.1\r\nHost: x\r\n${AUTH}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n`,
    );
    // The rest of the body comes only once the origin has the first chunk: store-and-forward would never get here.
    await until('the origin to receive the first chunk', () => firstChunk === 'hello');
    socket.write('6\r\n world\r\n0\r\n\r\n');
    const text = (await readAll(socket)).toString();
    assert.match(text, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(text, /got 11 bytes$/);
    assert.equal(seen[seen.length - 1]?.body, 'hello world');
  });

  it("forwards a plain ws:// Upgrade and answers with the server's own 101, then relays frames", async () => {
    const a = await request(
      proxy.port,
      `GET http://127.0.0.1:${echo.port}/chat HTTP/1.1\r\nHost: 127.0.0.1:${echo.port}\r\n${AUTH}\r\n` +
        'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n' +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    );
    assert.equal(a.head.status, 101);
    assert.equal(getHeader(a.head.headers, 'sec-websocket-accept'), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
    assert.equal(getHeader(a.head.headers, 'upgrade'), 'websocket');
    assert.equal(getHeader(a.head.headers, 'via'), '1.1 wsvia');
    // A masked text frame "hi" (RFC 6455 §5.2); the echo comes back unmasked.
    const mask = Buffer.from([1, 2, 3, 4]);
    const payload = Buffer.from('hi').map((b, i) => b ^ (mask[i % 4] as number));
    a.socket.write(Buffer.concat([Buffer.from([0x81, 0x82]), mask, payload]));
    const frame = await new Promise<Buffer>((resolve) => {
      let got = a.rest;
      const check = (): void => {
        if (got.length >= 4) resolve(got);
      };
      a.socket.on('data', (c: Buffer) => {
        got = Buffer.concat([got, c]);
        check();
      });
      a.socket.resume();
      check();
    });
    assert.deepEqual([...frame.subarray(0, 4)], [0x81, 0x02, 0x68, 0x69]);
    a.socket.destroy();
    const last = echo.received[echo.received.length - 1];
    assert.ok(last);
    assert.equal(last.url, '/chat');
    assert.ok(!last.headers.some(([k]) => k.toLowerCase() === 'proxy-authorization'));
  });

  it('forwards a 100 Continue as interim, then the final response with its own Via and Connection', async () => {
    // A raw origin: 100 Continue at once, then the final answer once the body has arrived.
    const raw = net.createServer((sock) => {
      sock.write('HTTP/1.1 100 Continue\r\nX-Interim: 1\r\n\r\n');
      let got = '';
      sock.on('data', (d: Buffer) => {
        got += d.toString();
        if (got.endsWith('hello'))
          sock.end('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nContent-Length: 4\r\n\r\ndone');
      });
    });
    await new Promise<void>((r) => raw.listen(0, '127.0.0.1', () => r()));
    const port = (raw.address() as AddressInfo).port;
    try {
      const sock = net.connect(proxy.port, '127.0.0.1');
      sock.write(
        `POST http://127.0.0.1:${port}/up HTTP/1.1\r\nHost: x\r\n${AUTH}\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello`,
      );
      const all = (await readAll(sock, Buffer.alloc(0))).toString();
      const [interim, final] = all.split(/\r\n\r\n/);
      assert.match(interim ?? '', /^HTTP\/1\.1 100 Continue\r\n/);
      assert.match(interim ?? '', /X-Interim: 1/);
      assert.match(interim ?? '', /Via: 1\.1 wsvia/);
      assert.match(final ?? '', /^HTTP\/1\.1 200 OK\r\n/);
      assert.match(final ?? '', /Via: 1\.1 wsvia/);
      assert.match(final ?? '', /Connection: close/);
      assert.doesNotMatch(final ?? '', /Keep-Alive/);
      assert.ok(all.endsWith('done'));
    } finally {
      raw.close();
    }
  });

  it('answers an https:// absolute-form request with a 400 that says to use CONNECT', async () => {
    const a = await request(
      proxy.port,
      `GET https://127.0.0.1:${originPort}/ HTTP/1.1\r\nHost: x\r\n${AUTH}\r\n\r\n`,
    );
    assert.equal(a.head.status, 400);
    assert.match(
      (await readAll(a.socket, a.rest)).toString(),
      /only http:\/\/ and ws:\/\/ requests are forwarded/,
    );
  });

  it('a client that leaves before the response releases its slot at once', async () => {
    const silent = net.createServer((s) => s.on('error', () => {}));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    after(() => silent.close());
    const port = (silent.address() as AddressInfo).port;
    const socket = net.connect(proxy.port, '127.0.0.1');
    socket.write(`GET http://127.0.0.1:${port}/ HTTP/1.1\r\nHost: x\r\n${AUTH}\r\n\r\n`);
    await until('the exchange to start', () => proxy.server.active === 1);
    // A reset, as when the client's host goes away (a FIN alone may be a legitimate half-close after a request).
    socket.resetAndDestroy();
    await until('the slot to be released', () => proxy.server.active === 0);
  });
});
