import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { formatProxyV1 } from '../../src/protocol/proxy-protocol.js';
import { freePort, startPeer, type Peer } from '../helpers/process.js';
import {
  closed,
  configFromYaml,
  echo,
  openWs,
  rawExchange,
  refusedStatus,
  sleep,
  startGateway,
  startUpstream,
  type TestGateway,
  type Upstream,
} from './peers.js';
import { until } from '../helpers/eventually.js';

describe('gateway: WebSockets and HTTP through routes', () => {
  let a: Upstream;
  let b: Upstream;
  let gw: TestGateway;
  before(async () => {
    a = await startUpstream('a');
    b = await startUpstream('b');
    gw = await startGateway(`
listen: 127.0.0.1:0
admin: 127.0.0.1:0
routes:
  - { path: /, upstream: ${a.url} }
  - { path: /b, upstream: ${b.url} }
  - { path: /b/a, upstream: ${a.url} }
`);
  });
  after(async () => {
    await gw.gateway.close();
    await a.close();
    await b.close();
  });

  it('forwards the upgrade with path, query, subprotocol, extensions and cookies intact', async () => {
    const { ws, report, response } = await openWs(`${gw.wsUrl}/b/room?id=7`, {
      protocols: ['chat.v1', 'chat.v2'],
      headers: { Cookie: 'sid=abc' },
    });
    const headers = report['headers'] as Record<string, string>;
    assert.equal(report['name'], 'b');
    assert.equal(report['url'], '/b/room?id=7');
    assert.equal(report['protocol'], 'chat.v2');
    assert.equal(ws.protocol, 'chat.v2');
    assert.match(ws.extensions, /permessage-deflate/);
    assert.equal(headers['cookie'], 'sid=abc');
    assert.equal(headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(headers['x-forwarded-proto'], 'http');
    assert.match(headers['forwarded'] ?? '', /^for=127\.0\.0\.1;proto=http;host="?127\.0\.0\.1:\d+"?$/);
    assert.equal(response.headers['set-cookie']?.[0], 'session=from-upstream');
    const big = Buffer.alloc(256 * 1024, 9);
    assert.deepEqual(await echo(ws, big), big);
    assert.equal((await echo(ws, 'text')).toString(), 'text');
    ws.close(4000, 'done');
    assert.equal(await closed(ws), 4000);
    const wsTo = (r: Record<string, unknown>): boolean =>
      r['status'] === 101 && r['target'] === `${b.url}/b/room`;
    await until('the WebSocket record for /b', () => gw.records.some(wsTo));
    const rec = gw.records.find(wsTo);
    assert.equal(rec?.['close'], 'client_closed');
    assert.equal(rec?.['close_code'], 4000);
    assert.ok((rec?.['bytes_up'] as number) > 0);
  });

  it('takes the longest prefix', async () => {
    const r1 = await openWs(`${gw.wsUrl}/b/a/x`);
    const r2 = await openWs(`${gw.wsUrl}/bx`);
    assert.equal(r1.report['name'], 'a');
    assert.equal(r2.report['name'], 'a');
    r1.ws.close();
    r2.ws.close();
  });

  it('proxies plain HTTP with streamed bodies and keeps the client connection alive', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const request = (method: string, path: string, body?: Buffer) =>
      new Promise<{ status: number; body: Buffer; socket: net.Socket; headers: http.IncomingHttpHeaders }>(
        (resolve, reject) => {
          const req = http.request(`${gw.url}${path}`, { method, agent }, (res) => {
            const parts: Buffer[] = [];
            res.on('data', (d: Buffer) => parts.push(d));
            res.on('end', () =>
              resolve({
                status: res.statusCode ?? 0,
                body: Buffer.concat(parts),
                socket: req.socket as net.Socket,
                headers: res.headers,
              }),
            );
          });
          req.on('error', reject);
          if (body) {
            // Chunked, in pieces: the body is streamed, not buffered first.
            for (let i = 0; i < body.length; i += 65536) req.write(body.subarray(i, i + 65536));
          }
          req.end();
        },
      );
    const body = Buffer.alloc(1024 * 1024, 3);
    const r1 = await request('POST', '/b/upload', body);
    assert.equal(r1.status, 200);
    assert.equal(r1.headers['x-upstream'], 'b');
    assert.deepEqual(r1.body, body);
    const r2 = await request('GET', '/info?q=1');
    assert.equal(r2.status, 200);
    const info = JSON.parse(r2.body.toString()) as {
      name: string;
      url: string;
      headers: Record<string, string>;
    };
    assert.equal(info.name, 'a');
    assert.equal(info.url, '/info?q=1');
    assert.equal(info.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(r1.socket, r2.socket, 'the second request reused the client connection');
    agent.destroy();
    await until(
      'two http records',
      () => gw.records.filter((r) => r['status'] === 200 && r['close'] === 'upstream_closed').length >= 2,
    );
  });

  it('drops X-Forwarded-For from an untrusted client', async () => {
    const { ws, report } = await openWs(`${gw.wsUrl}/`, { headers: { 'X-Forwarded-For': '6.6.6.6' } });
    assert.equal((report['headers'] as Record<string, string>)['x-forwarded-for'], '127.0.0.1');
    ws.close();
  });

  it('exposes metrics, health and routes', async () => {
    assert.ok((await gw.metric('wsvia_gateway_websockets_total{route="/b"}')) >= 1);
    const health = await fetch(`${gw.adminUrl}/healthz`);
    assert.equal(health.status, 200);
    const routes = (await (await fetch(`${gw.adminUrl}/routes`)).json()) as { routes: { path: string }[] };
    assert.deepEqual(
      routes.routes.map((r) => r.path),
      ['/', '/b', '/b/a'],
    );
  });
});

describe('gateway: refusals and limits', () => {
  let up: Upstream;
  let gw: TestGateway;
  let deadPort: number;
  before(async () => {
    up = await startUpstream('up');
    deadPort = await freePort();
    gw = await startGateway(`
listen: 127.0.0.1:0
admin: 127.0.0.1:0
allow-origin: [https://good.example]
routes:
  - { path: /, upstream: ${up.url} }
  - { path: /dead, upstream: ws://127.0.0.1:${deadPort} }
max-per-client: 3
max-header-bytes: 1024
handshake-timeout: 0.5
`);
  });
  after(async () => {
    await gw.gateway.close();
    await up.close();
  });

  it('refuses a foreign Origin with 403 and accepts the allowed one', async () => {
    assert.equal(await refusedStatus(`${gw.wsUrl}/`, { origin: 'https://evil.example' }), 403);
    const { ws } = await openWs(`${gw.wsUrl}/`, { origin: 'https://good.example' });
    ws.close();
    await closed(ws);
    assert.equal(await gw.metric('wsvia_gateway_upgrades_refused_total{reason="origin"}'), 1);
  });

  it('answers 502 when no upstream is reachable, 404 without a route', async () => {
    assert.equal(await refusedStatus(`${gw.wsUrl}/dead`), 502);
    const res = await rawExchange(Number(new URL(gw.url).port), 'GET /x HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.match(res, /^HTTP\/1\.1 200/); // '/' catches all here
  });

  it('answers 431 to an oversized head and 408 to a stalled one', async () => {
    const port = Number(new URL(gw.url).port);
    const big = `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(2000)}\r\n\r\n`;
    assert.match(await rawExchange(port, big), /^HTTP\/1\.1 431 /);
    assert.match(await rawExchange(port, 'GET / HTTP/1.1\r\nHost: x\r\n'), /^HTTP\/1\.1 408 /);
  });

  it('answers 429 over the per-client limit', async () => {
    const held = await Promise.all([1, 2, 3].map(() => openWs(`${gw.wsUrl}/`)));
    assert.equal(await refusedStatus(`${gw.wsUrl}/`), 429);
    for (const h of held) h.ws.close();
    await Promise.all(held.map((h) => closed(h.ws)));
  });
});

describe('gateway: failover, connection limit, upstream timeout', () => {
  let live: Upstream;
  let revived: Upstream | undefined;
  let gw: TestGateway;
  let deadPort: number;
  before(async () => {
    live = await startUpstream('live');
    deadPort = await freePort();
    gw = await startGateway(`
listen: 127.0.0.1:0
admin: 127.0.0.1:0
health-interval: 0.1
routes:
  - { path: /, upstream: [ws://127.0.0.1:${deadPort}, ${live.url}] }
max-connections: 4
`);
  });
  after(async () => {
    await gw.gateway.close();
    await live.close();
    await revived?.close();
  });

  it('skips a dead pool member at once, and takes it back after a health check', async () => {
    for (let i = 0; i < 4; i++) {
      const { ws, report } = await openWs(`${gw.wsUrl}/`);
      assert.equal(report['name'], 'live');
      ws.close();
      await closed(ws);
    }
    assert.equal(await gw.metric(`wsvia_gateway_upstream_healthy{upstream="ws://127.0.0.1:${deadPort}"}`), 0);
    revived = await startUpstream('revived', { port: deadPort });
    await until(
      'the upstream marked healthy',
      async () =>
        (await gw.metric(`wsvia_gateway_upstream_healthy{upstream="ws://127.0.0.1:${deadPort}"}`)) === 1,
    );
    const names = new Set<unknown>();
    for (let i = 0; i < 4; i++) {
      const { ws, report } = await openWs(`${gw.wsUrl}/`);
      names.add(report['name']);
      ws.close();
      await closed(ws);
    }
    assert.deepEqual([...names].sort(), ['live', 'revived']);
  });

  it('answers 503 over --max-connections', async () => {
    const held = await Promise.all([1, 2, 3, 4].map(() => openWs(`${gw.wsUrl}/`)));
    assert.equal(await refusedStatus(`${gw.wsUrl}/`), 503);
    for (const h of held) h.ws.close();
    await Promise.all(held.map((h) => closed(h.ws)));
  });
});

describe('gateway: upstream connect timeout', () => {
  let gw: TestGateway;
  let blackhole: Peer;
  const stuck: net.Socket[] = [];
  before(async () => {
    // A listener that never accepts, its queue filled: the kernel drops further SYNs, so a connect hangs.
    const port = await freePort();
    const script =
      'import socket,sys,time\ns=socket.socket()\ns.bind(("127.0.0.1",int(sys.argv[1])))\ns.listen(0)\ntime.sleep(120)';
    blackhole = await startPeer('python3', ['-c', script, String(port)], { port });
    for (let i = 0; i < 3; i++) stuck.push(net.connect({ host: '127.0.0.1', port }).on('error', () => {}));
    await sleep(100);
    gw = await startGateway(`
listen: 127.0.0.1:0
routes: [{ path: /, upstream: ws://127.0.0.1:${port} }]
connect-timeout: 0.3
`);
  });
  after(async () => {
    for (const s of stuck) s.destroy();
    await gw.gateway.close();
    await blackhole.stop();
  });

  it('answers 504 when the upstream does not accept in time', async () => {
    assert.equal(await refusedStatus(`${gw.wsUrl}/`), 504);
  });
});

describe('gateway: PROXY protocol', () => {
  let up: Upstream;
  let gw: TestGateway;
  before(async () => {
    up = await startUpstream('up');
    gw = await startGateway(`
listen: 127.0.0.1:0
proxy-protocol: true
routes: [{ path: /, upstream: ${up.url} }]
`);
  });
  after(async () => {
    await gw.gateway.close();
    await up.close();
  });

  it('takes the client address from a PROXY v1 header', async () => {
    const port = Number(new URL(gw.url).port);
    const head = formatProxyV1({ address: '203.0.113.9', port: 5555 }, { address: '127.0.0.1', port });
    const reply = await new Promise<string>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.write(
        Buffer.concat([head, Buffer.from('GET /who HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')]),
      );
      let out = '';
      s.on('data', (d: Buffer) => (out += d.toString()));
      s.on('close', () => resolve(out));
    });
    assert.match(reply, /"x-forwarded-for":"203\.0\.113\.9"/);
  });
});

describe('gateway: keepalive pings and dead peers', () => {
  let up: Upstream;
  let gw: TestGateway;
  before(async () => {
    up = await startUpstream('up');
    gw = await startGateway(`
listen: 127.0.0.1:0
admin: 127.0.0.1:0
ping: 0.2
ping-timeout: 0.3
routes: [{ path: /, upstream: ${up.url} }]
`);
  });
  after(async () => {
    await gw.gateway.close();
    await up.close();
  });

  it('pings a live client, which answers and stays open', async () => {
    const { ws } = await openWs(`${gw.wsUrl}/`);
    let pings = 0;
    ws.on('ping', () => pings++);
    // Four pings 0.2 s apart span more than the 0.3 s pong timeout: a client the gateway did not hear would be gone.
    await until('four pings', () => pings >= 4 || ws.readyState !== WebSocket.OPEN);
    assert.equal(ws.readyState, WebSocket.OPEN);
    assert.equal((await echo(ws, 'still here')).toString(), 'still here');
    ws.close();
    await closed(ws);
  });

  it('reaps a client that never answers pings, and tells the upstream with close 1011 (not a normal end)', async () => {
    const port = Number(new URL(gw.url).port);
    const before = up.closes.length;
    const sock = net.connect({ host: '127.0.0.1', port });
    await once(sock, 'connect');
    // A real upgrade, then silence: this client reads nothing and answers nothing.
    sock.write(
      'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    );
    const [first] = (await once(sock, 'data')) as [Buffer];
    assert.match(first.toString('latin1'), /^HTTP\/1\.1 101 /);
    sock.on('data', () => {}); // reads, never answers
    sock.on('error', () => {}); // a reaped peer is reset
    const t0 = Date.now();
    await new Promise((resolve) => sock.once('close', resolve));
    assert.ok(Date.now() - t0 < 3000);
    await until('the upstream to see a close', () => up.closes.length > before);
    assert.equal(up.closes[up.closes.length - 1], 1011);
    assert.equal(await gw.metric('wsvia_gateway_dead_peers_reaped_total{side="client"}'), 1);
    await until('the client_ping_timeout record', () =>
      gw.records.some((r) => r['close'] === 'client_ping_timeout'),
    );
  });
});

describe('gateway: a dead upstream behind an open WebSocket', () => {
  let mute: net.Server;
  let gw: TestGateway;
  before(async () => {
    // An upstream that completes the upgrade, then never answers anything (a hung process, a lost route).
    mute = net.createServer((s) => {
      s.once('data', (d: Buffer) => {
        const key = /sec-websocket-key: *(\S+)/i.exec(d.toString('latin1'))?.[1] ?? '';
        const accept = createHash('sha1')
          .update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`)
          .digest('base64');
        s.write(
          `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
        );
        s.on('data', () => {});
      });
      s.on('error', () => {});
    });
    mute.listen(0, '127.0.0.1');
    await once(mute, 'listening');
    const port = (mute.address() as net.AddressInfo).port;
    gw = await startGateway(`
listen: 127.0.0.1:0
admin: 127.0.0.1:0
ping: 0.2
ping-timeout: 0.3
routes: [{ path: /, upstream: ws://127.0.0.1:${port} }]
`);
  });
  after(async () => {
    await gw.gateway.close();
    mute.close();
  });

  it('closes the client with 1011 "upstream unresponsive" when the upstream stops answering pings', async () => {
    const ws = new WebSocket(`${gw.wsUrl}/`);
    await once(ws, 'open');
    const [code, reason] = (await once(ws, 'close')) as [number, Buffer];
    assert.equal(code, 1011);
    assert.equal(reason.toString(), 'upstream unresponsive');
    assert.equal(await gw.metric('wsvia_gateway_dead_peers_reaped_total{side="upstream"}'), 1);
  });
});

describe('gateway: idle timeout, reload and drain in process', () => {
  let a: Upstream;
  let b: Upstream;
  let gw: TestGateway;
  before(async () => {
    a = await startUpstream('a');
    b = await startUpstream('b');
    gw = await startGateway(`
listen: 127.0.0.1:0
routes: [{ path: /, upstream: ${a.url} }]
drain-timeout: 2
drain-spread: 0.2
`);
  });
  after(async () => {
    await gw.gateway.close();
    await a.close();
    await b.close();
  });

  it('keeps an open WebSocket on its upstream across a reload, sends new ones to the new route', async () => {
    const old = await openWs(`${gw.wsUrl}/`);
    assert.equal(old.report['name'], 'a');
    const port = new URL(gw.url).port;
    gw.gateway.reload(
      configFromYaml(`
listen: 127.0.0.1:0
routes: [{ path: /, upstream: ${b.url} }]
drain-timeout: 2
drain-spread: 0.2
`),
    );
    const fresh = await openWs(`ws://127.0.0.1:${port}/`);
    assert.equal(fresh.report['name'], 'b');
    assert.equal((await echo(old.ws, 'old')).toString(), 'old');
    assert.equal(old.ws.readyState, WebSocket.OPEN);
    assert.throws(
      () =>
        gw.gateway.reload(configFromYaml(`listen: 127.0.0.1:1\nroutes: [{ path: /, upstream: ${a.url} }]`)),
      /listen changed/,
    );
    old.ws.close();
    fresh.ws.close();
    await Promise.all([closed(old.ws), closed(fresh.ws)]);
  });

  it('drains: 1001 to every open WebSocket, then stops', async () => {
    const conns = await Promise.all([1, 2, 3].map(() => openWs(`${gw.wsUrl}/`)));
    const codes = conns.map((c) => closed(c.ws));
    const left = await gw.gateway.drain();
    assert.equal(left, 0);
    assert.deepEqual(await Promise.all(codes), [1001, 1001, 1001]);
    await until('three 1001 closes', () => b.closes.filter((c) => c === 1001).length >= 3);
  });
});
