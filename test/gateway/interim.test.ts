/**
 * An upstream that answers an upgrade or a request with interim (1xx) heads without end: the gateway passes at
 * most MAX_INTERIM_RESPONSES of them on, then answers 502 and lets the upstream go, instead of relaying (and, for a
 * client that does not read, buffering) them for ever. The gateway serves the next client all the same.
 */
import assert from 'node:assert/strict';
import net, { type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { MAX_INTERIM_RESPONSES } from '../../src/gateway/upstream-connect.js';
import { until } from '../helpers/eventually.js';
import { rawExchange, startGateway, type TestGateway } from './peers.js';

const CONTINUE = 'HTTP/1.1 100 Continue\r\n\r\n';

describe('gateway: an upstream that streams interim heads', () => {
  let gw: TestGateway;
  let upstream: net.Server;
  let flooding = 0;
  let closedByGateway = 0;
  let slowClosed = false;
  before(async () => {
    upstream = net.createServer((s) => {
      s.on('error', () => {});
      s.once('data', (d: Buffer) => {
        if (d.toString('latin1').startsWith('GET /ok')) {
          s.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok');
          return;
        }
        flooding++;
        if (d.toString('latin1').startsWith('GET /slow')) s.on('close', () => (slowClosed = true));
        // Writes as fast as the gateway takes them, until the gateway lets go.
        const flood = (): void => {
          while (!s.destroyed && s.write(CONTINUE));
        };
        s.on('drain', flood);
        s.on('close', () => closedByGateway++);
        flood();
      });
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
    const port = (upstream.address() as AddressInfo).port;
    gw = await startGateway(`
listen: 127.0.0.1:0
routes:
  - { path: /, upstream: http://127.0.0.1:${port} }
`);
  });
  after(async () => {
    await gw.gateway.close();
    upstream.close();
  });

  const port = (): number => Number(new URL(gw.url).port);

  for (const [name, request] of [
    [
      'a WebSocket upgrade',
      'GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
        'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    ],
    ['a plain request', 'GET /x HTTP/1.1\r\nHost: x\r\n\r\n'],
  ] as const) {
    it(`${name}: at most ${MAX_INTERIM_RESPONSES} interim heads pass, then 502, and the upstream is let go`, async () => {
      const before = closedByGateway;
      const answer = await rawExchange(port(), request);
      const interims = answer.split('HTTP/1.1 100 ').length - 1;
      assert.ok(interims <= MAX_INTERIM_RESPONSES, `${interims} interim heads passed on`);
      assert.match(answer, /HTTP\/1\.1 502 /);
      await until('the flooding upstream closed by the gateway', () => closedByGateway > before);
      assert.match(
        await rawExchange(port(), 'GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
        /^HTTP\/1\.1 200 /,
      );
    });
  }

  it('a client that does not read: the gateway pauses the upstream rather than buffer its interim heads', async () => {
    const client = net.connect(port(), '127.0.0.1');
    client.on('error', () => {});
    await new Promise<void>((r) => client.once('connect', () => r()));
    client.pause();
    const started = flooding;
    client.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n');
    await until('the upstream is asked', () => flooding > started);
    // Whatever the client does not read, the gateway ends the exchange within the interim limit: the upstream is
    // closed, not read from without end.
    await until('the flooding upstream of this client closed by the gateway', () => slowClosed);
    client.destroy();
  });
});
