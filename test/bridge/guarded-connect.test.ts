/**
 * `wsvia bridge` connects through serve/guarded-connect.ts: 0.0.0.0 and the IPv6 forms of loopback stay refused
 * whatever `--allow-target` says, a name is refused when any of its addresses is (it used to get the first allowed
 * one), and resolving a name is bounded by the connect timeout.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import dns from 'node:dns';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { parseTargetRule } from '../../src/bridge/allow-target.js';
import { startBridge, type BridgeOptions } from '../../src/bridge/server.js';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js';
import { startTcpEcho, type TcpPeer } from '../helpers/wsvia-proxy.js';

/** The upgrade's outcome: 101, or the refusal's status and body. */
function upgrade(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once('open', () => {
      ws.terminate();
      resolve({ status: 101, body: '' });
    });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    ws.once('error', reject);
  });
}

async function bridgeWith(o: BridgeOptions): Promise<string> {
  const b = await startBridge({ port: 0, ...o });
  after(() => b.close());
  return b.url;
}

describe('wsvia bridge: targets classed by what they reach', () => {
  let echo: TcpPeer;
  before(async () => {
    echo = await startTcpEcho();
  });
  after(() => echo.close());

  it('refuses ?target=0.0.0.0:PORT under --allow-target 0.0.0.0/0:PORT (it would reach loopback)', async () => {
    const url = await bridgeWith({ allowTargets: [parseTargetRule(`0.0.0.0/0:${echo.port}`)] });
    const r = await upgrade(`${url}/?target=0.0.0.0:${echo.port}`);
    assert.equal(r.status, 403);
    assert.match(r.body, /unspecified address .* always denied/);
    assert.equal(echo.sockets.length, 0);
  });

  it('refuses the IPv6 forms of 127.0.0.1 under --allow-target [::/0] and 127.0.0.1', async () => {
    const url = await bridgeWith({
      allowTargets: [parseTargetRule(`[::/0]:${echo.port}`), parseTargetRule(`127.0.0.1:${echo.port}`)],
    });
    for (const host of ['::7f00:1', '::127.0.0.1', '64:ff9b::7f00:1', '::ffff:0:7f00:1', '2002:7f00:1::']) {
      const r = await upgrade(`${url}/?target=[${host}]:${echo.port}`);
      assert.equal(r.status, 403, host);
      assert.match(r.body, /a loopback address, denied by default/, host);
    }
    assert.equal(echo.sockets.length, 0);
    // The address the rule names is open.
    assert.equal((await upgrade(`${url}/?target=127.0.0.1:${echo.port}`)).status, 101);
  });
});

describe('wsvia bridge: names and the resolver', () => {
  let dnsServer: TestDnsServer;
  let echo: TcpPeer;
  before(async () => {
    dnsServer = await startDnsServer({ 'mixed.test': ['127.0.0.2', '127.0.0.3'], 'one.test': '127.0.0.2' });
    echo = await startTcpEcho('127.0.0.2');
  });
  after(async () => {
    await echo.close();
    await dnsServer.close();
  });

  it('refuses a name with one allowed and one denied address, connecting to neither', async () => {
    const resolver = dnsServer.resolver();
    const url = await bridgeWith({
      allowTargets: [parseTargetRule(`127.0.0.2:${echo.port}`), parseTargetRule(`*.test:${echo.port}`)],
      lookup: (host) => resolver.resolve4(host),
    });
    const r = await upgrade(`${url}/?target=mixed.test:${echo.port}`);
    assert.equal(r.status, 403);
    assert.match(r.body, /mixed\.test resolves to 127\.0\.0\.3/);
    assert.equal(echo.sockets.length, 0);
    assert.equal((await upgrade(`${url}/?target=one.test:${echo.port}`)).status, 101);
  });

  it('answers 504 when the resolver is silent for longer than the connect timeout', async () => {
    // A name server that never answers: the lookup would take the resolver's own 5 s.
    const silent = dgram.createSocket('udp4');
    await new Promise<void>((r) => silent.bind(0, '127.0.0.1', () => r()));
    const resolver = new dns.promises.Resolver({ timeout: 5000, tries: 1 });
    resolver.setServers([`127.0.0.1:${silent.address().port}`]);
    after(() => {
      resolver.cancel();
      silent.close();
    });
    const url = await bridgeWith({
      allowTargets: [parseTargetRule(`*.test:${echo.port}`)],
      connectTimeout: 300,
      lookup: (host) => resolver.resolve4(host),
    });
    const started = Date.now();
    const r = await upgrade(`${url}/?target=slow.test:${echo.port}`);
    const elapsed = Date.now() - started;
    assert.equal(r.status, 504);
    assert.match(r.body, /cannot resolve slow\.test within 300 ms/);
    assert.ok(elapsed < 2500, `answered after ${elapsed} ms`);
  });
});
