import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startEchoServer, type EchoServer } from '../../src/echo/echo-server.js';
import { runDoctor } from '../../src/doctor/run-doctor.js';
import { reportToJSON } from '../../src/doctor/report.js';
import { type RunningPeer } from '../helpers/process.js';
import { startSquid } from '../helpers/squid.js';

describe('doctor: proxies that refuse', () => {
  let echo: EchoServer;
  let portRule: RunningPeer;
  let authed: RunningPeer;
  let limited: RunningPeer;
  before(async () => {
    echo = await startEchoServer({ mirror: true });
    [portRule, authed, limited] = await Promise.all([
      startSquid({ sslPortsOnly: true }),
      startSquid({ auth: 'basic', users: { alice: 'wonder-land-42' } }),
      startSquid({ tunnelLimit: 1 }),
    ]);
  });
  after(async () => {
    await Promise.all([portRule?.stop(), authed?.stop(), limited?.stop(), echo?.close()]);
  });

  it('squid refusing CONNECT to a port other than 443: PROXY_REFUSED, the status, advice about 443', async () => {
    const r = await runDoctor(echo.url, { proxy: portRule.url, env: {} });
    assert.equal(r.ok, false);
    assert.equal(r.code, 'PROXY_REFUSED');
    const proxy = r.steps.find((s) => s.step === 'proxy');
    assert.equal(proxy?.ok, false);
    assert.match(proxy?.detail ?? '', /403 Forbidden/);
    assert.match(proxy?.detail ?? '', /X-Squid-Error: ERR_ACCESS_DENIED/);
    assert.deepEqual(
      r.steps.map((s) => [s.step, s.ok]),
      [
        ['route', true],
        ['dns', true],
        ['tcp', true],
        ['proxy', false],
      ],
    );
    assert.ok(
      r.advice.some((a) => /443/.test(a) && new RegExp(`port ${echo.port}`).test(a)),
      r.advice.join('\n'),
    );
  });

  it('squid wanting auth: PROXY_AUTH_REQUIRED, the schemes offered, how to pass credentials', async () => {
    const r = await runDoctor(echo.url, { proxy: authed.url, env: {} });
    assert.equal(r.code, 'PROXY_AUTH_REQUIRED');
    const proxy = r.steps.find((s) => s.step === 'proxy');
    assert.match(proxy?.detail ?? '', /407/);
    assert.match(proxy?.detail ?? '', /offers Basic/);
    assert.ok(r.advice.some((a) => /offers: Basic/.test(a)));
    assert.ok(r.advice.some((a) => /--proxy-user USER:PASS/.test(a)));
  });

  it('squid with the right credentials: ok, two rounds, and the password appears nowhere', async () => {
    const r = await runDoctor(echo.url, { proxy: authed.url, proxyAuth: 'alice:wonder-land-42', env: {} });
    assert.equal(r.ok, true, JSON.stringify(r, null, 1));
    const proxy = r.steps.find((s) => s.step === 'proxy');
    assert.match(proxy?.detail ?? '', /200/);
    assert.match(proxy?.detail ?? '', /2 rounds/);
    const text = JSON.stringify({ ...r, steps: r.steps }) + JSON.stringify(reportToJSON(r));
    assert.doesNotMatch(text, /wonder-land-42/);
    assert.doesNotMatch(text, /YWxpY2U6d29uZGVyLWxhbmQtNDI/); // base64 of alice:wonder-land-42
  });

  it('squid with wrong credentials: PROXY_AUTH_REQUIRED, rejected, no password shown', async () => {
    const r = await runDoctor(echo.url, {
      proxy: `http://alice:nope-nope@127.0.0.1:${authed.port}`,
      env: {},
    });
    assert.equal(r.code, 'PROXY_AUTH_REQUIRED');
    assert.match(r.summary, /rejected the credentials of user "alice"/);
    assert.doesNotMatch(JSON.stringify(r), /nope-nope/);
  });

  it('a proxy out of tunnels answering 503: PROXY_UNAVAILABLE, named as a capacity problem', async () => {
    // Hold the one tunnel this client is allowed.
    const holder = net.connect(limited.port, '127.0.0.1');
    holder.on('error', () => {});
    await new Promise<void>((resolve) => holder.once('connect', () => resolve()));
    holder.write(`CONNECT 127.0.0.1:${echo.port} HTTP/1.1\r\nHost: 127.0.0.1:${echo.port}\r\n\r\n`);
    await new Promise<void>((resolve) => holder.once('data', () => resolve()));
    try {
      const r = await runDoctor(echo.url, { proxy: limited.url, env: {} });
      assert.equal(r.code, 'PROXY_UNAVAILABLE');
      const proxy = r.steps.find((s) => s.step === 'proxy');
      assert.match(proxy?.detail ?? '', /503 Service Unavailable/);
      assert.match(proxy?.detail ?? '', /no tunnel left/);
      assert.ok(
        r.advice.some((a) => /^a capacity problem/.test(a)),
        r.advice.join('\n'),
      );
      assert.match(r.summary, /a capacity problem/);
    } finally {
      holder.destroy();
    }
  });

  it('a proxy that cannot reach the destination (503 from squid): not called a capacity problem', async () => {
    const r = await runDoctor('ws://127.0.0.1:1/', { proxy: limited.url, env: {} });
    assert.equal(r.code, 'PROXY_UNAVAILABLE');
    assert.ok(!r.advice.some((a) => /capacity/.test(a)), r.advice.join('\n'));
    assert.ok(
      r.advice.some((a) => /could not reach 127.0.0.1:1/.test(a)),
      r.advice.join('\n'),
    );
  });

  it('the idle probe behind a proxy that allows one tunnel per client: partial, and says why', async () => {
    const r = await runDoctor(echo.url, {
      proxy: limited.url,
      env: {},
      idleProbeSeconds: 1,
      idlePongTimeout: 500,
    });
    assert.equal(r.ok, true, r.summary);
    const idle = r.steps.find((s) => s.step === 'idle');
    assert.equal(idle?.warning, true);
    assert.ok(
      idle?.more?.some((l) => /did not open \(PROXY_UNAVAILABLE\)/.test(l)),
      idle?.more?.join('\n'),
    );
    assert.ok(
      r.advice.some((a) => /parallel probe connections did not open/.test(a)),
      r.advice.join('\n'),
    );
  });
});
