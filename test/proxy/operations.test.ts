import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { StaticUsers } from '../../src/auth/server-auth.js';
import { connect } from '../../src/client/connect.js';
import { startEchoServer, type EchoServer } from '../../src/echo/echo-server.js';
import { makeSelfSigned } from '../../src/echo/self-signed.js';
import { AccessLog } from '../../src/observe/access-log.js';
import { startAdmin } from '../../src/proxy/admin.js';
import { parseProxyUrl } from '../../src/route/proxy-url.js';
import { tempDir } from '../helpers/process.js';
import {
  connectRequest,
  errorAnswer,
  readAll,
  request,
  startProxy,
  startTcpEcho,
} from '../helpers/wsvia-proxy.js';
import { until } from '../helpers/eventually.js';

describe('wsvia proxy: operations', () => {
  let echo: EchoServer;
  before(async () => {
    echo = await startEchoServer();
  });
  after(() => echo.close());

  it('PROXY protocol v1 and v2: the real client is logged, and garbage is refused', async () => {
    const logFile = path.join(tempDir(), 'access.log');
    const tcp = await startTcpEcho();
    const p = await startProxy({ proxyProtocol: true, accessLog: AccessLog.open(logFile) });
    after(async () => {
      await p.close();
      await tcp.close();
    });
    const v1 = await request(
      p.port,
      `PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\n${connectRequest(`127.0.0.1:${tcp.port}`)}`,
    );
    assert.equal(v1.head.status, 200);
    v1.socket.end('v1');
    assert.equal((await readAll(v1.socket, v1.rest)).toString(), 'v1');
    // v2: signature, PROXY command, TCP over IPv6, 36 bytes of addresses and ports.
    const addr = Buffer.alloc(36);
    Buffer.from('20010db8000000000000000000000042', 'hex').copy(addr, 0);
    Buffer.from('00000000000000000000000000000001', 'hex').copy(addr, 16);
    addr.writeUInt16BE(6000, 32);
    addr.writeUInt16BE(80, 34);
    const v2head = Buffer.concat([
      Buffer.from([
        0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x21, 0x21, 0x00, 36,
      ]),
      addr,
    ]);
    const v2 = await request(
      p.port,
      Buffer.concat([v2head, Buffer.from(connectRequest(`127.0.0.1:${tcp.port}`))]),
    );
    assert.equal(v2.head.status, 200);
    v2.socket.destroy();
    await assert.rejects(request(p.port, connectRequest(`127.0.0.1:${tcp.port}`)), /closed before an answer/);
    await until('tunnels released', () => p.server.active === 0);
    await p.close();
    const log = fs.readFileSync(logFile, 'utf8');
    assert.match(log, /"client":"203\.0\.113\.7:5555"/);
    assert.match(log, /"client":"\[2001:db8::42\]:6000"/);
  });

  it('a TLS listener: clients use an https:// proxy URL', async () => {
    const pair = makeSelfSigned();
    const p = await startProxy({ tls: pair });
    after(() => p.close());
    assert.match(p.url, /^https:\/\//);
    const ws = await connect(echo.url, { proxy: p.url, proxyCa: pair.cert });
    ws.send('over tls');
    assert.equal(await new Promise<string>((r) => ws.once('message', (d) => r(String(d)))), 'over tls');
    ws.terminate();
  });

  it('--upstream: tunnels are chained through a parent proxy with its credentials', async () => {
    const parent = await startProxy({ users: new StaticUsers(['up:stream']), authSchemes: ['basic'] });
    const child = await startProxy({ upstream: parseProxyUrl(`http://up:stream@127.0.0.1:${parent.port}`) });
    after(async () => {
      await child.close();
      await parent.close();
    });
    const ws = await connect(echo.url, { proxy: child.url });
    ws.send('chained');
    assert.equal(await new Promise<string>((r) => ws.once('message', (d) => r(String(d)))), 'chained');
    ws.terminate();
    assert.equal(parent.server.metrics.tunnelsTotal.get(), 1);
    // A parent that refuses: 502 naming the parent's answer.
    const bad = await startProxy({ upstream: parseProxyUrl(`http://up:wrong@127.0.0.1:${parent.port}`) });
    after(() => bad.close());
    const r = await errorAnswer(bad.port, connectRequest(`127.0.0.1:${echo.port}`));
    assert.equal(r.status, 502);
    assert.match(r.body, /parent proxy http:\/\/up:\*\*\*@127\.0\.0\.1/);
    assert.ok(!r.body.includes('wrong'));
  });

  it('the admin listener: /metrics in Prometheus format and /healthz', async () => {
    const p = await startProxy();
    const admin = await startAdmin('127.0.0.1', 0, p.server.metrics.registry, () => !p.server.draining);
    after(async () => {
      await admin.close();
      await p.close();
    });
    const ws = await connect(echo.url, { proxy: p.url });
    ws.terminate();
    await until('the tunnel to end', () => p.server.active === 0);
    await errorAnswer(p.port, 'GET / HTTP/1.1\r\n\r\n');
    const metrics = await (await fetch(`${admin.url}/metrics`)).text();
    for (const name of [
      'wsvia_proxy_tunnels_active 0',
      'wsvia_proxy_tunnels_total 1',
      'wsvia_proxy_responses_total{status="400"} 1',
      'wsvia_proxy_bytes_total{direction="up"}',
      'wsvia_proxy_tunnel_setup_seconds_count 1',
      'wsvia_proxy_denials_total',
      'wsvia_proxy_auth_failures_total',
    ])
      assert.ok(metrics.includes(name), `${name} in\n${metrics}`);
    const health = await fetch(`${admin.url}/healthz`);
    assert.equal(health.status, 200);
  });

  it('listens on IPv6 and prints a bracketed URL', async () => {
    const p = await startProxy({ host: '::1' });
    after(() => p.close());
    assert.match(p.url, /^http:\/\/\[::1\]:\d+$/);
    const ws = await connect(echo.url, { proxy: p.url });
    ws.terminate();
  });

  it('TLS listener behind a PROXY protocol header (HAProxy in TCP mode in front of an https:// proxy)', async () => {
    const pair = makeSelfSigned();
    const p = await startProxy({ tls: pair, proxyProtocol: true });
    after(() => p.close());
    const tls = await import('node:tls');
    const net = await import('node:net');
    const raw = net.connect(p.port, '127.0.0.1');
    await new Promise<void>((r) => raw.once('connect', () => r()));
    raw.write('PROXY TCP4 198.51.100.9 127.0.0.1 4000 443\r\n');
    const secure = tls.connect({ socket: raw, ca: pair.cert, servername: 'localhost' });
    await new Promise<void>((r) => secure.once('secureConnect', () => r()));
    secure.write(connectRequest(`127.0.0.1:${echo.port}`));
    const first = await new Promise<string>((r) => secure.once('data', (d: Buffer) => r(d.toString())));
    assert.match(first, /^HTTP\/1\.1 200 Connection established/);
    secure.destroy();
  });
});
