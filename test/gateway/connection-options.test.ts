/**
 * A Connection header that names Content-Length or Transfer-Encoding would have the gateway drop the framing
 * while passing the body on, and the upstream would read the body as a second request: such a request is a 400,
 * for a plain HTTP route and for a WebSocket upgrade, and the upstream never hears of it.
 */
import assert from 'node:assert/strict';
import net, { type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { rawExchange, startGateway, type TestGateway } from './peers.js';

describe('gateway: a Connection header naming a framing field', () => {
  let gw: TestGateway;
  let upstream: net.Server;
  let connections = 0;
  before(async () => {
    upstream = net.createServer((s) => {
      connections++;
      s.on('error', () => {});
      s.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok');
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
    const port = (upstream.address() as AddressInfo).port;
    // Connections are what the upstream counts: none dialed ahead of need.
    gw = await startGateway(`
listen: 127.0.0.1:0
warm: 0
routes:
  - { path: /, upstream: http://127.0.0.1:${port} }
`);
  });
  after(async () => {
    await gw.gateway.close();
    upstream.close();
  });

  const port = (): number => Number(new URL(gw.url).port);
  const smuggled = 'GET /admin HTTP/1.1\r\nHost: x\r\n\r\n';

  it('a plain request: 400, nothing reaches the upstream', async () => {
    for (const conn of ['Content-Length', 'keep-alive, Transfer-Encoding']) {
      const framing = conn.includes('Transfer')
        ? `Transfer-Encoding: chunked\r\n\r\n${smuggled.length.toString(16)}\r\n${smuggled}\r\n0\r\n\r\n`
        : `Content-Length: ${smuggled.length}\r\n\r\n${smuggled}`;
      const answer = await rawExchange(
        port(),
        `POST /x HTTP/1.1\r\nHost: x\r\nConnection: ${conn}\r\n${framing}`,
      );
      assert.match(answer, /^HTTP\/1\.1 400 /, conn);
    }
    assert.equal(connections, 0);
  });

  it('a WebSocket upgrade: 400, nothing reaches the upstream', async () => {
    const answer = await rawExchange(
      port(),
      'GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, Content-Length\r\nUpgrade: websocket\r\n' +
        'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' +
        `Content-Length: ${smuggled.length}\r\n\r\n${smuggled}`,
    );
    assert.match(answer, /^HTTP\/1\.1 400 /);
    assert.equal(connections, 0);
  });

  it('a Connection header naming only hop-by-hop options still passes', async () => {
    const answer = await rawExchange(
      port(),
      'GET /x HTTP/1.1\r\nHost: x\r\nConnection: close, X-Hop\r\nX-Hop: 1\r\n\r\n',
    );
    assert.match(answer, /^HTTP\/1\.1 200 /);
    assert.equal(connections, 1);
  });
});
