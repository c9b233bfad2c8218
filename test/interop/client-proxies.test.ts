/**
 * The client through tinyproxy and the `proxy` npm package: plain and TLS proxies (own CA, SNI), IPv6 literals
 * everywhere, Basic auth with a colon in the password, and credentials that never reach the server.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { connect } from '../../src/client/connect.js';
import { startEchoServer, type EchoServer } from '../../src/echo/echo-server.js';
import { WsviaError } from '../../src/errors.js';
import type { TraceRecord } from '../../src/observe/trace.js';
import { localhostCert } from '../helpers/certs.js';
import { eventually } from '../helpers/eventually.js';
import { startNpmProxy } from '../helpers/npm-proxy.js';
import { type RunningProxy } from '../helpers/process.js';
import { startTinyproxy } from '../helpers/tinyproxy.js';
import { echoOnce } from '../helpers/ws.js';

describe('through tinyproxy', () => {
  let proxy: RunningProxy;
  let echo: EchoServer;
  let secure: EchoServer;
  before(async () => {
    [proxy, echo, secure] = await Promise.all([
      startTinyproxy(),
      startEchoServer({ port: 0 }),
      startEchoServer({ port: 0, tls: localhostCert() }),
    ]);
  });
  after(() => Promise.all([proxy.stop(), echo.close(), secure.close()]));

  test('ws:// and wss://', async () => {
    const ws = await connect(echo.url, { proxy: proxy.url });
    assert.equal(await echoOnce(ws, 'tiny'), 'tiny');
    ws.close();
    const wss = await connect(secure.url, { proxy: proxy.url, ca: localhostCert().cert });
    assert.equal(await echoOnce(wss, 'tiny and secure'), 'tiny and secure');
    wss.close();
    await eventually(() => assert.match(proxy.log(), new RegExp(`CONNECT.*127\\.0\\.0\\.1:${secure.port}`)));
  });
});

describe('through the proxy npm package', () => {
  let plain: RunningProxy & { requests: string[] };
  let authed: RunningProxy & { requests: string[] };
  let tlsProxy: RunningProxy & { requests: string[] };
  let v6: RunningProxy & { requests: string[] };
  let echo: EchoServer;
  let echo6: EchoServer;
  let secure: EchoServer;
  before(async () => {
    [plain, authed, tlsProxy, v6, echo, echo6, secure] = await Promise.all([
      startNpmProxy(),
      startNpmProxy({ basicAuth: { user: 'bob', pass: 'p:a@ss/w%rd' } }),
      startNpmProxy({ tls: localhostCert() }),
      startNpmProxy({ host: '::1' }),
      startEchoServer({ port: 0 }),
      startEchoServer({ host: '::1', port: 0 }),
      startEchoServer({ port: 0, tls: localhostCert() }),
    ]);
  });
  after(() =>
    Promise.all([
      plain.stop(),
      authed.stop(),
      tlsProxy.stop(),
      v6.stop(),
      echo.close(),
      echo6.close(),
      secure.close(),
    ]),
  );

  test('Basic with a colon and reserved characters in the password, percent-encoded in the URL', async () => {
    const url = authed.url.replace('http://', `http://bob:${encodeURIComponent('p:a@ss/w%rd')}@`);
    const ws = await connect(echo.url, { proxy: url });
    assert.equal(await echoOnce(ws, 'x'), 'x');
    ws.close();
    assert.equal(
      echo.received.at(-1)?.headers.some(([k]) => k.toLowerCase() === 'proxy-authorization'),
      false,
    );
  });

  test('https:// proxy: TLS to the proxy with its own CA and SNI, then wss to the target inside', async () => {
    const events: TraceRecord[] = [];
    const proxyUrl = tlsProxy.url.replace('127.0.0.1', 'localhost');
    const ws = await connect(secure.url.replace('127.0.0.1', 'localhost'), {
      proxy: proxyUrl,
      proxyCa: localhostCert().cert,
      ca: localhostCert().cert,
      trace: (e) => events.push(e),
    });
    assert.equal(await echoOnce(ws, 'double tls'), 'double tls');
    ws.close();
    const tls = events.filter((e) => e.type === 'tls');
    assert.deepEqual(
      tls.map((e) => e.type === 'tls' && [e.to, e.servername]),
      [
        ['proxy', 'localhost'],
        ['server', 'localhost'],
      ],
    );
  });

  test('https:// proxy with an untrusted certificate: TLS_UNTRUSTED at the proxy hop, pointing to --proxy-ca', async () => {
    await assert.rejects(connect(echo.url, { proxy: tlsProxy.url }), (e: unknown) => {
      assert.ok(e instanceof WsviaError);
      assert.equal(e.code, 'TLS_UNTRUSTED');
      assert.equal(e.hop, 'proxy');
      assert.match(e.hint ?? '', /--proxy-ca/);
      return true;
    });
  });

  test('https:// proxy with verification off (--proxy-insecure)', async () => {
    const ws = await connect(echo.url, { proxy: tlsProxy.url, proxyRejectUnauthorized: false });
    assert.equal(await echoOnce(ws, 'insecure proxy'), 'insecure proxy');
    ws.close();
  });

  test('IPv6 literals: proxy at http://[::1]:port, CONNECT [::1]:port', async () => {
    const ws = await connect(echo6.url, { proxy: v6.url });
    assert.match(echo6.url, /^ws:\/\/\[::1\]:\d+\/$/);
    assert.equal(await echoOnce(ws, 'six'), 'six');
    ws.close();
    assert.deepEqual(v6.requests, [`CONNECT [::1]:${echo6.port}`]);
  });

  test('ws:// direct when the proxy option is false, even with proxy variables set', async () => {
    const before = plain.requests.length;
    const ws = await connect(echo.url, { proxy: false, env: { http_proxy: plain.url } });
    assert.equal(await echoOnce(ws, 'direct'), 'direct');
    ws.close();
    assert.equal(plain.requests.length, before);
  });

  test('proxy from the environment: http_proxy for ws, https_proxy for wss, NO_PROXY honoured', async () => {
    const events: TraceRecord[] = [];
    const env = { http_proxy: plain.url, HTTPS_PROXY: authed.url, no_proxy: 'example.invalid' };
    const n = plain.requests.length;
    const ws = await connect(echo.url, { env, trace: (e) => events.push(e) });
    assert.equal(await echoOnce(ws, 'env'), 'env');
    ws.close();
    assert.equal(plain.requests.length, n + 1);
    const route = events.find((e) => e.type === 'route');
    assert.ok(route && route.type === 'route');
    assert.match(route.text, /from http_proxy/);
    assert.match(route.text, /no no_proxy entry matched 127\.0\.0\.1/);

    const direct = await connect(echo.url, {
      env: { ...env, no_proxy: '127.0.0.0/8' },
      trace: (e) => events.push(e),
    });
    direct.close();
    assert.equal(plain.requests.length, n + 1);
    assert.ok(
      events.some((e) => e.type === 'route' && /no_proxy entry '127\.0\.0\.0\/8' matches/.test(e.text)),
    );
  });
});
