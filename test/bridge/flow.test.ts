/**
 * The bridge as a byte pipe: bounded memory whatever the frame size (issue 11), and endings carried exactly
 * through tunnel -> bridge -> target: a reset anywhere is a reset at the ends, only a clean end is a FIN (issue 12).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { startBridge, type Bridge } from '../../src/bridge/server.js';
import { startLocalTunnel, startReverseTunnel, type LocalTunnel } from '../../src/bridge/tunnel.js';
import { parsePortList } from '../../src/route/destination.js';
import { startBridgeCli, type RunningBridge } from '../helpers/bridge-cli.js';
import { runCli } from '../helpers/cli.js';
import { until } from '../helpers/eventually.js';
import { freePortOutsideEphemeral } from '../helpers/process.js';
import { answerAfterEof, sha256, tcpEcho, type TcpServer } from './tcp-servers.js';

/** A target that echoes, and resets the connection (RST) when it reads `RST`; or at its peer's EOF with `onEof`. */
async function resettingEcho(options: { onEof?: boolean } = {}): Promise<TcpServer & { resets: number }> {
  let accepted = 0;
  let resets = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    accepted++;
    sockets.add(s);
    s.on('error', () => {});
    s.once('close', () => sockets.delete(s));
    s.on('data', (c: Buffer) => {
      if (c.includes('RST')) {
        resets++;
        s.resetAndDestroy();
      } else s.write(c);
    });
    s.on('end', () => {
      if (!options.onEof) return s.end();
      resets++;
      s.resetAndDestroy();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    get accepted() {
      return accepted;
    },
    get resets() {
      return resets;
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** How a TCP connection ended, as its client saw it. */
interface Ending {
  readonly data: Buffer;
  /** 'end' for a clean end, else the error code. */
  readonly how: string;
}

/** Connects, writes each part after the previous one was echoed, and reports how the connection ended. */
function converse(port: number, parts: string[]): Promise<Ending> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    const got: Buffer[] = [];
    let echoed = 0;
    let expected = 0;
    const next = (): void => {
      const p = parts.shift();
      if (p === undefined) return;
      expected += p.length;
      s.write(p);
    };
    s.once('connect', next);
    s.on('data', (c: Buffer) => {
      got.push(c);
      echoed += c.length;
      if (echoed >= expected) next();
    });
    let settled = false;
    const done = (how: string): void => {
      if (settled) return;
      settled = true;
      s.destroy();
      resolve({ data: Buffer.concat(got), how });
    };
    s.once('end', () => done('end'));
    s.once('error', (e: NodeJS.ErrnoException) => done(e.code ?? e.message));
  });
}

/**
 * A TCP server's view of its one connection: when the first bytes arrived, and how it ended ('end' for a FIN, or
 * the error code). Tests wait for the bytes before ending the session: a RST that reaches a connection still in
 * the kernel's accept queue is read as a plain EOF, whoever sent it.
 */
function endingSeenByTarget(): Promise<{
  port: number;
  received: Promise<void>;
  ending: Promise<string>;
  close: () => void;
}> {
  const server = net.createServer({ allowHalfOpen: true });
  const connection = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const received = connection.then((s) => new Promise<void>((resolve) => s.once('data', () => resolve())));
  const ending = connection.then(
    (s) =>
      new Promise<string>((resolve) => {
        s.on('data', () => {});
        s.once('end', () => resolve('end'));
        s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
      }),
  );
  return new Promise((r) =>
    server.listen(0, '127.0.0.1', () =>
      r({
        port: (server.address() as net.AddressInfo).port,
        received,
        ending,
        close: () => server.close(),
      }),
    ),
  );
}

describe('bridge endings: a reset stays a reset, a clean end stays clean', () => {
  let target: Awaited<ReturnType<typeof resettingEcho>>;
  let bridge: Bridge;
  let tunnel: LocalTunnel;

  before(async () => {
    target = await resettingEcho();
    // One slot for everyone: each test below opens a session only after the previous one was released, so a
    // slot kept by a reset session refuses the next one (503/429).
    bridge = await startBridge({
      port: 0,
      target: { host: '127.0.0.1', port: target.port },
      maxConnections: 1,
      maxPerClient: 1,
    });
    tunnel = await startLocalTunnel({ host: '127.0.0.1', port: 0 }, { url: bridge.url });
  });
  after(async () => {
    await tunnel.close();
    await bridge.close();
    await target.close();
  });

  it('tunnel -L: a target reset mid-stream reaches the local client as ECONNRESET, not a clean end', async () => {
    const r = await converse(tunnel.port, ['hello ', 'again ', 'RST']);
    assert.equal(r.data.toString(), 'hello again ');
    assert.equal(r.how, 'ECONNRESET');
    await until('the session to be released', () => bridge.active === 0);
    // The slot came back: the next session through the one-slot bridge is carried.
    const again = await converse(tunnel.port, ['still ', 'RST']);
    assert.deepEqual([again.data.toString(), again.how], ['still ', 'ECONNRESET']);
    await until('the session to be released', () => bridge.active === 0);
  });

  it('a websockify-protocol client sees a target reset as a close code other than 1000', async () => {
    const ws = new WebSocket(bridge.url, ['binary']);
    const code = new Promise<number>((r) => ws.once('close', (c: number) => r(c)));
    ws.once('open', () => ws.send('RST'));
    ws.on('error', () => {});
    assert.equal(await code, 1011);
    await until('the session to be released', () => bridge.active === 0);
  });

  it('a WebSocket that drops without a close frame resets the target', async () => {
    for (const protocol of ['binary', 'wsvia.tunnel.v1']) {
      const t = await endingSeenByTarget();
      const b = await startBridge({ port: 0, target: { host: '127.0.0.1', port: t.port } });
      try {
        const ws = new WebSocket(b.url, [protocol]);
        ws.on('error', () => {});
        await new Promise((r) => ws.once('open', r));
        ws.send(Buffer.from('some bytes'));
        await t.received;
        ws.terminate();
        assert.equal(await t.ending, 'ECONNRESET', protocol);
        await until('the session to be released', () => b.active === 0);
      } finally {
        await b.close();
        t.close();
      }
    }
  });

  it('a wsvia.tunnel.v1 close with a code other than 1000 resets the target; 1000 after eof is a FIN', async () => {
    for (const [code, expected] of [
      [4000, 'ECONNRESET'],
      [1000, 'end'],
    ] as const) {
      const t = await endingSeenByTarget();
      const b = await startBridge({ port: 0, target: { host: '127.0.0.1', port: t.port } });
      try {
        const ws = new WebSocket(b.url, ['wsvia.tunnel.v1']);
        ws.on('error', () => {});
        await new Promise((r) => ws.once('open', r));
        ws.send(Buffer.from('data'));
        await t.received;
        if (code === 1000) ws.send('{"type":"eof"}');
        ws.close(code);
        assert.equal(await t.ending, expected, `close ${code}`);
        await until('the session to be released', () => b.active === 0);
      } finally {
        await b.close();
        t.close();
      }
    }
  });

  it('a clean session through tunnel -L carries every byte both ways, then a FIN', async () => {
    const echo = await tcpEcho();
    const b = await startBridge({ port: 0, target: { host: '127.0.0.1', port: echo.port } });
    const t = await startLocalTunnel({ host: '127.0.0.1', port: 0 }, { url: b.url });
    try {
      const data = randomBytes(3 * 1024 * 1024 + 17);
      const got = await new Promise<Ending>((resolve) => {
        const s = net.connect({ host: '127.0.0.1', port: t.port, allowHalfOpen: true });
        const parts: Buffer[] = [];
        s.on('data', (c: Buffer) => parts.push(c));
        s.once('connect', () => s.end(data));
        s.once('end', () => resolve({ data: Buffer.concat(parts), how: 'end' }));
        s.once('error', (e: NodeJS.ErrnoException) =>
          resolve({ data: Buffer.concat(parts), how: String(e.code) }),
        );
      });
      assert.equal(got.how, 'end');
      assert.equal(got.data.length, data.length);
      assert.equal(sha256(got.data), sha256(data));
    } finally {
      await t.close();
      await b.close();
      await echo.close();
    }
  });

  it('tunnel -R: a local target reset reaches the client on the bridge side as ECONNRESET', async () => {
    const remotePort = await freePortOutsideEphemeral();
    const b = await startBridge({ port: 0, allowReverse: parsePortList(String(remotePort)) });
    let listening = false;
    const r = startReverseTunnel(
      { bind: '127.0.0.1', port: remotePort },
      { host: '127.0.0.1', port: target.port },
      { url: b.url, onListening: () => (listening = true) },
    );
    try {
      await until('the bridge to listen for the tunnel', () => listening);
      const got = await converse(remotePort, ['abc', 'RST']);
      assert.equal(got.data.toString(), 'abc');
      assert.equal(got.how, 'ECONNRESET');
    } finally {
      await r.close();
      await b.close();
    }
  });

  it('tunnel --stdio exits non-zero when the target resets, and 0 after a clean end', async () => {
    const resetAtEof = await resettingEcho({ onEof: true });
    const b = await startBridge({ port: 0, target: { host: '127.0.0.1', port: resetAtEof.port } });
    const echo = await tcpEcho();
    const c = await startBridge({ port: 0, target: { host: '127.0.0.1', port: echo.port } });
    try {
      const reset = await runCli(['tunnel', '--stdio', b.url], { input: 'request' });
      assert.equal(reset.code, 9, reset.stderr);
      assert.match(reset.stderr, /reset/);
      const clean = await runCli(['tunnel', '--stdio', c.url], { input: 'request' });
      assert.equal(clean.code, 0, clean.stderr);
      assert.equal(clean.stdout, 'request');
    } finally {
      await b.close();
      await c.close();
      await resetAtEof.close();
      await echo.close();
    }
  });
});

/**
 * A TCP relay that resets both of its sides (RST) once `limit` bytes have passed through it either way: a hop that
 * fails mid-stream, between the tunnel and the bridge.
 */
async function resettingRelay(
  upstreamPort: number,
  limits: number[],
): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    const limit = limits.shift() ?? Infinity;
    const upstream = net.connect({ port: upstreamPort, host: '127.0.0.1', allowHalfOpen: true });
    let passed = 0;
    const pair: [net.Socket, net.Socket][] = [
      [client, upstream],
      [upstream, client],
    ];
    for (const [from, to] of pair) {
      sockets.add(from);
      from.once('close', () => sockets.delete(from));
      from.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
      from.on('data', (c: Buffer) => {
        passed += c.length;
        if (passed < limit) return void to.write(c);
        client.resetAndDestroy();
        upstream.resetAndDestroy();
      });
      from.on('end', () => to.end());
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** Sends `data`, half-closes, reads to the end: the bytes and how it ended. */
function sendAndRead(port: number, data: Buffer): Promise<Ending> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    const parts: Buffer[] = [];
    s.on('data', (c: Buffer) => parts.push(c));
    s.once('connect', () => s.end(data));
    s.once('end', () => resolve({ data: Buffer.concat(parts), how: 'end' }));
    s.once('error', (e: NodeJS.ErrnoException) =>
      resolve({ data: Buffer.concat(parts), how: e.code ?? e.message }),
    );
  });
}

describe('a hop reset between tunnel and bridge is never a clean short stream', () => {
  it('sessions cut at any point end byte-exact or with ECONNRESET, none cleanly with fewer bytes', async () => {
    const answer = await answerAfterEof();
    const bridge = await startBridge({ port: 0, target: { host: '127.0.0.1', port: answer.port } });
    const SESSIONS = 24;
    const data = randomBytes(256 * 1024);
    // Cuts spread over the session (2 x 256 KiB plus framing), a third of them beyond its end.
    const limits = Array.from({ length: SESSIONS }, (_, i) => 1000 + Math.floor((i * 800 * 1024) / SESSIONS));
    const relay = await resettingRelay(bridge.port, limits);
    const tunnel = await startLocalTunnel(
      { host: '127.0.0.1', port: 0 },
      { url: `ws://127.0.0.1:${relay.port}` },
    );
    const expected = Buffer.concat([Buffer.from(`bytes=${data.length} sha256=${sha256(data)}\n`), data]);
    const outcomes = { exact: 0, reset: 0, silentLoss: 0 };
    try {
      for (let i = 0; i < SESSIONS; i++) {
        const r = await sendAndRead(tunnel.port, data);
        if (r.how !== 'end') outcomes.reset++;
        else if (r.data.equals(expected)) outcomes.exact++;
        else outcomes.silentLoss++;
      }
      await until('every session to be released', () => bridge.active === 0);
    } finally {
      await tunnel.close();
      await relay.close();
      await bridge.close();
      await answer.close();
    }
    assert.equal(outcomes.silentLoss, 0, JSON.stringify(outcomes));
    assert.ok(outcomes.exact > 0 && outcomes.reset > 0, JSON.stringify(outcomes));
  });
});

/** The bridge process's resident memory, from /proc. */
function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) * 1024;
}

/** Completes a WebSocket upgrade on a raw socket (the bytes after the 101 are not expected here). */
function rawWebSocket(port: number, path = '/'): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.on('error', reject);
    s.once('connect', () =>
      s.write(
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n` +
          'Sec-WebSocket-Protocol: binary\r\n\r\n',
      ),
    );
    let head = '';
    const onData = (c: Buffer): void => {
      head += c.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      s.off('data', onData);
      if (!head.startsWith('HTTP/1.1 101')) return reject(new Error(head));
      resolve(s);
    };
    s.on('data', onData);
  });
}

/** The head of one masked binary frame of `length` bytes (mask 0: the payload goes as it is). */
function frameHead(length: number): Buffer {
  const h = Buffer.alloc(14);
  h[0] = 0x82;
  h[1] = 0x80 | 127;
  h.writeBigUInt64BE(BigInt(length), 2);
  return h;
}

describe('bridge memory: a frame streams to the target as it arrives', () => {
  let stalled: net.Server;
  const held: net.Socket[] = [];
  let echo: TcpServer;
  let bridge: RunningBridge;

  before(async () => {
    stalled = net.createServer({ pauseOnConnect: true }, (s) => {
      s.on('error', () => {});
      held.push(s);
    });
    await new Promise<void>((r) => stalled.listen(0, '127.0.0.1', r));
    echo = await tcpEcho();
    bridge = await startBridgeCli([
      '--listen',
      '127.0.0.1:0',
      '--target',
      `127.0.0.1:${(stalled.address() as net.AddressInfo).port}`,
      '--route',
      `/echo=127.0.0.1:${echo.port}`,
    ]);
  });
  after(async () => {
    await bridge.stop();
    for (const s of held) s.destroy();
    stalled.close();
    await echo.close();
  });

  it('16 clients each inside a 16 MiB frame to a target that does not read cost under 2 MiB each', async (t) => {
    const CLIENTS = 16;
    const pid = bridge.process.pid as number;
    // Warm up (code paths, the heap's young generation) with exact sessions, then take the baseline.
    for (let i = 0; i < 4; i++) await echoSession(bridge.port, 8 * 1024 * 1024);
    const base = rssBytes(pid);
    const clients = await Promise.all(Array.from({ length: CLIENTS }, () => rawWebSocket(bridge.port)));
    const payload = Buffer.alloc(15 * 1024 * 1024, 0x61);
    for (const c of clients) {
      c.on('error', () => {});
      c.write(frameHead(16 * 1024 * 1024));
      for (let i = 0; i < payload.length; i += 64 * 1024) c.write(payload.subarray(i, i + 64 * 1024));
    }
    // Wait until the bridge takes nothing more: what the clients still hold stops shrinking.
    let last = -1;
    let still = 0;
    await until(
      'the clients to stall',
      () => {
        const holding = clients.reduce((n, c) => n + c.writableLength, 0);
        still = holding === last ? still + 1 : 0;
        last = holding;
        return still >= 8;
      },
      60_000,
    );
    // bytesWritten counts what is still queued here too.
    const sent = clients.reduce((n, c) => n + c.bytesWritten - c.writableLength, 0);
    const growth = rssBytes(pid) - base;
    for (const c of clients) c.destroy();
    t.diagnostic(`RSS growth ${(growth / 1048576).toFixed(1)} MiB, ${(sent / 1048576).toFixed(1)} MiB sent`);
    assert.ok(sent > CLIENTS * 1024 * 1024, `the clients got ${sent} bytes out`);
    // Before the fix `ws` read every frame whole: 16 x 15 MiB held (240 MiB).
    assert.ok(
      growth < CLIENTS * 2 * 1024 * 1024,
      `the bridge grew by ${(growth / 1048576).toFixed(1)} MiB for ${(sent / 1048576).toFixed(1)} MiB sent`,
    );
    // The bridge is still a working byte pipe.
    await echoSession(bridge.port, 2 * 1024 * 1024);
  });
});

/** One session through the bridge's /echo route with a `ws` client: `n` random bytes must come back exactly. */
async function echoSession(port: number, n: number): Promise<void> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/echo`, ['binary']);
  const data = randomBytes(n);
  const parts: Buffer[] = [];
  let got = 0;
  await new Promise<void>((resolve, reject) => {
    ws.once('error', reject);
    ws.once('open', () => {
      for (let i = 0; i < n; i += 100_000) ws.send(data.subarray(i, i + 100_000));
    });
    ws.on('message', (m: Buffer) => {
      parts.push(m);
      got += m.length;
      if (got >= n) resolve();
    });
  });
  ws.close(1000);
  assert.equal(sha256(Buffer.concat(parts)), sha256(data));
}
