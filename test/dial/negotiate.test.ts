import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect } from '../../src/client/connect.js';
import { dialDetailed } from '../../src/dial/dial.js';
import { startEchoServer, type EchoServer } from '../../src/echo/echo-server.js';
import { isWsviaError } from '../../src/errors.js';
import type { TraceRecord } from '../../src/observe/trace.js';
import { startKdc, type RunningKdc } from '../helpers/kdc.js';
import { runCli } from '../helpers/cli.js';
import { type RunningProxy } from '../helpers/process.js';
import { startSquid } from '../helpers/squid.js';
import { until } from '../helpers/eventually.js';

// The GSS-API library in this process reads its configuration and ticket cache from these variables.
const KRB5_VARS = ['KRB5_CONFIG', 'KRB5CCNAME', 'KRB5_KDC_PROFILE'] as const;

describe('Negotiate (Kerberos) against squid with negotiate_kerberos_auth and a loopback KDC', () => {
  let echo: EchoServer;
  let kdc: RunningKdc;
  let squid: RunningProxy;
  const saved = new Map(KRB5_VARS.map((k) => [k, process.env[k]]));
  before(async () => {
    echo = await startEchoServer();
    kdc = await startKdc({ users: { alice: 'wonderland' } });
    for (const k of KRB5_VARS) process.env[k] = kdc.env[k];
    squid = await startSquid({
      auth: 'negotiate',
      negotiate: { env: kdc.env, keytab: kdc.keytab, principal: kdc.servicePrincipal },
    });
  });
  after(async () => {
    await squid?.stop();
    await kdc?.stop();
    await echo?.close();
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  // The service is HTTP@<proxy host>: the proxy is named `localhost`, as its keytab's HTTP/localhost says.
  const proxy = (): string => `http://localhost:${squid.port}`;

  it('without a ticket the error says to run kinit', async () => {
    try {
      await dialDetailed(echo.url, { proxy: proxy(), proxyAuthSchemes: ['negotiate'] });
      assert.fail('expected PROXY_AUTH_REQUIRED');
    } catch (e) {
      assert.ok(isWsviaError(e), String(e));
      assert.equal(e.code, 'PROXY_AUTH_REQUIRED');
      assert.match(e.message, /no usable Kerberos ticket/);
      assert.match(e.hint ?? '', /kinit/);
    }
  });

  it('after kinit, answers Negotiate with the ticket and opens the tunnel (no password given)', async () => {
    kdc.kinit('alice', 'wonderland');
    const events: TraceRecord[] = [];
    const ws = await connect(echo.url, {
      proxy: proxy(),
      proxyAuthSchemes: ['negotiate'],
      trace: (e) => events.push(e),
    });
    const echoed = await new Promise<string>((resolve) => {
      ws.once('message', (m) => resolve(String(m)));
      ws.send('via kerberos');
    });
    assert.equal(echoed, 'via kerberos');
    ws.close();
    const sent = events.filter((e) => e.type === 'head' && e.from === 'client' && e.to === 'proxy');
    assert.equal(sent.length, 2);
    assert.match((sent[1] as { text: string }).text, /Proxy-Authorization: Negotiate \*\*\*/);
    assert.ok(events.some((e) => e.type === 'note' && e.text.startsWith('negotiate: answering')));
    // squid logs the tunnel with the Kerberos principal when it ends: wait for the line (bounded).
    const logged = /TCP_TUNNEL\/200 \d+ CONNECT 127\.0\.0\.1:\d+ alice@WSVIA\.TEST/;
    await until('squid to log the tunnel with the principal', () => logged.test(squid.log()));
  });

  it('under any-auth, empty credentials (curl -U :) pick Negotiate', async () => {
    const events: TraceRecord[] = [];
    const d = await dialDetailed(echo.url, { proxy: proxy(), proxyAuth: ':', trace: (e) => events.push(e) });
    d.socket.destroy();
    const sent = events.filter((e) => e.type === 'head' && e.from === 'client' && e.to === 'proxy');
    assert.equal(sent.length, 2);
    assert.match((sent[1] as { text: string }).text, /Proxy-Authorization: Negotiate \*\*\*/);
    assert.ok(events.some((e) => e.type === 'note' && e.text.startsWith('negotiate: answering')));
  });

  it('wsvia connect --proxy-negotiate, as curl --proxy-negotiate -U : does', async () => {
    const r = await runCli(
      ['connect', echo.url, '-x', proxy(), '--proxy-negotiate', '--send', 'k', '--expect', '1'],
      { env: kdc.env, timeoutMs: 30_000 },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /k/);
  });

  it('a ticket for another service: the error names the service the KDC does not know', async () => {
    // 127.0.0.1 makes the service HTTP@127.0.0.1, which the realm does not hold.
    try {
      await dialDetailed(echo.url, {
        proxy: `http://127.0.0.1:${squid.port}`,
        proxyAuthSchemes: ['negotiate'],
      });
      assert.fail('expected PROXY_AUTH_REQUIRED');
    } catch (e) {
      assert.ok(isWsviaError(e), String(e));
      assert.equal(e.code, 'PROXY_AUTH_REQUIRED');
      assert.match(e.message, /HTTP@127\.0\.0\.1|HTTP\/127\.0\.0\.1/);
    }
  });
});
