import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import {
  closed,
  echo,
  openWs,
  sleep,
  startGateway,
  startUpstream,
  type TestGateway,
  type Upstream,
} from './peers.js';

describe('gateway: idle WebSockets', () => {
  let up: Upstream;
  let gw: TestGateway;
  let timed: TestGateway;
  before(async () => {
    up = await startUpstream('up');
    gw = await startGateway(`listen: 127.0.0.1:0\nroutes: [{ path: /, upstream: ${up.url} }]`);
    timed = await startGateway(
      `listen: 127.0.0.1:0\nroutes: [{ path: /, upstream: ${up.url} }]\nidle-timeout: 0.4\nmax-lifetime: 30`,
    );
  });
  after(async () => {
    await gw.gateway.close();
    await timed.gateway.close();
    await up.close();
  });

  // The one test that uses the clock for real: nginx's default proxy_read_timeout cuts at 60 s.
  it(
    'keeps a silent WebSocket open past 60 s by default (no pings, no timeout)',
    { timeout: 90_000 },
    async () => {
      const { ws } = await openWs(`${gw.wsUrl}/`);
      let closedEarly = false;
      ws.once('close', () => (closedEarly = true));
      await sleep(65_000);
      assert.equal(closedEarly, false);
      assert.equal(ws.readyState, WebSocket.OPEN);
      assert.equal((await echo(ws, 'after 65 s')).toString(), 'after 65 s');
      ws.close();
      await closed(ws);
    },
  );

  it('closes with 1001 after --idle-timeout when configured', async () => {
    const { ws } = await openWs(`${timed.wsUrl}/`);
    const t0 = Date.now();
    assert.equal(await closed(ws), 1001);
    assert.ok(Date.now() - t0 >= 300);
  });
});
