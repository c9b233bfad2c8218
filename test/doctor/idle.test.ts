import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startEchoServer, type EchoServer } from '../../src/echo/echo-server.js';
import { runDoctor } from '../../src/doctor/run-doctor.js';
import { startForgetfulRelay, type ForgetfulRelay } from '../helpers/forgetful-relay.js';
import { startNginx, type RunningPeer } from './peers.js';

describe('doctor: the idle probe', () => {
  let echo: EchoServer;
  let nginx: RunningPeer;
  let relay: ForgetfulRelay;
  before(async () => {
    echo = await startEchoServer();
    nginx = await startNginx({ upstreamPort: echo.port, upgradeHeaders: true, readTimeoutSeconds: 3 });
    relay = await startForgetfulRelay(echo.port, 1500);
  });
  after(async () => {
    await Promise.all([nginx?.stop(), relay?.close(), echo?.close()]);
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
});
