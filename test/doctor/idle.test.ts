import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { WebSocketServer } from 'ws';
import { startEchoServer, type EchoServer } from '../../src/echo/echo-server.js';
import { runDoctor } from '../../src/doctor/run-doctor.js';
import { startForgetfulRelay, type ForgetfulRelay } from '../helpers/forgetful-relay.js';
import { startNginx } from '../helpers/nginx.js';
import { type RunningPeer } from '../helpers/process.js';

describe('doctor: the idle probe', () => {
  let echo: EchoServer;
  let nginx: RunningPeer;
  let relay: ForgetfulRelay;
  let strict: WebSocketServer;
  before(async () => {
    // An application server that closes clients silent for 1.5 s with a close frame (code 4000), as chat servers
    // with their own idle policy do.
    strict = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    strict.on('connection', (ws) => {
      let timer = setTimeout(() => ws.close(4000, 'idle'), 1500);
      const touch = (): void => {
        clearTimeout(timer);
        timer = setTimeout(() => ws.close(4000, 'idle'), 1500);
      };
      ws.on('message', (m, isBinary) => {
        touch();
        ws.send(m, { binary: isBinary });
      });
      ws.on('ping', touch);
      ws.on('close', () => clearTimeout(timer));
    });
    await new Promise<void>((r) => strict.once('listening', () => r()));
    echo = await startEchoServer();
    nginx = await startNginx({ upstreamPort: echo.port, upgradeHeaders: true, readTimeoutSeconds: 3 });
    relay = await startForgetfulRelay(echo.port, 1500);
  });
  after(async () => {
    await Promise.all([
      nginx?.stop(),
      relay?.close(),
      echo?.close(),
      new Promise<void>((r) => (strict ? strict.close(() => r()) : r())),
    ]);
  });

  it('finds nginx proxy_read_timeout 3s, how it cuts, and recommends a ping interval', async () => {
    const r = await runDoctor(`ws://127.0.0.1:${nginx.port}/`, { proxy: false, idleProbeSeconds: 5 });
    assert.equal(r.ok, true);
    assert.ok(r.idle, 'an idle result');
    const cutoff = r.idle.cutoffSeconds;
    assert.ok(cutoff !== null && Math.abs(cutoff - 3) <= 1, `cutoff ${String(cutoff)}`);
    assert.ok(
      r.idle.survivedSeconds >= 2 && r.idle.survivedSeconds < 3,
      `survived ${r.idle.survivedSeconds}`,
    );
    // nginx closes the TCP connection without a close frame.
    assert.match(r.idle.how, /FIN|RST/);
    const idle = r.steps.find((s) => s.step === 'idle');
    assert.equal(idle?.warning, true);
    assert.ok(
      r.advice.some((a) => /--ping 1\b/.test(a)),
      r.advice.join('\n'),
    );
    assert.ok(r.advice.some((a) => /proxy_read_timeout/.test(a)));
  });

  it('a path with no cutoff reports none', async () => {
    const r = await runDoctor(echo.url, { proxy: false, idleProbeSeconds: 3 });
    assert.equal(r.ok, true);
    assert.deepEqual(r.idle, { cutoffSeconds: null, survivedSeconds: 3, how: 'not cut' });
    assert.ok(!r.advice.some((a) => /--ping/.test(a)));
  });

  it('a path that forgets idle flows without closing them: a black hole, found by an unanswered ping', async () => {
    const r = await runDoctor(`ws://127.0.0.1:${relay.port}/`, {
      proxy: false,
      idleProbeSeconds: 4,
      idlePongTimeout: 1000,
    });
    assert.equal(r.ok, true);
    assert.ok(r.idle);
    assert.match(r.idle.how, /black hole/);
    const cutoff = r.idle.cutoffSeconds;
    assert.ok(cutoff !== null && Math.abs(cutoff - 1.5) <= 1, `cutoff ${String(cutoff)}`);
    assert.ok(r.idle.survivedSeconds < 1.5);
  });

  it('a server that closes silent clients with a close frame: the code is reported', async () => {
    const port = (strict.address() as AddressInfo).port;
    const r = await runDoctor(`ws://127.0.0.1:${port}/`, {
      proxy: false,
      idleProbeSeconds: 3,
      idlePongTimeout: 1000,
    });
    assert.equal(r.ok, true);
    assert.ok(r.idle);
    assert.equal(r.idle.how, 'close frame 4000');
    const cutoff = r.idle.cutoffSeconds;
    assert.ok(cutoff !== null && Math.abs(cutoff - 1.5) <= 1, `cutoff ${String(cutoff)}`);
  });
});
