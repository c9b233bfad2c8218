/** `wsvia proxy --upstream` chained through a real squid with Basic auth, as squid's cache_peer would be. */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { connect } from '../../src/client/connect.js';
import { startEchoServer } from '../../src/echo/echo-server.js';
import { parseProxyUrl } from '../../src/route/proxy-url.js';
import { connectRequest, errorAnswer, startProxy } from '../helpers/wsvia-proxy.js';
import { startSquid } from '../helpers/squid.js';

describe('wsvia proxy with squid as its parent', () => {
  it('chains tunnels through squid with credentials; a refusal by squid is a 502 that quotes it', async () => {
    const squid = await startSquid({ auth: 'basic', users: { parent: 'pw' } });
    const port = squid.port;
    const echo = await startEchoServer();
    const child = await startProxy({ upstream: parseProxyUrl(`http://parent:pw@127.0.0.1:${port}`) });
    const wrong = await startProxy({ upstream: parseProxyUrl(`http://parent:nope@127.0.0.1:${port}`) });
    after(async () => {
      await child.close();
      await wrong.close();
      await echo.close();
      await squid.stop();
    });
    const ws = await connect(echo.url, { proxy: child.url });
    ws.send('via squid');
    assert.equal(await new Promise<string>((r) => ws.once('message', (d) => r(String(d)))), 'via squid');
    ws.terminate();
    // The tunnel went through squid, as user "parent" (squid logs it when the tunnel ends).
    const line = new RegExp(`TCP_TUNNEL/200 .*CONNECT 127\\.0\\.0\\.1:${echo.port} parent`);
    for (let i = 0; i < 200 && !line.test(squid.log()); i++) await new Promise((res) => setTimeout(res, 50));
    assert.match(squid.log(), line);
    const r = await errorAnswer(wrong.port, connectRequest(`127.0.0.1:${echo.port}`));
    assert.equal(r.status, 502);
    assert.match(r.body, /rejected the credentials of user "parent"/);
    assert.ok(!r.body.includes('nope'));
  });
});
