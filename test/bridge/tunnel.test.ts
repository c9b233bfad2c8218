import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { parseTargetRule } from '../../src/bridge/allow-target.js';
import { startBridge, type Bridge } from '../../src/bridge/server.js';
import { startLocalTunnel, startReverseTunnel, type LocalTunnel } from '../../src/bridge/tunnel.js';
import { parsePortList } from '../../src/route/destination.js';
import { StaticUsers } from '../../src/auth/server-auth.js';
import { isWsviaError, type WsviaError } from '../../src/errors.js';
import { acceptsConnection, freePort, freePortOutsideEphemeral } from '../helpers/process.js';
import { localhostCert } from '../helpers/certs.js';
import { answerAfterEof, exchange, namedServer, sha256, tcpEcho, type TcpServer } from './tcp-servers.js';
import { until } from '../helpers/eventually.js';

/** Opens a local connection and resolves with the error the tunnel reported for it. */
async function errorFor(tunnelErrors: unknown[], port: number): Promise<WsviaError> {
  const n = tunnelErrors.length;
  const s = net.connect({ host: '127.0.0.1', port });
  s.on('error', () => {});
  const closedSocket = new Promise<void>((r) => s.once('close', () => r()));
  await until('the tunnel error', () => tunnelErrors.length > n);
  await closedSocket; // the local connection is closed, never left hanging
  const e = tunnelErrors[n];
  assert.ok(isWsviaError(e), String(e));
  return e;
}

describe('wsvia tunnel -L against wsvia bridge', () => {
  let answer: TcpServer;
  let echo: TcpServer;
  let greeter: TcpServer;
  let bridge: Bridge;
  let tunnel: LocalTunnel;
  const errors: unknown[] = [];

  before(async () => {
    [answer, echo, greeter] = await Promise.all([
      answerAfterEof(),
      tcpEcho(),
      namedServer('SSH-2.0-greeter'),
    ]);
    bridge = await startBridge({
      port: 0,
      target: { host: '127.0.0.1', port: answer.port },
      allowTargets: [parseTargetRule(`127.0.0.1:${echo.port}`), parseTargetRule(`127.0.0.1:${greeter.port}`)],
    });
    tunnel = await startLocalTunnel(
      { host: '127.0.0.1', port: 0 },
      { url: bridge.url, onError: (e) => errors.push(e) },
    );
  });
  after(async () => {
    await tunnel.close();
    await bridge.close();
    await Promise.all([answer.close(), echo.close(), greeter.close()]);
  });

  it('carries a half-close: the whole answer arrives after the request ended', async () => {
    const got = await exchange(tunnel.port, 'question\n');
    assert.equal(got.toString(), `bytes=9 sha256=${sha256(Buffer.from('question\n'))}\nquestion\n`);
  });

  it('keeps a greeting the target sends first (as SSH servers do), even in the same read as the 101', async () => {
    const t = await startLocalTunnel(
      { host: '127.0.0.1', port: 0 },
      { url: bridge.url, target: { host: '127.0.0.1', port: greeter.port }, onError: (e) => errors.push(e) },
    );
    try {
      for (let i = 0; i < 5; i++) assert.equal((await exchange(t.port, '')).toString(), 'SSH-2.0-greeter\n');
    } finally {
      await t.close();
    }
  });

  it('carries 1 MiB byte for byte', async () => {
    const data = randomBytes(1024 * 1024);
    const got = await exchange(tunnel.port, data);
    const nl = got.indexOf(10);
    assert.equal(got.subarray(0, nl).toString(), `bytes=${data.length} sha256=${sha256(data)}`);
    assert.ok(got.subarray(nl + 1).equals(data));
  });

  it('carries 20 parallel tunnels byte for byte', async () => {
    const inputs = Array.from({ length: 20 }, (_, i) => randomBytes(32 * 1024 + i * 997));
    const outputs = await Promise.all(inputs.map((d) => exchange(tunnel.port, d)));
    outputs.forEach((got, i) => {
      const d = inputs[i] as Buffer;
      assert.ok(got.subarray(got.indexOf(10) + 1).equals(d), `tunnel ${i}`);
    });
  });

  it("asks the bridge for a target (-L PORT:HOST:PORT) and reports a denied one with the bridge's reason", async () => {
    const chosen = await startLocalTunnel(
      { host: '127.0.0.1', port: 0 },
      { url: bridge.url, target: { host: '127.0.0.1', port: echo.port }, onError: (e) => errors.push(e) },
    );
    const denied = await startLocalTunnel(
      { host: '127.0.0.1', port: 0 },
      { url: bridge.url, target: { host: '127.0.0.1', port: 1 }, onError: (e) => errors.push(e) },
    );
    try {
      assert.equal((await exchange(chosen.port, 'ping')).toString(), 'ping');
      const e = await errorFor(errors, denied.port);
      assert.equal(e.code, 'UPGRADE_REJECTED');
      assert.equal(e.answer?.status, 403);
      assert.match(e.answer?.bodyExcerpt ?? '', /127\.0\.0\.1:1 matches no --allow-target rule/);
    } finally {
      await chosen.close();
      await denied.close();
    }
  });
});

describe('wsvia tunnel over IPv6 loopback', () => {
  it('listens on [::1] on both sides and carries a half-close', async () => {
    const answer = await answerAfterEof();
    const bridge = await startBridge({
      host: '::1',
      port: 0,
      target: { host: '127.0.0.1', port: answer.port },
    });
    assert.match(bridge.url, /^ws:\/\/\[::1\]:\d+$/);
    const t = await startLocalTunnel({ host: '::1', port: 0 }, { url: bridge.url });
    try {
      assert.match((await exchange(t.port, 'six', '::1')).toString(), /^bytes=3 sha256=[0-9a-f]{64}\nsix$/);
    } finally {
      await t.close();
      await bridge.close();
      await answer.close();
    }
  });
});

describe('wsvia tunnel errors', () => {
  it('says which hop failed: 401 from the bridge, a dead bridge, a bridge that never answers', async () => {
    const echo = await tcpEcho();
    const errors: unknown[] = [];
    const authBridge = await startBridge({
      port: 0,
      target: { host: '127.0.0.1', port: echo.port },
      users: new StaticUsers(['u:p']),
    });
    const deadPort = await freePort();
    const silent = net.createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const silentPort = (silent.address() as net.AddressInfo).port;
    const tunnels = await Promise.all(
      [authBridge.url, `ws://127.0.0.1:${deadPort}`, `ws://127.0.0.1:${silentPort}`].map((url) =>
        startLocalTunnel(
          { host: '127.0.0.1', port: 0 },
          { url, connect: { timeouts: { upgrade: 500 } }, onError: (e) => errors.push(e) },
        ),
      ),
    );
    try {
      const [a, d, s] = tunnels as [LocalTunnel, LocalTunnel, LocalTunnel];
      const unauthorized = await errorFor(errors, a.port);
      assert.equal(unauthorized.code, 'UPGRADE_REJECTED');
      assert.equal(unauthorized.answer?.status, 401);
      const dead = await errorFor(errors, d.port);
      assert.equal(dead.code, 'CONNECTION_REFUSED');
      assert.equal(dead.hop, 'tcp');
      const mute = await errorFor(errors, s.port);
      assert.equal(mute.code, 'UPGRADE_TIMEOUT');
      // With credentials it works.
      const ok = await startLocalTunnel(
        { host: '127.0.0.1', port: 0 },
        { url: authBridge.url.replace('ws://', 'ws://u:p@'), onError: (e) => errors.push(e) },
      );
      assert.equal((await exchange(ok.port, 'x')).toString(), 'x');
      await ok.close();
    } finally {
      await Promise.all(tunnels.map((t) => t.close()));
      await authBridge.close();
      silent.close();
      await echo.close();
    }
  });
});

describe('wsvia tunnel -R', () => {
  it('listens on the bridge side, frees the port when the tunnel goes and takes it back when it returns', async () => {
    const answer = await answerAfterEof();
    const bridgePort = await freePort();
    const remotePort = await freePortOutsideEphemeral();
    let bridge = await startBridge({ port: bridgePort, allowReverse: parsePortList(String(remotePort)) });
    const listening: number[] = [];
    const open = () =>
      startReverseTunnel(
        { bind: '127.0.0.1', port: remotePort },
        { host: '127.0.0.1', port: answer.port },
        {
          url: bridge.url,
          ping: 500,
          backoff: { initialDelay: 50, maxDelay: 300 },
          onListening: (_b, p) => listening.push(p),
        },
      );
    let tunnel = open();
    try {
      await until('the reverse port', () => listening.length === 1);
      const got = await exchange(remotePort, 'through the reverse tunnel');
      assert.match(got.toString(), /^bytes=26 sha256=[0-9a-f]{64}\nthrough the reverse tunnel$/);

      // The tunnel goes: the bridge frees the port.
      await tunnel.close();
      await until('the port to be freed', async () => !(await acceptsConnection(remotePort)));

      // The tunnel returns: the bridge takes the port back.
      tunnel = open();
      await until('the port again', () => listening.length === 2);
      assert.match((await exchange(remotePort, 'again')).toString(), /\nagain$/);

      // The bridge restarts: the tunnel reconnects with backoff and the port comes back.
      await bridge.close();
      await until('the port to be freed', async () => !(await acceptsConnection(remotePort)));
      bridge = await startBridge({ port: bridgePort, allowReverse: parsePortList(String(remotePort)) });
      await until('the tunnel to come back', () => listening.length === 3, 15_000);
      assert.match((await exchange(remotePort, 'after restart')).toString(), /\nafter restart$/);
    } finally {
      await tunnel.close();
      await bridge.close();
      await answer.close();
    }
  });

  it('stops for good when the bridge does not allow the port', async () => {
    const bridge = await startBridge({ port: 0, allowReverse: parsePortList('1') });
    try {
      const t = startReverseTunnel(
        { bind: '127.0.0.1', port: 2 },
        { host: '127.0.0.1', port: 3 },
        { url: bridge.url },
      );
      await assert.rejects(
        t.finished,
        (e: WsviaError) => e.code === 'UPGRADE_REJECTED' && e.answer?.status === 403,
      );
    } finally {
      await bridge.close();
    }
  });
});

describe('wsvia tunnel to a wss:// bridge (--tls-cert/--tls-key)', () => {
  it('verifies the bridge against --ca and carries a half-close; an untrusted bridge is a TLS error', async () => {
    const answer = await answerAfterEof();
    const { cert, key } = localhostCert();
    const bridge = await startBridge({
      port: 0,
      target: { host: '127.0.0.1', port: answer.port },
      tls: { cert, key },
    });
    const errors: unknown[] = [];
    const url = bridge.url.replace('127.0.0.1', 'localhost');
    assert.match(url, /^wss:\/\//);
    const trusted = await startLocalTunnel(
      { host: '127.0.0.1', port: 0 },
      { url, connect: { ca: cert }, onError: (e) => errors.push(e) },
    );
    const untrusted = await startLocalTunnel(
      { host: '127.0.0.1', port: 0 },
      { url, onError: (e) => errors.push(e) },
    );
    try {
      assert.match(
        (await exchange(trusted.port, 'secret')).toString(),
        /^bytes=6 sha256=[0-9a-f]{64}\nsecret$/,
      );
      const e = await errorFor(errors, untrusted.port);
      assert.equal(e.code, 'TLS_UNTRUSTED');
      assert.equal(e.hop, 'tls');
    } finally {
      await trusted.close();
      await untrusted.close();
      await bridge.close();
      await answer.close();
    }
  });
});
