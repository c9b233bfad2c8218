/**
 * The client through squid, the proxy most corporate networks run: ws and wss tunnels, Basic and Digest offered
 * in one 407, rejected and missing credentials, the SSL_ports rule, and proof that the traffic went through it
 * and that proxy credentials never reached the server.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { connect } from '../../src/client/connect.js';
import { startEchoServer, type EchoServer } from '../../src/echo/echo-server.js';
import { WsviaError } from '../../src/errors.js';
import type { TraceRecord } from '../../src/observe/trace.js';
import { localhostCert } from '../helpers/certs.js';
import { type RunningProxy } from '../helpers/process.js';
import { startSquid } from '../helpers/squid.js';
import { echoOnce } from '../helpers/ws.js';
import { eventually } from '../helpers/eventually.js';

describe('through squid without auth', () => {
  let squid: RunningProxy;
  let echo: EchoServer;
  let secure: EchoServer;
  before(async () => {
    [squid, echo, secure] = await Promise.all([
      startSquid(),
      startEchoServer({ port: 0 }),
      startEchoServer({ port: 0, tls: localhostCert() }),
    ]);
  });
  after(() => Promise.all([squid.stop(), echo.close(), secure.close()]));

  test('ws:// through a CONNECT tunnel', async () => {
    const ws = await connect(echo.url, { proxy: squid.url });
    assert.equal(await echoOnce(ws, 'hello squid'), 'hello squid');
    ws.close();
    // squid logs a tunnel when it ends.
    await eventually(() => assert.match(squid.log(), new RegExp(`CONNECT 127\\.0\\.0\\.1:${echo.port}`)));
  });

  test('wss:// through the tunnel: SNI and verification against the target, not the proxy', async () => {
    const events: TraceRecord[] = [];
    const url = secure.url.replace('127.0.0.1', 'localhost');
    const ws = await connect(url, {
      proxy: squid.url,
      ca: localhostCert().cert,
      trace: (e) => events.push(e),
    });
    assert.equal(await echoOnce(ws, 'secure'), 'secure');
    ws.close();
    const tls = events.find((e) => e.type === 'tls');
    assert.ok(tls && tls.type === 'tls');
    assert.equal(tls.servername, 'localhost');
    assert.equal(tls.to, 'server');
    assert.equal(tls.authorized, true);
    assert.equal(secure.received.at(-1)?.tls?.servername, 'localhost');
  });

  test('wss:// with an untrusted self-signed target: TLS_UNTRUSTED naming the certificate', async () => {
    await assert.rejects(connect(secure.url, { proxy: squid.url }), (e: unknown) => {
      assert.ok(e instanceof WsviaError);
      assert.equal(e.code, 'TLS_UNTRUSTED');
      assert.equal(e.hop, 'tls');
      assert.match(e.message, /CN=localhost/);
      assert.match(e.message, /--ca/);
      return true;
    });
  });
});

describe('through squid offering Digest and Basic in one 407', () => {
  let squid: RunningProxy;
  let echo: EchoServer;
  before(async () => {
    [squid, echo] = await Promise.all([
      startSquid({ auth: 'both', users: { alice: 'wonder land' } }),
      startEchoServer({ port: 0 }),
    ]);
  });
  after(() => Promise.all([squid.stop(), echo.close()]));

  test('credentials from the URL (percent-decoded): answers with Digest, the stronger', async () => {
    const heads: string[] = [];
    const proxy = squid.url.replace('http://', 'http://alice:wonder%20land@');
    const ws = await connect(echo.url, {
      proxy,
      trace: (e) => {
        if (e.type === 'head' && e.to === 'proxy') heads.push(e.text);
      },
    });
    assert.equal(await echoOnce(ws, 'authed'), 'authed');
    ws.close();
    assert.equal(heads.length, 2, 'one CONNECT without credentials, one answering the challenge');
    assert.match(heads[1] as string, /Proxy-Authorization: Digest username="alice", \*\*\*/);
    // Nothing secret in the trace, and nothing of the proxy's auth reached the server.
    assert.doesNotMatch(heads.join('\n'), /wonder/);
    const received = echo.received.at(-1);
    assert.ok(received);
    assert.equal(
      received.headers.some(([k]) => /^proxy-/i.test(k)),
      false,
    );
  });

  test('credentials from the proxyAuth option, Basic only when asked', async () => {
    const ws = await connect(echo.url, {
      proxy: squid.url,
      proxyAuth: 'alice:wonder land',
      proxyAuthSchemes: ['basic'],
    });
    assert.equal(await echoOnce(ws, 'basic'), 'basic');
    ws.close();
  });

  test('no credentials: PROXY_AUTH_REQUIRED naming both schemes', async () => {
    await assert.rejects(connect(echo.url, { proxy: squid.url }), (e: unknown) => {
      assert.ok(e instanceof WsviaError);
      assert.equal(e.code, 'PROXY_AUTH_REQUIRED');
      assert.equal(e.hop, 'proxy');
      assert.match(e.message, /407/);
      assert.match(e.message, /Digest/);
      assert.match(e.message, /Basic/);
      assert.match(e.message, /--proxy-user/);
      assert.ok(e.answer?.headers?.some(([k]) => k.toLowerCase() === 'proxy-authenticate'));
      return true;
    });
  });

  test('wrong password: PROXY_AUTH_REQUIRED saying the credentials were rejected, without the password', async () => {
    await assert.rejects(
      connect(echo.url, { proxy: squid.url, proxyAuth: 'alice:nope-secret' }),
      (e: unknown) => {
        assert.ok(e instanceof WsviaError);
        assert.equal(e.code, 'PROXY_AUTH_REQUIRED');
        assert.match(e.message, /rejected the credentials of user "alice"/);
        assert.doesNotMatch(JSON.stringify(e.toJSON()), /nope-secret/);
        return true;
      },
    );
  });
});

describe('squid with the usual SSL_ports rule', () => {
  let squid: RunningProxy;
  let echo: EchoServer;
  before(async () => {
    [squid, echo] = await Promise.all([startSquid({ sslPortsOnly: true }), startEchoServer({ port: 0 })]);
  });
  after(() => Promise.all([squid.stop(), echo.close()]));

  test('CONNECT to a port other than 443: PROXY_REFUSED with the 403 and advice', async () => {
    await assert.rejects(connect(echo.url, { proxy: squid.url }), (e: unknown) => {
      assert.ok(e instanceof WsviaError);
      assert.equal(e.code, 'PROXY_REFUSED');
      assert.equal(e.answer?.status, 403);
      assert.match(e.message, /403/);
      assert.match(e.hint ?? '', /443/);
      assert.ok(e.answer?.headers?.some(([k]) => /^(server|x-squid-error|via)$/i.test(k)));
      return true;
    });
  });
});
