/**
 * Network fuzzing of the bridge in process: request heads, the websockify (binary) and
 * `wsvia.tunnel.v1` protocols after a good upgrade with broken frames and control messages, raw bytes and, on
 * TLS listeners, ClientHello garbage; and the bridge's admin endpoint. Afterwards each still carries a clean
 * session, counts no session, holds no socket, and nothing reached the process.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { after, before, describe, it } from 'node:test';
import { startAdmin } from '../../src/bridge/admin.js';
import { parseTargetRule } from '../../src/bridge/allow-target.js';
import { BridgeServer } from '../../src/bridge/server.js';
import { localhostCert } from '../helpers/certs.js';
import { startTcpEcho, type TcpPeer } from '../helpers/wsvia-proxy.js';
import { fuzz, no500, RunChecks, serverJudge } from './harness.js';
import { clientHelloGarbage, framesAfterUpgrade, rawBytes, requestHead, tunnelSession } from './inputs.js';
import { captureClientHello, echoes, loopbackLookup } from './peers.js';

describe('fuzz: bridge listeners', () => {
  let target: TcpPeer;
  before(async () => {
    target = await startTcpEcho();
  });
  after(() => target.close());

  async function withBridge(
    tls: boolean,
    body: (b: BridgeServer, port: number) => Promise<number>,
  ): Promise<void> {
    const checks = new RunChecks();
    const bridge = new BridgeServer({
      host: '127.0.0.1',
      port: 0,
      target: { host: '127.0.0.1', port: target.port },
      routes: new Map([['/vnc', { host: '127.0.0.1', port: target.port }]]),
      allowTargets: [parseTargetRule(`127.0.0.1:${target.port}`), parseTargetRule('localhost:*')],
      allowPrivate: true,
      lookup: loopbackLookup,
      connectTimeout: 2000,
      ...(tls ? { tls: localhostCert() } : {}),
    });
    await bridge.listen();
    try {
      const n = await body(bridge, bridge.port);
      await checks.verify([
        { name: 'sessions', open: () => bridge.active },
        { name: 'admitted upgrades', open: () => bridge.admitted },
      ]);
      assert.ok(n >= 100, `only ${n} connections`);
    } finally {
      await bridge.close(0);
    }
  }

  const PATHS = [
    '/',
    '/vnc',
    `/?target=127.0.0.1:${1}`,
    '/?token=x',
    '/?target=localhost:1',
    '/?connection=1',
  ];

  it('websockify and tunnel protocols: heads, frames, control messages and raw bytes', async () => {
    await withBridge(false, async (bridge, port) => {
      const ep = { port };
      let n = await fuzz({ endpoint: ep, input: requestHead(PATHS), runs: 30, judge: serverJudge });
      const protocols = [undefined, 'binary', 'base64', 'binary, wsvia.tunnel.v1'];
      n += await fuzz({
        endpoint: ep,
        input: framesAfterUpgrade('/', protocols),
        runs: 30,
        judge: serverJudge,
      });
      n += await fuzz({
        endpoint: ep,
        input: tunnelSession('/', 'wsvia.tunnel.v1'),
        runs: 30,
        judge: serverJudge,
      });
      n += await fuzz({ endpoint: ep, input: rawBytes, runs: 8, judge: serverJudge });
      await echoes(bridge.url, 'binary');
      await echoes(bridge.url, 'wsvia.tunnel.v1');
      return n;
    });
  });

  it('TLS listener: frames inside TLS and ClientHello garbage outside it', async () => {
    const hello = await captureClientHello();
    await withBridge(true, async (bridge, port) => {
      const frames = fc.oneof(framesAfterUpgrade('/', ['binary']), tunnelSession('/', 'wsvia.tunnel.v1'));
      let n = await fuzz({ endpoint: { port, tls: true }, input: frames, runs: 12, judge: serverJudge });
      n += await fuzz({ endpoint: { port }, input: clientHelloGarbage(hello), runs: 12 });
      await echoes(bridge.url, 'binary');
      return n;
    });
  });

  it('admin endpoint: fuzzed heads get no 500 and /metrics keeps answering', async () => {
    await withBridge(false, async (bridge) => {
      const admin = await startAdmin(bridge, '127.0.0.1', 0);
      try {
        const port = (admin.address() as { port: number }).port;
        const heads = requestHead(['/metrics', '/healthz', '/', '*']);
        const n = await fuzz({
          endpoint: { port },
          input: fc.oneof(heads, rawBytes),
          runs: 15,
          judge: no500,
        });
        const res = await fetch(`http://127.0.0.1:${port}/metrics`);
        assert.equal(res.status, 200);
        await res.text();
        return n;
      } finally {
        admin.closeAllConnections();
        await new Promise<void>((r) => admin.close(() => r()));
      }
    });
  });
});
