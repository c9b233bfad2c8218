/**
 * The access log every server writes (docs/access-log.md), read as a user reads it: `wsvia proxy|gateway|bridge
 * --access-log -` with stdout piped, one success and one refusal each. stdout carries JSON lines and nothing else
 * (the "listening on" line is on stderr); every line, whichever server wrote it, has the same keys.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import { ACCESS_LOG_KEYS } from '../../src/observe/access-log.js';
import { until } from '../helpers/eventually.js';
import { freePort } from '../helpers/process.js';
import { startServerCli, type RunningServer } from '../helpers/server-cli.js';
import { startTcpEcho, type TcpPeer } from '../helpers/wsvia-proxy.js';

type Line = Record<string, unknown>;

/** Every stdout line parsed as JSON: a line that is not JSON fails the test. */
function stdoutLines(s: RunningServer): Line[] {
  return s
    .stdout()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      try {
        return JSON.parse(l) as Line;
      } catch {
        throw new Error(`stdout has a line that is not JSON: ${l}`);
      }
    });
}

/** The lines once `n` were written and the server stopped; stderr said where it listened. */
async function linesOf(s: RunningServer, n: number): Promise<Line[]> {
  await until(`${n} access-log lines`, () => stdoutLines(s).length >= n);
  await s.stop();
  assert.match(s.stderr(), /listening on/);
  const lines = stdoutLines(s);
  assert.equal(lines.length, n, s.stdout());
  for (const l of lines) {
    assert.deepEqual(Object.keys(l), [...ACCESS_LOG_KEYS], JSON.stringify(l));
    assert.match(l['time'] as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.ok(Number.isInteger(l['duration_ms']) && (l['duration_ms'] as number) >= 0);
  }
  return lines;
}

/** A line without the facts that vary from run to run (time, duration). */
function facts(l: Line | undefined): Line {
  const { time: _t, duration_ms: _d, ...rest } = l ?? {};
  return rest;
}

/** Sends `CONNECT target`, then one byte through the tunnel when it opens; resolves with the status and the port. */
function connectOnce(
  proxyPort: number,
  target: string,
  credentials?: string,
): Promise<{ status: number; localPort: number }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(proxyPort, '127.0.0.1');
    let got = '';
    let localPort = 0;
    s.once('connect', () => (localPort = s.localPort ?? 0));
    s.on('error', reject);
    const auth = credentials
      ? `Proxy-Authorization: Basic ${Buffer.from(credentials).toString('base64')}\r\n`
      : '';
    s.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n${auth}\r\n`);
    s.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      const head = got.indexOf('\r\n\r\n');
      if (head < 0) return;
      const status = Number(got.slice(9, 12));
      if (status === 200 && got.length === head + 4) return void s.write('x');
      s.end();
    });
    s.on('close', () => resolve({ status: Number(got.slice(9, 12)), localPort }));
  });
}

/** Opens a WebSocket, sends one byte, reads the echo, closes with 1000; resolves with its local port. */
async function wsOnce(url: string): Promise<number> {
  const ws = new WebSocket(url);
  ws.on('error', () => {});
  await once(ws, 'open');
  const port = (ws as unknown as { _socket: net.Socket })._socket.localPort ?? 0;
  ws.send(Buffer.from('x'));
  await once(ws, 'message');
  ws.close(1000);
  await once(ws, 'close');
  return port;
}

/** An upgrade the server refuses: resolves with the status it answered. */
function refusedUpgrade(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.on('unexpected-response', (_req, res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.on('error', () => {});
    ws.on('open', () => reject(new Error('the upgrade was accepted')));
  });
}

function wsEcho(): Promise<{ port: number; close(): Promise<void> }> {
  return new Promise((resolve) => {
    const server = http.createServer((_req, res) => res.end('ok'));
    const wss = new WebSocketServer({ server });
    wss.on('connection', (c) => c.on('message', (m, binary) => c.send(m, { binary })));
    server.listen(0, '127.0.0.1', () =>
      resolve({
        port: (server.address() as net.AddressInfo).port,
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

describe('access log: one schema for every server, JSON lines alone on stdout with --access-log -', () => {
  let tcp: TcpPeer;
  let upstream: { port: number; close(): Promise<void> };
  const keySets = new Map<string, string[]>();
  const started: RunningServer[] = [];
  const start = async (command: string, args: string[]): Promise<RunningServer> => {
    const s = await startServerCli(command, args);
    started.push(s);
    return s;
  };
  let closedPort: number;
  before(async () => {
    tcp = await startTcpEcho();
    upstream = await wsEcho();
    closedPort = await freePort();
  });
  after(async () => {
    await Promise.all(started.map((s) => s.stop()));
    await tcp.close();
    await upstream.close();
  });

  it('proxy: a tunnel and a 403 (a port not allowed), each one line with every key', async () => {
    const s = await start('proxy', [
      ...['--port', '0', '--allow-private', '--allow-ports', String(tcp.port), '--access-log', '-'],
    ]);
    const ok = await connectOnce(s.port, `127.0.0.1:${tcp.port}`);
    assert.equal(ok.status, 200);
    await until('the tunnel logged', () => stdoutLines(s).length === 1);
    const no = await connectOnce(s.port, '127.0.0.1:1');
    assert.equal(no.status, 403);
    const [tunnel, refused] = await linesOf(s, 2);
    assert.deepEqual(facts(tunnel), {
      client: `127.0.0.1:${ok.localPort}`,
      user: null,
      method: 'CONNECT',
      target: `127.0.0.1:${tcp.port}`,
      status: 200,
      bytes_up: 1,
      bytes_down: 1,
      close: 'client_closed',
      close_code: null,
      error: null,
    });
    assert.deepEqual(facts(refused), {
      client: `127.0.0.1:${no.localPort}`,
      user: null,
      method: 'CONNECT',
      target: '127.0.0.1:1',
      status: 403,
      bytes_up: 0,
      bytes_down: 0,
      close: 'refused',
      close_code: null,
      error: 'destination_ip_prohibited',
    });
    keySets.set('proxy', Object.keys(tunnel ?? {}));
  });

  it('proxy with --auth: a tunnel names its user; a 407 (no credentials) is a refusal without one', async () => {
    const s = await start('proxy', [
      ...['--port', '0', '--auth', 'alice:s3cret', '--allow-private', '--allow-ports', String(tcp.port)],
      ...['--access-log', '-'],
    ]);
    const target = `127.0.0.1:${tcp.port}`;
    assert.equal((await connectOnce(s.port, target, 'alice:s3cret')).status, 200);
    await until('the tunnel logged', () => stdoutLines(s).length === 1);
    assert.equal((await connectOnce(s.port, target)).status, 407);
    const [tunnel, refused] = await linesOf(s, 2);
    assert.equal(tunnel?.['user'], 'alice');
    assert.equal(tunnel?.['status'], 200);
    assert.deepEqual(facts({ ...refused, client: 'c' }), {
      client: 'c',
      user: null,
      method: 'CONNECT',
      target,
      status: 407,
      bytes_up: 0,
      bytes_down: 0,
      close: 'refused',
      close_code: null,
      error: 'http_request_denied',
    });
    assert.doesNotMatch(s.stdout(), /s3cret|YWxpY2U6czNjcmV0/);
  });

  it('gateway: a WebSocket, a 404 (no route) and a 502 (upstream down), each one line with every key', async () => {
    const s = await start('gateway', [
      ...['--listen', '127.0.0.1:0', '--route', `/chat=ws://127.0.0.1:${upstream.port}`],
      ...['--route', `/dead=ws://127.0.0.1:${closedPort}`, '--access-log', '-'],
    ]);
    const wsUrl = s.url.replace('http:', 'ws:');
    const port = await wsOnce(`${wsUrl}/chat/room?token=secret`);
    await until('the WebSocket logged', () => stdoutLines(s).length === 1);
    assert.equal(await refusedUpgrade(`${wsUrl}/elsewhere?token=secret`), 404);
    await until('the 404 logged', () => stdoutLines(s).length === 2);
    assert.equal(await refusedUpgrade(`${wsUrl}/dead/x`), 502);
    const [session, refused, unavailable] = await linesOf(s, 3);
    const { bytes_up: up, bytes_down: down, ...rest } = facts(session);
    assert.deepEqual(rest, {
      client: `127.0.0.1:${port}`,
      user: null,
      method: 'GET',
      target: `ws://127.0.0.1:${upstream.port}/chat/room`,
      status: 101,
      close: 'client_closed',
      close_code: 1000,
      error: null,
    });
    // Frames as they crossed: a masked 1-byte message and a close each way.
    assert.ok((up as number) > 1 && (down as number) > 1, JSON.stringify(session));
    assert.match(refused?.['client'] as string, /^127\.0\.0\.1:\d+$/);
    assert.deepEqual(facts({ ...refused, client: 'c' }), {
      client: 'c',
      user: null,
      method: 'GET',
      target: '/elsewhere',
      status: 404,
      bytes_up: 0,
      bytes_down: 0,
      close: 'refused',
      close_code: null,
      error: 'no_route',
    });
    assert.deepEqual(facts({ ...unavailable, client: 'c' }), {
      client: 'c',
      user: null,
      method: 'GET',
      target: '/dead/x',
      status: 502,
      bytes_up: 0,
      bytes_down: 0,
      close: 'refused',
      close_code: null,
      error: 'upstream_unavailable',
    });
    keySets.set('gateway', Object.keys(session ?? {}));
  });

  it('bridge: a session and a 404 (a token, and no token file), each one line with every key, the token hidden', async () => {
    const s = await start('bridge', [
      ...['--listen', '127.0.0.1:0', '--target', `127.0.0.1:${tcp.port}`, '--access-log', '-'],
    ]);
    const port = await wsOnce(s.url);
    await until('the session logged', () => stdoutLines(s).length === 1);
    assert.equal(await refusedUpgrade(`${s.url}/?token=secret`), 404);
    const [session, refused] = await linesOf(s, 2);
    assert.deepEqual(facts(session), {
      client: `127.0.0.1:${port}`,
      user: null,
      method: 'GET',
      target: `127.0.0.1:${tcp.port}`,
      status: 101,
      bytes_up: 1,
      bytes_down: 1,
      close: 'client_closed',
      close_code: 1000,
      error: null,
    });
    assert.match(refused?.['client'] as string, /^127\.0\.0\.1:\d+$/);
    assert.deepEqual(facts({ ...refused, client: 'c' }), {
      client: 'c',
      user: null,
      method: 'GET',
      target: '/?token=***',
      status: 404,
      bytes_up: 0,
      bytes_down: 0,
      close: 'refused',
      close_code: null,
      error: 'token',
    });
    keySets.set('bridge', Object.keys(session ?? {}));
  });

  it('every server writes the same keys', () => {
    assert.deepEqual([...keySets.keys()].sort(), ['bridge', 'gateway', 'proxy']);
    for (const [name, keys] of keySets) assert.deepEqual(keys, keySets.get('proxy'), name);
  });
});
