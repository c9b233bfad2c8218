import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect } from '../../src/client/connect.js';
import { dialDetailed } from '../../src/dial/dial.js';
import { startEchoServer, type EchoServer } from '../../src/echo/echo-server.js';
import { isWsviaError } from '../../src/errors.js';
import type { TraceRecord } from '../../src/observe/trace.js';
import { type RunningProxy } from '../helpers/process.js';
import { startSquid } from '../helpers/squid.js';

describe('NTLM against squid (ntlm_fake_auth)', () => {
  let echo: EchoServer;
  let squid: RunningProxy;
  before(async () => {
    echo = await startEchoServer();
    squid = await startSquid({ auth: 'ntlm' });
  });
  after(async () => {
    await squid?.stop();
    await echo?.close();
  });

  it('runs NEGOTIATE, CHALLENGE, AUTHENTICATE on one connection and opens the tunnel', async () => {
    const events: TraceRecord[] = [];
    const ws = await connect(echo.url, {
      proxy: `http://127.0.0.1:${squid.port}`,
      proxyAuth: 'CORP\\alice:Secret1',
      trace: (e) => events.push(e),
    });
    const echoed = await new Promise<string>((resolve) => {
      ws.once('message', (m) => resolve(String(m)));
      ws.send('via ntlm');
    });
    assert.equal(echoed, 'via ntlm');
    ws.close();
    const tcp = events.filter((e) => e.type === 'tcp');
    assert.equal(tcp.length, 1, 'one connection to the proxy for the three legs');
    const sent = events.filter((e) => e.type === 'head' && e.from === 'client' && e.to === 'proxy');
    assert.equal(sent.length, 3);
    assert.match((sent[1] as { text: string }).text, /Proxy-Authorization: NTLM \*\*\*/);
    assert.ok(events.some((e) => e.type === 'note' && e.text.startsWith('ntlm: challenge')));
    assert.ok(!JSON.stringify(events).includes('Secret1'));
    // squid logs a tunnel when it ends: wait for the line (bounded).
    const logged = /TCP_TUNNEL\/200 \d+ CONNECT 127\.0\.0\.1:\d+ CORP\\+alice/;
    for (let i = 0; i < 50 && !logged.test(squid.log()); i++) await new Promise((r) => setTimeout(r, 100));
    assert.match(squid.log(), logged);
  });

  it('without credentials the error names NTLM as offered', async () => {
    try {
      await dialDetailed(echo.url, { proxy: `http://127.0.0.1:${squid.port}` });
      assert.fail('expected PROXY_AUTH_REQUIRED');
    } catch (e) {
      assert.ok(isWsviaError(e));
      assert.equal(e.code, 'PROXY_AUTH_REQUIRED');
      assert.match(e.message, /offers NTLM/);
    }
  });
});
