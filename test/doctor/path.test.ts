import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { WebSocketServer } from 'ws';
import { startEchoServer, type EchoServer } from '../../src/echo/echo-server.js';
import { makeSelfSigned, type KeyPair } from '../../src/echo/self-signed.js';
import { runDoctor } from '../../src/doctor/run-doctor.js';
import { type RunningPeer } from '../helpers/process.js';
import { startSquid } from '../helpers/squid.js';

describe('doctor: route, a silent proxy, a server that does not echo', () => {
  let echo: EchoServer;
  let tlsEcho: EchoServer;
  let serverKeys: KeyPair;
  let squid: RunningPeer;
  let httpsProxy: RunningPeer;
  let proxyKeys: KeyPair;
  let silent: net.Server;
  let mute: WebSocketServer;
  const held = new Set<net.Socket>();
  before(async () => {
    echo = await startEchoServer({ mirror: true });
    proxyKeys = makeSelfSigned();
    serverKeys = makeSelfSigned();
    tlsEcho = await startEchoServer({ tls: serverKeys, mirror: true });
    [squid, httpsProxy] = await Promise.all([startSquid(), startSquid({ tls: proxyKeys })]);
    // Accepts TCP and never answers CONNECT: a proxy stuck reaching the destination.
    silent = net.createServer((s) => {
      held.add(s);
      s.on('error', () => {});
      s.on('close', () => held.delete(s));
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    mute = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((r) => mute.once('listening', () => r()));
  });
  after(async () => {
    for (const s of held) s.destroy();
    await Promise.all([
      squid?.stop(),
      httpsProxy?.stop(),
      echo?.close(),
      tlsEcho?.close(),
      new Promise<void>((r) => silent.close(() => r())),
      new Promise<void>((r) => mute.close(() => r())),
    ]);
  });

  it('names the environment variable the proxy came from', async () => {
    const r = await runDoctor(echo.url, { env: { http_proxy: squid.url } });
    assert.equal(r.ok, true, r.summary);
    assert.equal(r.steps[0]?.detail, `proxy http://127.0.0.1:${squid.port} from http_proxy`);
    assert.match(r.steps.find((s) => s.step === 'proxy')?.detail ?? '', /200 Connection established/);
  });

  it('names the NO_PROXY entry that sent it direct', async () => {
    const r = await runDoctor(echo.url, {
      env: { http_proxy: squid.url, NO_PROXY: 'example.com,127.0.0.1' },
    });
    assert.equal(r.ok, true, r.summary);
    assert.match(r.steps[0]?.detail ?? '', /direct: NO_PROXY entry '127\.0\.0\.1' matches 127\.0\.0\.1/);
    assert.equal(
      r.steps.find((s) => s.step === 'proxy'),
      undefined,
    );
  });

  it('a proxy that never answers CONNECT: TUNNEL_TIMEOUT on the proxy step', async () => {
    const port = (silent.address() as net.AddressInfo).port;
    const r = await runDoctor(echo.url, { proxy: `http://127.0.0.1:${port}`, timeouts: { tunnel: 500 } });
    assert.equal(r.code, 'TUNNEL_TIMEOUT');
    const last = r.steps[r.steps.length - 1];
    assert.equal(last?.step, 'proxy');
    assert.equal(last?.ok, false);
  });

  it('a server that does not echo: roundtrip ok with a warning', async () => {
    const port = (mute.address() as net.AddressInfo).port;
    const r = await runDoctor(`ws://127.0.0.1:${port}/`, { proxy: false, roundtripTimeout: 300 });
    assert.equal(r.ok, true);
    const rt = r.steps.find((s) => s.step === 'roundtrip');
    assert.equal(rt?.warning, true);
    assert.match(rt?.detail ?? '', /nothing came back within \d+ ms: the server does not echo/);
  });

  it('a token in the URL query appears nowhere in the report', async () => {
    const r = await runDoctor(`${echo.url}chat?token=abc-secret-777&room=1`, { proxy: false });
    assert.equal(r.ok, true, r.summary);
    const text = JSON.stringify(r);
    assert.doesNotMatch(text, /abc-secret-777/);
    assert.match(text, /room=1/);
  });

  it('an https:// proxy: the TLS to the proxy is shown in the proxy step', async () => {
    const r = await runDoctor(echo.url, { proxy: httpsProxy.url, proxyCa: proxyKeys.cert, env: {} });
    assert.equal(r.ok, true, r.summary);
    const proxy = r.steps.find((s) => s.step === 'proxy');
    assert.ok(
      proxy?.more?.some((l) =>
        /^tls to the proxy \([\d.]+ ms\): TLSv1\.[23], certificate CN=localhost/.test(l),
      ),
    );
  });

  it('an https:// proxy whose certificate is not trusted: fails on the proxy step, advice names --proxy-ca', async () => {
    const r = await runDoctor(echo.url, { proxy: httpsProxy.url, env: {} });
    assert.equal(r.code, 'TLS_UNTRUSTED');
    const last = r.steps[r.steps.length - 1];
    assert.equal(last?.step, 'proxy');
    assert.ok(
      r.advice.some((a) => /--proxy-ca FILE/.test(a)),
      r.advice.join('\n'),
    );
  });

  it('wss through a proxy that does not intercept: the direct certificate is the same, no warning', async () => {
    const r = await runDoctor(tlsEcho.url, { proxy: squid.url, ca: serverKeys.cert, env: {} });
    assert.equal(r.ok, true, r.summary);
    const tls = r.steps.find((s) => s.step === 'tls');
    assert.equal(tls?.warning, undefined);
    assert.match(
      tls?.detail ?? '',
      /^TLSv1\.[23], ALPN http\/1\.1, CN=localhost issued by CN=localhost, valid /,
    );
    assert.ok(tls?.more?.includes('a direct connection sees the same certificate'), tls?.more?.join('\n'));
    assert.doesNotMatch(JSON.stringify(r), /INTERCEPT|inspected/i);
  });
});
