/** Third-party clients through `wsvia proxy`: ws with https-proxy-agent, undici's ProxyAgent, and wsvia's own. */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { HttpsProxyAgent } from 'https-proxy-agent';
import { ProxyAgent, request as undiciRequest } from 'undici';
import WebSocket from 'ws';
import { StaticUsers } from '../../src/auth/server-auth.js';
import { connect } from '../../src/client/connect.js';
import { startEchoServer, type EchoServer } from '../../src/echo/echo-server.js';
import { startProxy, type RunningWsviaProxy } from '../helpers/wsvia-proxy.js';

describe('third-party clients through wsvia proxy', () => {
  let proxy: RunningWsviaProxy;
  let echo: EchoServer;
  let origin: http.Server;
  let originUrl: string;
  const auth = `Basic ${Buffer.from('carol:pw').toString('base64')}`;
  before(async () => {
    proxy = await startProxy({ users: new StaticUsers(['carol:pw']), authSchemes: ['basic'] });
    echo = await startEchoServer();
    origin = http.createServer((req, res) => res.end(`hello ${req.url ?? ''}`));
    await new Promise<void>((r) => origin.listen(0, '127.0.0.1', () => r()));
    originUrl = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;
  });
  after(async () => {
    await proxy.close();
    await echo.close();
    origin.closeAllConnections();
    await new Promise((r) => origin.close(r));
  });

  it('ws with https-proxy-agent: a WebSocket echo through a CONNECT tunnel', async () => {
    const agent = new HttpsProxyAgent(`http://carol:pw@127.0.0.1:${proxy.port}`);
    const ws = new WebSocket(echo.url, { agent });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    ws.send('via https-proxy-agent');
    const msg = await new Promise<string>((r) => ws.once('message', (d) => r(String(d))));
    assert.equal(msg, 'via https-proxy-agent');
    ws.terminate();
    const last = echo.received[echo.received.length - 1];
    assert.ok(last && !last.headers.some(([k]) => k.toLowerCase() === 'proxy-authorization'));
  });

  it("ws with https-proxy-agent and no credentials sees the proxy's 407", async () => {
    const agent = new HttpsProxyAgent(`http://127.0.0.1:${proxy.port}`);
    const ws = new WebSocket(echo.url, { agent });
    const err = await new Promise<Error>((resolve) => ws.once('error', resolve));
    assert.match(err.message, /407/);
  });

  it("undici's ProxyAgent: an HTTP request through the proxy", async () => {
    const dispatcher = new ProxyAgent({ uri: `http://127.0.0.1:${proxy.port}`, token: auth });
    after(() => dispatcher.close());
    const res = await undiciRequest(`${originUrl}/page`, { dispatcher });
    assert.equal(res.statusCode, 200);
    assert.equal(await res.body.text(), 'hello /page');
  });

  it("undici's ProxyAgent with a wrong token gets 407", async () => {
    const dispatcher = new ProxyAgent({ uri: `http://127.0.0.1:${proxy.port}`, token: 'Basic eDp5' });
    after(() => dispatcher.close());
    await assert.rejects(undiciRequest(`${originUrl}/`, { dispatcher }), /407|Proxy/);
  });

  it("wsvia's own connect()", async () => {
    const ws = await connect(echo.url, { proxy: `http://carol:pw@127.0.0.1:${proxy.port}` });
    ws.send('own');
    assert.equal(await new Promise<string>((r) => ws.once('message', (d) => r(String(d)))), 'own');
    ws.terminate();
  });
});
