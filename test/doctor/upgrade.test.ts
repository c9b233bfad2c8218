import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startEchoServer, type EchoServer } from '../../src/echo/echo-server.js';
import { runDoctor } from '../../src/doctor/run-doctor.js';
import { startNginx } from '../helpers/nginx.js';
import { type RunningPeer } from '../helpers/process.js';

describe('doctor: the upgrade through a reverse proxy', () => {
  let echo: EchoServer;
  let stripping: RunningPeer;
  let correct: RunningPeer;
  before(async () => {
    echo = await startEchoServer({ mirror: true });
    [stripping, correct] = await Promise.all([
      startNginx({ upstreamPort: echo.port, upgradeHeaders: false }),
      startNginx({ upstreamPort: echo.port, upgradeHeaders: true }),
    ]);
  });
  after(async () => {
    await Promise.all([stripping?.stop(), correct?.stop(), echo?.close()]);
  });

  it('nginx stripping Upgrade/Connection: UPGRADE_REJECTED, what answered, advice about the headers', async () => {
    const r = await runDoctor(`ws://127.0.0.1:${stripping.port}/chat`, { proxy: false });
    assert.equal(r.ok, false);
    assert.equal(r.code, 'UPGRADE_REJECTED');
    const up = r.steps.find((s) => s.step === 'upgrade');
    assert.equal(up?.ok, false);
    assert.match(up?.detail ?? '', /426/);
    assert.match(up?.detail ?? '', /answered by Server: nginx/);
    assert.match(up?.detail ?? '', /This is a WebSocket echo server/);
    assert.ok(
      r.advice.some(
        (a) => /dropped the Upgrade and Connection headers/.test(a) && /proxy_set_header Upgrade/.test(a),
      ),
      r.advice.join('\n'),
    );
  });

  it('a correct nginx: ok, and the mirror shows the headers nginx changed on the way', async () => {
    const r = await runDoctor(`ws://127.0.0.1:${correct.port}/chat`, {
      proxy: false,
      headers: { Authorization: 'Bearer tok-secret-9876' },
    });
    assert.equal(r.ok, true, JSON.stringify(r, null, 1));
    const rt = r.steps.find((s) => s.step === 'roundtrip');
    assert.match(rt?.detail ?? '', /echoed back/);
    assert.match(rt?.detail ?? '', /intermediaries/);
    // nginx rewrites Host to its proxy_pass target and forwards "Connection: upgrade".
    assert.ok(
      rt?.more?.some((l) => /^changed: Host: /.test(l)),
      rt?.more?.join('\n'),
    );
    assert.doesNotMatch(JSON.stringify(r), /tok-secret-9876/);
  });
});
