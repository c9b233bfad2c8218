import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { parseTargetRule } from '../../src/bridge/allow-target.js';
import { startAdmin } from '../../src/bridge/admin.js';
import { startBridge, type Bridge } from '../../src/bridge/server.js';
import { StaticUsers } from '../../src/auth/server-auth.js';
import { AccessLog } from '../../src/observe/access-log.js';
import { tempDir } from '../helpers/process.js';
import { namedServer, tcpEcho, type TcpServer } from './tcp-servers.js';

type Message = { data: Buffer; binary: boolean };
const queues = new WeakMap<WebSocket, { queue: Message[]; waiting: ((m: Message) => void)[] }>();

interface Opened {
  ws: WebSocket;
  protocol: string;
}

/** Opens a WebSocket; resolves with it, or rejects with the refusal's status and body. */
function open(
  url: string,
  options: { protocols?: string[]; headers?: Record<string, string>; origin?: string } = {},
): Promise<Opened> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, options.protocols ?? [], {
      ...(options.headers ? { headers: options.headers } : {}),
      ...(options.origin ? { origin: options.origin } : {}),
    });
    // Messages can arrive in the same read as the 101: queue them from the start.
    const queue: { data: Buffer; binary: boolean }[] = [];
    const waiting: ((m: { data: Buffer; binary: boolean }) => void)[] = [];
    ws.on('message', (data: Buffer, binary: boolean) => {
      const w = waiting.shift();
      if (w) w({ data, binary });
      else queue.push({ data, binary });
    });
    queues.set(ws, { queue, waiting });
    ws.once('open', () => resolve({ ws, protocol: ws.protocol }));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () =>
        reject(
          Object.assign(new Error(`${res.statusCode} ${body.trim()}`), {
            status: res.statusCode,
            body,
            headers: res.headers,
          }),
        ),
      );
    });
    ws.once('error', reject);
  });
}

function nextMessage(ws: WebSocket): Promise<{ data: Buffer; binary: boolean }> {
  const q = queues.get(ws);
  if (!q) throw new Error('not opened by open()');
  const m = q.queue.shift();
  if (m) return Promise.resolve(m);
  return new Promise((resolve) => q.waiting.push(resolve));
}

function closed(ws: WebSocket): Promise<number> {
  if (ws.readyState === ws.CLOSED) return Promise.resolve(0);
  return new Promise((resolve) => ws.once('close', (code: number) => resolve(code)));
}

async function refusal(
  p: Promise<Opened>,
): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  try {
    const o = await p;
    o.ws.close();
  } catch (e) {
    return e as { status: number; body: string; headers: http.IncomingHttpHeaders };
  }
  throw new Error('the upgrade was accepted');
}

describe('wsvia bridge', () => {
  let echo: TcpServer;
  let alpha: TcpServer;
  let beta: TcpServer;
  let dir: string;
  let tokenPath: string;
  let logPath: string;
  let bridge: Bridge;

  before(async () => {
    [echo, alpha, beta] = await Promise.all([tcpEcho(), namedServer('alpha'), namedServer('beta')]);
    dir = tempDir();
    tokenPath = path.join(dir, 'tokens');
    logPath = path.join(dir, 'access.log');
    fs.mkdirSync(path.join(dir, 'rec'));
    fs.writeFileSync(tokenPath, `# tokens\nalpha: 127.0.0.1:${alpha.port}\n`);
    bridge = await startBridge({
      port: 0,
      target: { host: '127.0.0.1', port: echo.port },
      routes: new Map([['/beta', { host: '127.0.0.1', port: beta.port }]]),
      tokenFile: tokenPath,
      allowTargets: [parseTargetRule(`127.0.0.1:${alpha.port}`), parseTargetRule(`localhost:${beta.port}`)],
      accessLog: AccessLog.open(logPath),
      record: path.join(dir, 'rec'),
    });
  });
  after(async () => {
    await bridge.close();
    await Promise.all([echo.close(), alpha.close(), beta.close()]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('carries binary frames both ways with the binary subprotocol, and text frames as bytes', async () => {
    const { ws, protocol } = await open(bridge.url, { protocols: ['binary'] });
    assert.equal(protocol, 'binary');
    ws.send(Buffer.from([0, 1, 2, 255]));
    const m = await nextMessage(ws);
    assert.deepEqual([...m.data], [0, 1, 2, 255]);
    assert.equal(m.binary, true);
    ws.send('héllo');
    const t = await nextMessage(ws);
    assert.equal(t.binary, true);
    assert.equal(t.data.toString('utf8'), 'héllo');
    ws.close(1000);
    await closed(ws);
  });

  it('accepts no subprotocol, and refuses offers that are neither binary nor wsvia.tunnel.v1', async () => {
    const { ws, protocol } = await open(bridge.url);
    assert.equal(protocol, '');
    ws.close();
    const r = await refusal(open(bridge.url, { protocols: ['base64'] }));
    assert.equal(r.status, 400);
    assert.match(r.body, /base64/);
  });

  it('routes by path, by token and by client choice within --allow-target', async () => {
    const first = async (url: string): Promise<string> => {
      const { ws } = await open(url);
      const m = await nextMessage(ws);
      await closed(ws);
      return m.data.toString();
    };
    assert.equal(await first(`${bridge.url}/beta`), 'beta\n');
    assert.equal(await first(`${bridge.url}/?token=alpha`), 'alpha\n');
    assert.equal(await first(`${bridge.url}/?target=127.0.0.1:${alpha.port}`), 'alpha\n');
  });

  it('refuses unknown tokens, then follows the token file when it changes', async () => {
    const r = await refusal(open(`${bridge.url}/?token=beta`));
    assert.equal(r.status, 404);
    assert.match(r.body, /unknown token/);
    fs.writeFileSync(tokenPath, `beta: 127.0.0.1:${beta.port}\n# alpha withdrawn\n`);
    const { ws } = await open(`${bridge.url}/?token=beta`);
    assert.equal((await nextMessage(ws)).data.toString(), 'beta\n');
    assert.equal((await refusal(open(`${bridge.url}/?token=alpha`))).status, 404);
    // websockify also takes the token from a cookie.
    const viaCookie = await open(bridge.url, { headers: { Cookie: 'theme=dark; token=beta' } });
    assert.equal((await nextMessage(viaCookie.ws)).data.toString(), 'beta\n');
  });

  it('refuses denied targets before any TCP connection, with the rule that denied', async () => {
    const before = beta.accepted;
    // A name rule does not open loopback (SSRF default).
    const byName = await refusal(open(`${bridge.url}/?target=localhost:${beta.port}`));
    assert.equal(byName.status, 403);
    assert.match(byName.body, /loopback address, denied by default/);
    const unlisted = await refusal(open(`${bridge.url}/?target=127.0.0.1:${beta.port}`));
    assert.equal(unlisted.status, 403);
    assert.match(unlisted.body, /matches no --allow-target rule/);
    const meta = await refusal(open(`${bridge.url}/?target=169.254.169.254:80`));
    assert.equal(meta.status, 403);
    const bad = await refusal(open(`${bridge.url}/?target=not%20a%20host`));
    assert.equal(bad.status, 400);
    assert.equal(beta.accepted, before);
  });

  it('answers 502 with the reason when the target refuses', async () => {
    const dead = await tcpEcho();
    await dead.close();
    const b = await startBridge({ port: 0, target: { host: '127.0.0.1', port: dead.port } });
    try {
      const r = await refusal(open(b.url));
      assert.equal(r.status, 502);
      assert.match(r.body, /refused the connection/);
    } finally {
      await b.close();
    }
  });

  it('logs each session as JSON and records its bytes', async () => {
    const { ws } = await open(bridge.url, { protocols: ['binary'] });
    ws.send(Buffer.from('recorded'));
    await nextMessage(ws);
    ws.close(1000);
    await closed(ws);
    let line: Record<string, unknown> | undefined;
    for (let i = 0; i < 100 && !line; i++) {
      await new Promise((r) => setTimeout(r, 20));
      line = fs
        .readFileSync(logPath, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((l) => l['status'] === 101 && l['bytes_up'] === 8);
    }
    assert.ok(line, 'a session line with 8 bytes up');
    assert.equal(line['close'], 'client_closed');
    assert.equal(line['close_code'], 1000);
    assert.equal(line['bytes_down'], 8);
    assert.equal(line['target'], `127.0.0.1:${echo.port}`);
    assert.equal(typeof line['duration_ms'], 'number');
    const refused = fs
      .readFileSync(logPath, 'utf8')
      .split('\n')
      .filter((l) => l.includes('"refused"'));
    assert.ok(
      refused.some((l) => l.includes('token=***')),
      'tokens are not logged',
    );
    const recs = fs
      .readdirSync(path.join(dir, 'rec'))
      .map((f) => fs.readFileSync(path.join(dir, 'rec', f), 'utf8'));
    const rec = recs.find((t) => t.includes(Buffer.from('recorded').toString('base64')));
    assert.ok(rec);
    const events = rec
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(events[0]?.['type'], 'session');
    assert.deepEqual(
      events
        .filter((e) => e['type'] === 'data')
        .map((e) => [e['dir'], Buffer.from(String(e['data']), 'base64').toString()]),
      [
        ['up', 'recorded'],
        ['down', 'recorded'],
      ],
    );
    assert.equal(events.at(-1)?.['type'], 'end');
  });

  it('serves /metrics on the admin address', async () => {
    const admin = await startAdmin(bridge, '127.0.0.1', 0);
    try {
      const port = (admin.address() as { port: number }).port;
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      assert.match(text, /wsvia_bridge_sessions_total\{kind="target"\} \d+/);
      assert.match(text, /wsvia_bridge_refused_total\{reason="target-denied"\} \d+/);
      assert.match(text, /wsvia_bridge_bytes_total\{direction="up"\} \d+/);
    } finally {
      await new Promise((r) => admin.close(r));
    }
  });
});

describe('wsvia bridge policies', () => {
  let echo: TcpServer;
  before(async () => {
    echo = await tcpEcho();
  });
  after(() => echo.close());

  it("checks Origin: the allowed list, and the page's own origin with --web", async () => {
    const web = tempDir();
    fs.writeFileSync(path.join(web, 'index.html'), '<!doctype html><title>x</title>');
    const b = await startBridge({ port: 0, target: { host: '127.0.0.1', port: echo.port }, web });
    try {
      const own = `http://127.0.0.1:${b.port}`;
      (await open(b.url, { origin: own })).ws.close();
      (await open(b.url)).ws.close();
      const r = await refusal(open(b.url, { origin: 'https://evil.example' }));
      assert.equal(r.status, 403);
      assert.match(r.body, /Origin https:\/\/evil.example is not allowed/);
      const page = await fetch(`${own}/`);
      assert.equal(page.status, 200);
      assert.match(await page.text(), /doctype/);
      assert.equal((await fetch(`${own}/../../etc/passwd`)).status, 404);
    } finally {
      await b.close();
      fs.rmSync(web, { recursive: true });
    }
    const c = await startBridge({
      port: 0,
      target: { host: '127.0.0.1', port: echo.port },
      allowOrigins: ['https://good.example'],
    });
    try {
      (await open(c.url, { origin: 'https://good.example' })).ws.close();
      assert.equal((await refusal(open(c.url, { origin: 'https://bad.example' }))).status, 403);
    } finally {
      await c.close();
    }
  });

  it('asks for Basic credentials or a bearer token', async () => {
    const b = await startBridge({
      port: 0,
      target: { host: '127.0.0.1', port: echo.port },
      users: new StaticUsers(['alice:secret']),
      bearerTokens: ['t0ken'],
    });
    try {
      const r = await refusal(open(b.url));
      assert.equal(r.status, 401);
      assert.match(String(r.headers['www-authenticate']), /Basic realm/);
      const basic = (u: string) => ({ Authorization: `Basic ${Buffer.from(u).toString('base64')}` });
      assert.equal((await refusal(open(b.url, { headers: basic('alice:wrong') }))).status, 401);
      (await open(b.url, { headers: basic('alice:secret') })).ws.close();
      (await open(b.url, { headers: { Authorization: 'Bearer t0ken' } })).ws.close();
      assert.equal((await refusal(open(b.url, { headers: { Authorization: 'Bearer nope' } }))).status, 401);
    } finally {
      await b.close();
    }
  });

  it('enforces --max-connections and the per-client limit', async () => {
    const b = await startBridge({ port: 0, target: { host: '127.0.0.1', port: echo.port }, maxPerClient: 1 });
    const c = await startBridge({
      port: 0,
      target: { host: '127.0.0.1', port: echo.port },
      maxConnections: 1,
    });
    try {
      const one = await open(b.url);
      assert.equal((await refusal(open(b.url))).status, 429);
      one.ws.close();
      await closed(one.ws);
      for (let i = 0; i < 50 && b.active > 0; i++) await new Promise((r) => setTimeout(r, 20));
      (await open(b.url)).ws.close();
      const two = await open(c.url);
      assert.equal((await refusal(open(c.url))).status, 503);
      two.ws.close();
    } finally {
      await b.close();
      await c.close();
    }
  });

  it('closes sessions with 1001 (going away) when it stops', async () => {
    const b = await startBridge({ port: 0, target: { host: '127.0.0.1', port: echo.port } });
    const { ws } = await open(b.url);
    const code = closed(ws);
    await b.close();
    assert.equal(await code, 1001);
  });

  it('reaps a peer that stops answering pings', async () => {
    const b = await startBridge({ port: 0, target: { host: '127.0.0.1', port: echo.port }, ping: 200 });
    try {
      const { ws } = await open(b.url);
      // Stop answering pings: ws answers them automatically, so pause the socket's reads.
      ws.pause();
      for (let i = 0; i < 100 && b.active > 0; i++) await new Promise((r) => setTimeout(r, 50));
      assert.equal(b.active, 0);
      ws.terminate();
    } finally {
      await b.close();
    }
  });
});

describe('wsvia bridge backpressure', () => {
  it('a target that does not read pauses the WebSocket: the client keeps what it cannot send', async () => {
    const held: net.Socket[] = [];
    const stalled = net.createServer({ pauseOnConnect: true }, (s) => held.push(s));
    await new Promise<void>((r) => stalled.listen(0, '127.0.0.1', r));
    const b = await startBridge({
      port: 0,
      target: { host: '127.0.0.1', port: (stalled.address() as net.AddressInfo).port },
    });
    try {
      const { ws } = await open(b.url, { protocols: ['binary'] });
      const chunk = Buffer.alloc(256 * 1024);
      for (let i = 0; i < 128; i++) ws.send(chunk); // 32 MiB
      let last = -1;
      for (let i = 0; i < 100 && ws.bufferedAmount !== last; i++) {
        last = ws.bufferedAmount;
        await new Promise((r) => setTimeout(r, 100));
      }
      // Loopback socket buffers hold a few MiB; without backpressure the bridge would have taken all 32.
      assert.ok(ws.bufferedAmount > 16 * 1024 * 1024, `client still holds ${ws.bufferedAmount} bytes`);
      ws.terminate();
    } finally {
      for (const s of held) s.destroy();
      await b.close();
      stalled.close();
    }
  });

  it('a client that does not read pauses the target: its writes wait', async () => {
    let target: net.Socket | undefined;
    const chatty = net.createServer((s) => {
      target = s;
      s.on('error', () => {});
      const chunk = Buffer.alloc(256 * 1024);
      for (let i = 0; i < 128; i++) s.write(chunk); // 32 MiB
    });
    await new Promise<void>((r) => chatty.listen(0, '127.0.0.1', r));
    const b = await startBridge({
      port: 0,
      target: { host: '127.0.0.1', port: (chatty.address() as net.AddressInfo).port },
    });
    try {
      const { ws } = await open(b.url, { protocols: ['binary'] });
      ws.pause();
      let last = -1;
      for (let i = 0; i < 100 && (target === undefined || target.writableLength !== last); i++) {
        last = target?.writableLength ?? -1;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(
        target && target.writableLength > 16 * 1024 * 1024,
        `target still holds ${target?.writableLength}`,
      );
      ws.terminate();
    } finally {
      target?.destroy();
      await b.close();
      chatty.close();
    }
  });
});

describe('wsvia bridge handshake checks', () => {
  it('refuses a malformed upgrade before connecting to the target', async () => {
    const echo = await tcpEcho();
    const b = await startBridge({ port: 0, target: { host: '127.0.0.1', port: echo.port } });
    try {
      const answer = await new Promise<string>((resolve) => {
        const s = net.connect({ host: '127.0.0.1', port: b.port });
        let text = '';
        s.on('data', (c: Buffer) => (text += c.toString()));
        s.on('close', () => resolve(text));
        s.write(
          'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short\r\n\r\n',
        );
      });
      assert.match(answer, /^HTTP\/1\.1 400 Bad Request/);
      assert.match(answer, /invalid Sec-WebSocket-Key/);
      assert.equal(echo.accepted, 0);
      assert.equal(b.active, 0);
    } finally {
      await b.close();
      await echo.close();
    }
  });
});
