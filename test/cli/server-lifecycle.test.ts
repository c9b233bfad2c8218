/**
 * The listener lifecycle every server command shares (src/serve/, src/cli/server-lifecycle.ts), probed as a user
 * would: start-up failures (an access log that cannot be opened, a port or an admin port in use) are one line
 * before "listening" with exit 2 for configuration and 1 otherwise; access-log write errors at run time are
 * counted and reported, never fatal; a drain that cuts a session still logs it, once.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import { runCli } from '../helpers/cli.js';
import { until } from '../helpers/eventually.js';
import { tempDir } from '../helpers/process.js';
import { startServerCli, type RunningServer } from '../helpers/server-cli.js';
import { startTcpEcho, type TcpPeer } from '../helpers/wsvia-proxy.js';

/** The arguments that start each server on `listen` (HOST:PORT) with a target to relay to. */
type Args = (listen: { host: string; port: number }, target: number) => string[];

const SERVERS: Readonly<Record<'proxy' | 'gateway' | 'bridge', Args>> = {
  proxy: (l, t) => [
    '--host',
    l.host,
    '--port',
    String(l.port),
    '--allow-private',
    '--allow-ports',
    String(t),
  ],
  gateway: (l, t) => ['--listen', `${l.host}:${l.port}`, '--route', `/=ws://127.0.0.1:${t}`],
  bridge: (l, t) => ['--listen', `${l.host}:${l.port}`, '--target', `127.0.0.1:${t}`],
};
const ANY = { host: '127.0.0.1', port: 0 };

/** One exchange through each server, ending so that it writes an access-log line. */
const EXCHANGE: Readonly<Record<keyof typeof SERVERS, (s: RunningServer, target: number) => Promise<void>>> =
  {
    proxy: (s, t) => tunnelOnce(s.port, `127.0.0.1:${t}`),
    gateway: (s) => httpGet(`${s.url}/`).then(() => undefined),
    bridge: (s) => wsOnce(s.url),
  };

function oneLine(text: string): void {
  assert.equal(text.trimEnd().split('\n').length, 1, `one line expected, got:\n${text}`);
  assert.doesNotMatch(text, /^\s+at /m, 'no stack trace');
}

function occupiedPort(): Promise<net.Server> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => resolve(s));
  });
}

function portOf(s: net.Server): number {
  return (s.address() as net.AddressInfo).port;
}

/** CONNECT through a proxy, one byte echoed, then a clean close. */
function tunnelOnce(proxyPort: number, target: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.connect(proxyPort, '127.0.0.1');
    let got = '';
    s.on('error', reject);
    s.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
    s.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (/^HTTP\/1\.1 200/.test(got) && got.endsWith('\r\n\r\n')) s.write('x');
      else if (got.endsWith('x')) s.end();
      else if (!/^HTTP\/1\.1 200/.test(got) && got.includes('\r\n\r\n')) reject(new Error(got));
    });
    s.on('close', () => (got.endsWith('x') ? resolve() : reject(new Error(`tunnel failed: ${got}`))));
  });
}

function httpGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

/** A WebSocket that sends a byte, reads its echo and closes. */
function wsOnce(url: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.on('error', reject);
    ws.on('open', () => ws.send(Buffer.from('x')));
    ws.on('message', () => ws.close(1000));
    ws.on('close', () => resolve());
  });
}

/** A tiny WebSocket echo for the gateway's route, and a TCP echo for the proxy and the bridge. */
function wsEcho(): Promise<{ port: number; close(): Promise<void> }> {
  return new Promise((resolve) => {
    const server = http.createServer((_req, res) => res.end('ok'));
    const wss = new WebSocketServer({ server });
    wss.on('connection', (c) => c.on('message', (m, binary) => c.send(m, { binary })));
    server.listen(0, '127.0.0.1', () =>
      resolve({
        port: portOf(server),
        close: () =>
          new Promise<void>((r) => {
            for (const c of wss.clients) c.terminate();
            server.close(() => r());
            server.closeAllConnections();
          }),
      }),
    );
  });
}

function targetFor(name: keyof typeof SERVERS, tcp: TcpPeer, ws: { port: number }): number {
  return name === 'gateway' ? ws.port : tcp.port;
}

describe('server commands: failures at start are one line, before "listening"', () => {
  let busy: net.Server;
  let dir: string;
  before(async () => {
    busy = await occupiedPort();
    dir = tempDir();
  });
  after(() => {
    busy.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  for (const [name, args] of Object.entries(SERVERS)) {
    it(`${name}: an access log in a missing directory is exit 2, one line naming the file`, async () => {
      const file = path.join(dir, 'no-such-dir', 'access.log');
      const r = await runCli([name, ...args(ANY, 9), '--access-log', file]);
      assert.equal(r.code, 2, r.stderr);
      assert.doesNotMatch(r.stdout, /listening/);
      oneLine(r.stderr);
      assert.ok(r.stderr.includes(file), r.stderr);
    });

    it(`${name}: its port in use is exit 1, one line, nothing announced`, async () => {
      const r = await runCli([name, ...args({ host: '127.0.0.1', port: portOf(busy) }, 9)]);
      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.stdout, '');
      oneLine(r.stderr);
      assert.match(r.stderr, new RegExp(`127\\.0\\.0\\.1:${portOf(busy)}.*in use.*LISTEN_FAILED`));
    });

    it(`${name}: its admin port in use is exit 1, one line, nothing announced, nothing left serving`, async () => {
      const r = await runCli([name, ...args(ANY, 9), '--admin', `127.0.0.1:${portOf(busy)}`], {
        timeoutMs: 10_000,
      });
      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.stdout, '');
      oneLine(r.stderr);
      assert.match(r.stderr, /admin.*in use/);
    });
  }

  for (const name of ['proxy', 'gateway'] as const) {
    it(`${name} --workers 2: its port or admin port in use is exit 1, one line from the primary`, async () => {
      for (const extra of [
        SERVERS[name]({ host: '127.0.0.1', port: portOf(busy) }, 9),
        [...SERVERS[name](ANY, 9), '--admin', `127.0.0.1:${portOf(busy)}`],
      ]) {
        const r = await runCli([name, '--workers', '2', ...extra]);
        assert.equal(r.code, 1, r.stderr);
        assert.equal(r.stdout, '');
        oneLine(r.stderr);
        assert.match(r.stderr, /in use.*LISTEN_FAILED/);
      }
    });
  }

  it('every server: a certificate that is not PEM is exit 2, one line, before listening', async () => {
    const bad = path.join(dir, 'bad.pem');
    fs.writeFileSync(bad, 'not a certificate\n');
    for (const argv of [
      ['proxy', ...SERVERS.proxy(ANY, 9), '--tls-cert', bad, '--tls-key', bad],
      ['bridge', ...SERVERS.bridge(ANY, 9), '--tls-cert', bad, '--tls-key', bad],
      [
        'gateway',
        ...SERVERS.gateway(ANY, 9),
        '--tls-listen',
        '127.0.0.1:0',
        '--tls-cert',
        bad,
        '--tls-key',
        bad,
      ],
      ['echo', '--port', '0', '--cert', bad, '--key', bad],
    ]) {
      const r = await runCli(argv);
      assert.equal(r.code, 2, `${argv[0]}: ${r.stderr}`);
      assert.equal(r.stdout, '');
      oneLine(r.stderr);
      assert.match(r.stderr, /cannot be used.*CONFIG_INVALID/);
    }
  });

  it('echo: its port in use is exit 1, one line', async () => {
    const r = await runCli(['echo', '--port', String(portOf(busy))]);
    assert.equal(r.code, 1, r.stderr);
    oneLine(r.stderr);
    assert.match(r.stderr, /in use/);
  });
});

describe('server commands: access-log write errors are counted, never fatal', () => {
  let tcp: TcpPeer;
  let ws: { port: number; close(): Promise<void> };
  before(async () => {
    tcp = await startTcpEcho();
    ws = await wsEcho();
  });
  after(async () => {
    await tcp.close();
    await ws.close();
  });

  for (const name of Object.keys(SERVERS) as (keyof typeof SERVERS)[]) {
    it(`${name} --access-log /dev/full: serves a second request and counts the errors in /metrics`, async () => {
      const target = targetFor(name, tcp, ws);
      const s = await startServerCli(name, [
        ...SERVERS[name](ANY, target),
        '--access-log',
        '/dev/full',
        '--admin',
        '127.0.0.1:0',
      ]);
      try {
        await EXCHANGE[name](s, target);
        await until('the write error', () => /access log.*ENOSPC/.test(s.stderr()));
        await EXCHANGE[name](s, target);
        const admin = /(http:\/\/127\.0\.0\.1:\d+)/.exec((s.stderr() + s.stdout()).replace(s.url, ''))?.[1];
        assert.ok(admin, `admin address printed: ${s.stderr()}`);
        await until('both lines counted', async () => {
          const m = /^wsvia_access_log_errors_total (\d+)$/m.exec((await httpGet(`${admin}/metrics`)).body);
          return Number(m?.[1]) >= 2;
        });
        assert.equal(s.stderr().match(/write failed/g)?.length, 1, 'reported once');
        assert.equal(s.process.exitCode, null, 'still running');
      } finally {
        await s.stop();
      }
    });

    it(`${name} --access-log - survives its stdout reader going away (EPIPE)`, async () => {
      const target = targetFor(name, tcp, ws);
      const s = await startServerCli(name, [...SERVERS[name](ANY, target), '--access-log', '-']);
      try {
        s.process.stdout?.destroy();
        await EXCHANGE[name](s, target);
        await EXCHANGE[name](s, target);
        await until('the EPIPE report', () => /access log stdout: write failed \(EPIPE\)/.test(s.stderr()));
        await EXCHANGE[name](s, target);
        assert.equal(s.process.exitCode, null, 'still running');
      } finally {
        await s.stop();
      }
    });
  }
});

describe('server commands: a session cut by the drain timeout is logged once', () => {
  let tcp: TcpPeer;
  let dir: string;
  before(async () => {
    tcp = await startTcpEcho();
    dir = tempDir();
  });
  after(async () => {
    await tcp.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('proxy: SIGTERM with --drain-timeout 0.2 and a tunnel open writes exactly one line for it (close drain)', async () => {
    const log = path.join(dir, 'proxy.log');
    const s = await startServerCli('proxy', [
      ...SERVERS.proxy(ANY, tcp.port),
      '--access-log',
      log,
      '--drain-timeout',
      '0.2',
    ]);
    const client = net.connect(s.port, '127.0.0.1');
    client.on('error', () => {});
    client.write(`CONNECT 127.0.0.1:${tcp.port} HTTP/1.1\r\nHost: x\r\n\r\n`);
    await new Promise((r) => client.once('data', r));
    s.process.kill('SIGTERM');
    assert.equal(await s.exited, 0);
    const lines = fs.readFileSync(log, 'utf8').trim().split('\n').filter(Boolean);
    assert.equal(lines.length, 1, lines.join('\n'));
    const line = JSON.parse(lines[0] as string) as Record<string, unknown>;
    assert.equal(line['target'], `127.0.0.1:${tcp.port}`);
    assert.equal(line['close'], 'drain');
    client.destroy();
  });

  it('bridge: SIGTERM with --drain-timeout 0.2 and a peer that ignores the 1001 writes exactly one line (close drain)', async () => {
    const log = path.join(dir, 'bridge.log');
    const s = await startServerCli('bridge', [
      ...SERVERS.bridge(ANY, tcp.port),
      '--access-log',
      log,
      '--drain-timeout',
      '0.2',
    ]);
    const ws = new WebSocket(s.url);
    ws.on('error', () => {});
    await new Promise((r) => ws.once('open', r));
    // A peer that never reads answers no close: only the drain timeout ends its session.
    (ws as unknown as { _socket: net.Socket })._socket.pause();
    s.process.kill('SIGTERM');
    assert.equal(await s.exited, 0);
    const lines = fs.readFileSync(log, 'utf8').trim().split('\n').filter(Boolean);
    assert.equal(lines.length, 1, lines.join('\n'));
    const line = JSON.parse(lines[0] as string) as Record<string, unknown>;
    assert.equal(line['status'], 101);
    assert.equal(line['close'], 'drain');
    ws.terminate();
  });

  it('gateway: SIGTERM with --drain-timeout 0.3 and a peer that ignores the 1001 writes exactly one line (close drain)', async () => {
    const upstream = await wsEcho();
    const log = path.join(dir, 'gateway.log');
    const s = await startServerCli('gateway', [
      ...SERVERS.gateway(ANY, upstream.port),
      '--access-log',
      log,
      '--drain-timeout',
      '0.3',
      '--drain-spread',
      '0',
    ]);
    try {
      const ws = new WebSocket(s.url.replace('http:', 'ws:'));
      ws.on('error', () => {});
      await new Promise((r) => ws.once('open', r));
      (ws as unknown as { _socket: net.Socket })._socket.pause();
      s.process.kill('SIGTERM');
      assert.equal(await s.exited, 0);
      const lines = fs.readFileSync(log, 'utf8').trim().split('\n').filter(Boolean);
      assert.equal(lines.length, 1, lines.join('\n'));
      const line = JSON.parse(lines[0] as string) as Record<string, unknown>;
      assert.equal(line['status'], 101);
      assert.equal(line['close'], 'drain');
      ws.terminate();
    } finally {
      await upstream.close();
    }
  });
});
