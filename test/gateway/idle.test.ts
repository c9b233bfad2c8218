import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { until } from '../helpers/eventually.js';
import { startNginx } from '../helpers/nginx.js';
import type { RunningPeer } from '../helpers/process.js';
import {
  closed,
  echo,
  openWs,
  startGateway,
  startUpstream,
  type TestGateway,
  type Upstream,
} from './peers.js';

/** nginx's proxy_read_timeout in these tests: the default is 60 s, the mechanism the same. */
const READ_TIMEOUT_S = 2;

describe('gateway: idle WebSockets', () => {
  let up: Upstream;
  let quiet: TestGateway;
  let pinging: TestGateway;
  let timed: TestGateway;
  let nginxQuiet: RunningPeer;
  let nginxPinging: RunningPeer;
  before(async () => {
    up = await startUpstream('up');
    const route = `listen: 127.0.0.1:0\nroutes: [{ path: /, upstream: ${up.url} }]`;
    [quiet, pinging, timed] = await Promise.all([
      startGateway(route),
      startGateway(`${route}\nping: 0.5`),
      startGateway(`${route}\nidle-timeout: 0.4\nmax-lifetime: 30`),
    ]);
    const port = (g: TestGateway): number => Number(new URL(g.url).port);
    [nginxQuiet, nginxPinging] = await Promise.all([
      startNginx({ upstreamPort: port(quiet), upgradeHeaders: true, readTimeoutSeconds: READ_TIMEOUT_S }),
      startNginx({ upstreamPort: port(pinging), upgradeHeaders: true, readTimeoutSeconds: READ_TIMEOUT_S }),
    ]);
  });
  after(async () => {
    await Promise.all([nginxQuiet?.stop(), nginxPinging?.stop()]);
    await Promise.all([quiet?.gateway.close(), pinging?.gateway.close(), timed?.gateway.close()]);
    await up?.close();
  });

  it('behind nginx (proxy_read_timeout 2 s), a silent WebSocket without pings is cut by nginx', async () => {
    const { ws } = await openWs(`${nginxQuiet.url.replace('http:', 'ws:')}/`);
    const t0 = Date.now();
    await closed(ws);
    assert.ok(Date.now() - t0 >= READ_TIMEOUT_S * 1000 - 300, `cut after ${Date.now() - t0} ms`);
  });

  it('--ping 0.5 keeps a silent WebSocket through nginx open past 3x its proxy_read_timeout (pongs counted)', async () => {
    const { ws } = await openWs(`${nginxPinging.url.replace('http:', 'ws:')}/`);
    let closedEarly = false;
    ws.once('close', () => (closedEarly = true));
    let pings = 0;
    ws.on('ping', () => pings++); // ws answers each with a pong, which the gateway waits for
    const t0 = Date.now();
    // Waits for the pings that make up 3x the timeout, each answered, rather than sleeping.
    await until(
      'pings for 3x the read timeout',
      () => closedEarly || (pings >= 12 && Date.now() - t0 >= 3 * READ_TIMEOUT_S * 1000),
      30_000,
    );
    assert.equal(closedEarly, false, `closed after ${pings} pings, ${Date.now() - t0} ms`);
    assert.equal(ws.readyState, WebSocket.OPEN);
    assert.equal((await echo(ws, 'still here')).toString(), 'still here');
    ws.close();
    await once(ws, 'close');
  });

  it('closes with 1001 after --idle-timeout when configured', async () => {
    const { ws } = await openWs(`${timed.wsUrl}/`);
    const t0 = Date.now();
    assert.equal(await closed(ws), 1001);
    assert.ok(Date.now() - t0 >= 300);
  });
});
