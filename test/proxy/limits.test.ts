import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import { freePort } from '../helpers/process.js';
import {
  connectRequest,
  errorAnswer,
  readAll,
  request,
  startProxy,
  startTcpEcho,
} from '../helpers/wsvia-proxy.js';
import { until } from '../helpers/eventually.js';
import { RELAYS, relayOptions } from '../helpers/relays.js';

for (const relay of RELAYS)
  describe(`wsvia proxy: limits, each hit for real (${relay} relay)`, relayOptions(relay), () => {
    it('--max-tunnels: 503 with Retry-After when full', async () => {
      const echo = await startTcpEcho();
      const p = await startProxy({ relay, limits: { maxTunnels: 2 } });
      after(async () => {
        await p.close();
        await echo.close();
      });
      const open = [
        await request(p.port, connectRequest(`127.0.0.1:${echo.port}`)),
        await request(p.port, connectRequest(`127.0.0.1:${echo.port}`)),
      ];
      const r = await errorAnswer(p.port, connectRequest(`127.0.0.1:${echo.port}`));
      assert.equal(r.status, 503);
      assert.equal(r.head.headers.find(([k]) => k === 'Retry-After')?.[1], '1');
      assert.match(r.proxyStatus, /error=connection_limit_reached/);
      assert.equal(r.rule, '--max-tunnels 2');
      for (const a of open) a.socket.destroy();
      await until('tunnels released', () => p.server.active === 0);
      const again = await request(p.port, connectRequest(`127.0.0.1:${echo.port}`));
      assert.equal(again.head.status, 200);
      again.socket.destroy();
    });

    it('--max-tunnels-per-client: 429', async () => {
      const echo = await startTcpEcho();
      const p = await startProxy({ relay, limits: { maxTunnelsPerClient: 1 } });
      after(async () => {
        await p.close();
        await echo.close();
      });
      const first = await request(p.port, connectRequest(`127.0.0.1:${echo.port}`));
      assert.equal(first.head.status, 200);
      const r = await errorAnswer(p.port, connectRequest(`127.0.0.1:${echo.port}`));
      assert.equal(r.status, 429);
      assert.match(r.rule ?? '', /--max-tunnels-per-client 1/);
      first.socket.destroy();
    });

    it('a head over the size limit: 431', async () => {
      const p = await startProxy({ relay, limits: { head: { maxHeadBytes: 1024, maxHeaders: 100 } } });
      after(() => p.close());
      const r = await errorAnswer(p.port, connectRequest('127.0.0.1:1', [`X-Big: ${'a'.repeat(2000)}`]));
      assert.equal(r.status, 431);
      assert.match(r.proxyStatus, /error=http_request_error/);
    });

    it('a head that never ends (slowloris): 408 after --header-timeout', async () => {
      const p = await startProxy({ relay, limits: { headerTimeout: 300 } });
      after(() => p.close());
      const r = await errorAnswer(p.port, 'CONNECT 127.0.0.1:1 HTTP/1.1\r\nX-Slow: ');
      assert.equal(r.status, 408);
      assert.match(r.body, /did not arrive within 300 ms/);
    });

    it('a refused destination: 502 connection_refused', async () => {
      const p = await startProxy({ relay });
      after(() => p.close());
      const port = await freePort();
      const r = await errorAnswer(p.port, connectRequest(`127.0.0.1:${port}`));
      assert.equal(r.status, 502);
      assert.match(r.proxyStatus, /error=connection_refused/);
      assert.match(r.body, /refused the connection/);
    });

    it('a destination that never answers the SYN: 504 after --connect-timeout', async () => {
      // A listener with a full backlog drops further SYNs, so the connect hangs: a real black hole on loopback.
      const port = await freePort();
      const py = spawn('python3', [
        '-c',
        `import socket,time\ns=socket.socket()\ns.bind(('127.0.0.1',${port}))\ns.listen(0)\nprint('ready',flush=True)\ntime.sleep(60)`,
      ]);
      after(() => py.kill('SIGKILL'));
      await new Promise<void>((r) => py.stdout.once('data', () => r()));
      const filler = net.connect(port, '127.0.0.1');
      filler.on('error', () => {});
      after(() => filler.destroy());
      await new Promise<void>((r) => filler.once('connect', () => r()));
      const p = await startProxy({ relay, limits: { connectTimeout: 500 } });
      after(() => p.close());
      const r = await errorAnswer(p.port, connectRequest(`127.0.0.1:${port}`));
      assert.equal(r.status, 504);
      assert.match(r.proxyStatus, /error=connection_timeout/);
    });

    it('closes a silent tunnel after --idle-timeout, and a busy one after --max-lifetime', async () => {
      const echo = await startTcpEcho();
      const p = await startProxy({ relay, limits: { idleTimeout: 300 } });
      after(async () => {
        await p.close();
        await echo.close();
      });
      const a = await request(p.port, connectRequest(`127.0.0.1:${echo.port}`));
      await readAll(a.socket, a.rest);
      a.socket.destroy();
      await until('the idle tunnel released', () => p.server.active === 0);
      assert.equal(p.server.metrics.closes.get({ reason: 'idle_timeout' }), 1);

      const q = await startProxy({ relay, limits: { maxLifetime: 400, idleTimeout: 0 } });
      after(() => q.close());
      const b = await request(q.port, connectRequest(`127.0.0.1:${echo.port}`));
      const pinger = setInterval(() => b.socket.writable && b.socket.write('.'), 50);
      after(() => clearInterval(pinger));
      const got = await readAll(b.socket, b.rest);
      clearInterval(pinger);
      b.socket.destroy();
      assert.ok(got.length > 0, 'the tunnel carried bytes before its lifetime ended');
      await until(
        'a max_lifetime close',
        () => q.server.metrics.closes.get({ reason: 'max_lifetime' }) === 1,
      );
    });
  });
