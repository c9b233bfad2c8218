/**
 * The bridge and the tunnel with the peers their users meet: websockify (Debian's package) as the server of
 * `wsvia tunnel`, squid with Basic auth between the tunnel and the bridge, and both commands run as a user would.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startBridge, type Bridge } from '../../src/bridge/server.js';
import { startLocalTunnel, startReverseTunnel, type LocalTunnel } from '../../src/bridge/tunnel.js';
import { parsePortList } from '../../src/route/destination.js';
import { spawn } from 'node:child_process';
import { runCli, WSVIA } from '../helpers/cli.js';
import { startBridgeCli, type RunningBridge } from '../helpers/bridge-cli.js';
import {
  acceptsConnection,
  freePort,
  startPeer,
  type Peer,
  type RunningProxy,
  freePortOutsideEphemeral,
} from '../helpers/process.js';
import { startMicrosocks } from '../helpers/socks-peers.js';
import { startSquid } from '../helpers/squid.js';
import { answerAfterEof, exchange, sha256, tcpEcho, type TcpServer } from '../bridge/tcp-servers.js';
import { until } from '../helpers/eventually.js';

describe('wsvia tunnel against websockify', () => {
  let echo: TcpServer;
  let websockify: Peer;
  let url: string;
  let tunnel: LocalTunnel;
  const notes: string[] = [];
  const errors: unknown[] = [];

  before(async () => {
    echo = await tcpEcho();
    const port = await freePort();
    websockify = await startPeer('websockify', [`127.0.0.1:${port}`, `127.0.0.1:${echo.port}`], { port });
    url = `ws://127.0.0.1:${port}/`;
    tunnel = await startLocalTunnel(
      { host: '127.0.0.1', port: 0 },
      { url, linger: 300, onNote: (t) => notes.push(t), onError: (e) => errors.push(e) },
    );
  });
  after(async () => {
    await tunnel.close();
    await websockify.stop();
    await echo.close();
  });

  it('carries bytes both ways in plain binary frames, and says that a half-close cannot be carried', async () => {
    assert.equal((await exchange(tunnel.port, 'hello websockify')).toString(), 'hello websockify');
    assert.ok(
      notes.some((n) => /chose subprotocol "binary"/.test(n) && /no half-close/.test(n)),
      notes.join('\n'),
    );
    assert.ok(
      notes.some((n) => /cannot carry a half-close/.test(n)),
      notes.join('\n'),
    );
    assert.deepEqual(errors, []);
  });

  it('carries 1 MiB byte for byte', async () => {
    const data = randomBytes(1024 * 1024);
    const got = await exchange(tunnel.port, data);
    assert.equal(got.length, data.length);
    assert.equal(sha256(got), sha256(data));
  });

  it('works as an ssh ProxyCommand would run it: --stdio, with the note in --trace', async () => {
    const r = await runCli(['tunnel', '--stdio', url, '--trace', '--linger', '0.3'], {
      input: 'over stdio\n',
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'over stdio\n');
    assert.match(r.stderr, /Sec-WebSocket-Protocol: binary/);
    assert.match(r.stderr, /no half-close/);
  });
});

describe('wsvia tunnel through squid to wsvia bridge', () => {
  let answer: TcpServer;
  let squid: RunningProxy;
  let bridge: Bridge;

  before(async () => {
    [answer, squid] = await Promise.all([
      answerAfterEof(),
      startSquid({ auth: 'basic', users: { alice: 'wonder land' } }),
    ]);
    bridge = await startBridge({ port: 0, target: { host: '127.0.0.1', port: answer.port } });
  });
  after(async () => {
    await bridge.close();
    await Promise.all([squid.stop(), answer.close()]);
  });

  it('-L through squid with Basic auth: half-close and the whole answer, 1 MiB byte for byte', async () => {
    const errors: unknown[] = [];
    const t = await startLocalTunnel(
      { host: '127.0.0.1', port: 0 },
      {
        url: bridge.url,
        connect: { proxy: squid.url, proxyAuth: 'alice:wonder land' },
        onError: (e) => errors.push(e),
      },
    );
    try {
      const data = randomBytes(1024 * 1024);
      const got = await exchange(t.port, data);
      const nl = got.indexOf(10);
      assert.equal(got.subarray(0, nl).toString(), `bytes=${data.length} sha256=${sha256(data)}`);
      assert.ok(got.subarray(nl + 1).equals(data));
      assert.deepEqual(errors, []);
      for (let i = 0; i < 100 && !squid.log().includes(`CONNECT 127.0.0.1:${bridge.port}`); i++)
        await new Promise((r) => setTimeout(r, 50));
      assert.match(squid.log(), new RegExp(`CONNECT 127\\.0\\.0\\.1:${bridge.port}`));
    } finally {
      await t.close();
    }
  });

  it('-R from behind squid: the control and data connections go out through the proxy', async () => {
    const remotePort = await freePortOutsideEphemeral();
    const rb = await startBridge({ port: 0, allowReverse: parsePortList(String(remotePort)) });
    const listening: number[] = [];
    const t = startReverseTunnel(
      { bind: '127.0.0.1', port: remotePort },
      { host: '127.0.0.1', port: answer.port },
      {
        url: rb.url,
        connect: { proxy: squid.url, proxyAuth: 'alice:wonder land' },
        onListening: (_b, p) => listening.push(p),
      },
    );
    try {
      await until('the reverse port', () => listening.length === 1);
      assert.match((await exchange(remotePort, 'from outside')).toString(), /\nfrom outside$/);
      await until(
        'squid to log the tunnels',
        () => squid.log().split(`CONNECT 127.0.0.1:${rb.port}`).length > 2,
      );
    } finally {
      await t.close();
      await rb.close();
    }
  });

  it('--stdio through squid; without credentials the error names the proxy and its 407', async () => {
    const ok = await runCli(['tunnel', '--stdio', bridge.url, '-x', squid.url, '-U', 'alice:wonder land'], {
      input: 'through squid',
    });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /^bytes=13 sha256=[0-9a-f]{64}\nthrough squid$/);
    const denied = await runCli(['tunnel', '--stdio', bridge.url, '-x', squid.url], { input: 'x' });
    assert.equal(denied.code, 4);
    assert.match(denied.stderr, /407/);
    assert.match(denied.stderr, /hop proxy/);
  });
});

describe('wsvia tunnel through SOCKS to wsvia bridge', () => {
  let answer: TcpServer;
  let socks: RunningProxy;
  let bridge: Bridge;

  before(async () => {
    [answer, socks] = await Promise.all([answerAfterEof(), startMicrosocks()]);
    bridge = await startBridge({ port: 0, target: { host: '127.0.0.1', port: answer.port } });
  });
  after(async () => {
    await bridge.close();
    await Promise.all([socks.stop(), answer.close()]);
  });

  it('-L through socks5h (the name resolved at the proxy): half-close and the whole answer, byte for byte', async () => {
    const errors: unknown[] = [];
    const t = await startLocalTunnel(
      { host: '127.0.0.1', port: 0 },
      {
        url: bridge.url.replace('127.0.0.1', 'localhost'),
        connect: { proxy: `socks5h://127.0.0.1:${socks.port}` },
        onError: (e) => errors.push(e),
      },
    );
    try {
      const data = randomBytes(256 * 1024);
      const got = await exchange(t.port, data);
      const nl = got.indexOf(10);
      assert.equal(got.subarray(0, nl).toString(), `bytes=${data.length} sha256=${sha256(data)}`);
      assert.ok(got.subarray(nl + 1).equals(data));
      assert.deepEqual(errors, []);
    } finally {
      await t.close();
    }
  });

  it('--stdio with the CLI: -x socks5h://, --trace names the SOCKS step', async () => {
    const r = await runCli(
      ['tunnel', '--stdio', bridge.url, '-x', `socks5h://127.0.0.1:${socks.port}`, '--trace'],
      {
        input: 'through socks',
      },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^bytes=13 sha256=[0-9a-f]{64}\nthrough socks$/);
    assert.match(r.stderr, /socks5h/);
  });
});

describe('the wsvia bridge and wsvia tunnel commands', () => {
  let answer: TcpServer;
  let bridge: RunningBridge;

  before(async () => {
    answer = await answerAfterEof();
    bridge = await startBridgeCli([
      '--listen',
      '127.0.0.1:0',
      '--target',
      `127.0.0.1:${answer.port}`,
      '--access-log',
      '-',
    ]);
  });
  after(async () => {
    await bridge.stop();
    await answer.close();
  });

  it('bridge prints its URL; tunnel --stdio half-closes and gets the whole answer; the session is logged', async () => {
    const r = await runCli(['tunnel', '--stdio', bridge.url], { input: 'request' });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^bytes=7 sha256=[0-9a-f]{64}\nrequest$/);
    for (let i = 0; i < 100 && !bridge.output().includes('"status":101'); i++)
      await new Promise((res) => setTimeout(res, 50));
    const line = bridge
      .output()
      .split('\n')
      .find((l) => l.includes('"status":101'));
    assert.ok(line, bridge.output());
    const rec = JSON.parse(line) as Record<string, unknown>;
    assert.equal(rec['bytes_up'], 7);
    assert.equal(rec['close'], 'upstream_closed');
  });

  it("tunnel --stdio to a target the bridge does not allow: exit 3 and the bridge's reason", async () => {
    const r = await runCli(['tunnel', '--stdio', bridge.url, '--target', '169.254.169.254:80'], {
      input: '',
    });
    // A bridge's 403 is a refusal, exit 3, as a proxy's is (issue 13: one exit-code table).
    assert.equal(r.code, 3);
    assert.match(r.stderr, /403 Forbidden/);
    assert.match(r.stderr, /does not let clients choose targets/);
  });

  it('tunnel -R: the bridge listens while the tunnel process lives, frees the port when it is killed, takes it back', async () => {
    const remotePort = await freePortOutsideEphemeral();
    const rb = await startBridgeCli([
      '--listen',
      '127.0.0.1:0',
      '--allow-reverse',
      String(remotePort),
      '--ping',
      '1',
    ]);
    const startTunnel = () => {
      const child = spawn(
        process.execPath,
        [WSVIA, 'tunnel', '-R', `${remotePort}:127.0.0.1:${answer.port}`, rb.url],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      return { child, out: () => out };
    };
    let t = startTunnel();
    try {
      await until('the reverse port', () => t.out().includes(`bridge listens on 127.0.0.1:${remotePort}`));
      assert.match((await exchange(remotePort, 'reverse')).toString(), /\nreverse$/);
      t.child.kill('SIGKILL');
      await until('the port to be freed', async () => !(await acceptsConnection(remotePort)));
      t = startTunnel();
      await until('the reverse port again', () =>
        t.out().includes(`bridge listens on 127.0.0.1:${remotePort}`),
      );
      assert.match((await exchange(remotePort, 'back')).toString(), /\nback$/);
    } finally {
      t.child.kill('SIGTERM');
      await rb.stop();
    }
  });

  it('refuses a bad command line with usage', async () => {
    const r = await runCli(['tunnel', '-L', '8080', '--stdio', 'ws://x']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /-L and\/or -R \(each repeatable\), or --stdio alone/);
    const b = await runCli(['bridge', '--listen', '127.0.0.1:0']);
    assert.equal(b.code, 2);
    assert.match(b.stderr, /nothing to bridge to/);
  });
});
