/**
 * `wsvia connect` as websocat and wscat users expect it (issue 13), the real CLI against real servers: a closed
 * stdout, every end said with its exit code, --max-time, the Close handshake at the end of stdin, messages never
 * dropped silently, binary modes, -1, ping/pong, this side's close code.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import http from 'node:http';
import type net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { WebSocketServer, type WebSocket } from 'ws';
import { startEchoServer, type EchoServer } from '../../src/echo/echo-server.js';
import { EXIT_CODES } from '../../src/errors.js';
import { runCli, WSVIA } from '../helpers/cli.js';
import { until } from '../helpers/eventually.js';
import { freePort } from '../helpers/process.js';
import { startProxy } from '../helpers/wsvia-proxy.js';

/** Anything that looks like a stack trace or an internal error. */
const STACK = /\n\s+at |internal error|Error: /;

let echo: EchoServer;
before(async () => {
  echo = await startEchoServer({ port: 0 });
});
after(() => echo.close());

/** A `ws` server on loopback (`port`, else any) whose `onConnection` scripts each connection; records what clients send. */
async function scriptedServer(
  onConnection: (ws: WebSocket) => void,
  port = 0,
): Promise<{
  url: string;
  received: string[];
  closes: { code: number; reason: string }[];
  close(): Promise<void>;
}> {
  const wss = new WebSocketServer({ port, host: '127.0.0.1' });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  const received: string[] = [];
  const closes: { code: number; reason: string }[] = [];
  wss.on('connection', (ws) => {
    ws.on('error', () => {});
    ws.on('message', (m) => received.push(String(m)));
    ws.on('close', (code, reason) => closes.push({ code, reason: reason.toString() }));
    onConnection(ws);
  });
  return {
    url: `ws://127.0.0.1:${(wss.address() as net.AddressInfo).port}/`,
    received,
    closes,
    close: () =>
      new Promise<void>((r) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => r());
      }),
  };
}

/** A frame from the server (unmasked, payload under 126 bytes). */
function frame(opcode: number, payload: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0x80 | opcode, payload.length]), payload]);
}

/**
 * A WebSocket server written frame by frame, for what `ws` never does: answering a client's Close late (data
 * first), or never. Returns its URL.
 */
async function rawServer(
  onClientClose: 'data-then-close' | 'never',
): Promise<{ url: string; close(): void }> {
  const server = http.createServer();
  const sockets = new Set<net.Socket>();
  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    const accept = createHash('sha1')
      .update(`${String(req.headers['sec-websocket-key'])}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`)
      .digest('base64');
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
    );
    let buf = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      // Client frames are masked; these tests send only short ones: 2 bytes, a 4-byte mask, the payload.
      while (buf.length >= 6 && buf.length >= 6 + ((buf[1] as number) & 0x7f)) {
        const opcode = (buf[0] as number) & 0x0f;
        buf = buf.subarray(6 + ((buf[1] as number) & 0x7f));
        if (opcode === 0x8 && onClientClose === 'data-then-close') {
          socket.write(frame(0x1, Buffer.from('after your close')));
          socket.end(frame(0x8, Buffer.from([0x03, 0xe8])));
        }
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `ws://127.0.0.1:${(server.address() as net.AddressInfo).port}/`,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

/**
 * Runs `wsvia connect ...args` with raw bytes on stdin (or stdin left open, as a terminal's, when `input` is
 * undefined); resolves with the raw bytes of stdout.
 */
function runRaw(
  args: readonly string[],
  input: Buffer | undefined,
): Promise<{ code: number | null; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WSVIA, 'connect', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`wsvia connect did not exit: ${stderr}`));
    }, 15_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out), stderr });
    });
    child.stdin.on('error', () => {});
    if (input) child.stdin.end(input);
  });
}

describe('wsvia connect: how a run ends', () => {
  test('a closed stdout (| head -1) ends quietly with 0, no stack trace', async () => {
    const child = spawn(process.execPath, [WSVIA, 'connect', echo.url], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdin.on('error', () => {});
    let n = 0;
    const feed = setInterval(() => child.stdin.write(`line ${n++}\n`), 10);
    child.stdout.once('data', () => child.stdout.destroy());
    const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.on('exit', (code, signal) => resolve({ code, signal })),
    );
    clearInterval(feed);
    assert.ok(exit.code === 0 || exit.code === 141, `exit ${exit.code} ${exit.signal}: ${stderr}`);
    assert.doesNotMatch(stderr, STACK);
  });

  test("a server's Close 4000 'bye now': said on stderr and as a JSON close event, exit 9", async () => {
    const s = await scriptedServer((ws) => ws.once('message', () => ws.close(4000, 'bye now')));
    try {
      const r = await runCli(['connect', s.url, '--send', 'hello']);
      assert.equal(r.code, EXIT_CODES.closed, r.stderr);
      assert.match(r.stderr, /closed by server: 4000 bye now/);
      const j = await runCli(['connect', s.url, '--send', 'hello', '--json']);
      const close = j.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((e) => e.event === 'close');
      assert.deepEqual(close, { event: 'close', code: 4000, reason: 'bye now', by: 'server' });
      assert.equal(j.code, EXIT_CODES.closed);
    } finally {
      await s.close();
    }
  });

  test("a server's Close 1000 or 1001 is a clean end: said, exit 0", async () => {
    for (const code of [1000, 1001]) {
      const s = await scriptedServer((ws) => ws.close(code, 'done'));
      try {
        const r = await runRaw([s.url], undefined);
        assert.equal(r.code, EXIT_CODES.ok, r.stderr);
        assert.match(r.stderr, new RegExp(`closed by server: ${code} done`));
      } finally {
        await s.close();
      }
    }
  });

  test('a connection cut without a Close frame says so, exit 9', async () => {
    const s = await scriptedServer((ws) =>
      ws.once('message', () => (ws as unknown as { _socket: net.Socket })._socket.destroy()),
    );
    try {
      const r = await runCli(['connect', s.url, '--send', 'x']);
      assert.equal(r.code, EXIT_CODES.closed, r.stderr);
      assert.match(r.stderr, /cut without a Close frame \[WEBSOCKET_CLOSED, hop websocket\]/);
      assert.doesNotMatch(r.stderr, STACK);
    } finally {
      await s.close();
    }
  });

  test('an idle tunnel cut by wsvia proxy (--idle-timeout) is said, not a silent end: exit 9', async () => {
    const proxy = await startProxy({ limits: { idleTimeout: 300 } });
    try {
      const r = await runRaw([echo.url, '--proxy', proxy.url], undefined);
      assert.equal(r.code, EXIT_CODES.closed, r.stderr);
      assert.match(r.stderr, /cut without a Close frame \[WEBSOCKET_CLOSED, hop websocket\]/);
      assert.match(r.stderr, /hint: .*idle timeout/);
    } finally {
      await proxy.close();
    }
  });

  test('--max-time: a server that never answers is left at the limit, exit 7', async () => {
    const s = await scriptedServer(() => {});
    try {
      const started = Date.now();
      const r = await runCli(['connect', s.url, '--send', 'anyone?', '--max-time', '0.5']);
      assert.equal(r.code, EXIT_CODES.timeout, r.stderr);
      assert.match(r.stderr, /--max-time 0\.5 s reached/);
      assert.ok(Date.now() - started < 10_000);
    } finally {
      await s.close();
    }
  });

  test('end of stdin: a Close is sent and what arrives before the server Close is still printed', async () => {
    const s = await rawServer('data-then-close');
    try {
      const r = await runCli(['connect', s.url], { input: 'x\n' });
      assert.equal(r.code, EXIT_CODES.ok, r.stderr);
      assert.equal(r.stdout, 'after your close\n');
    } finally {
      s.close();
    }
  });

  test('end of stdin, a server that never answers the Close: left after --close-timeout, and said', async () => {
    const s = await rawServer('never');
    try {
      const r = await runCli(['connect', s.url, '--close-timeout', '0.3'], { input: 'x\n' });
      assert.equal(r.code, EXIT_CODES.ok, r.stderr);
      assert.match(r.stderr, /no Close from the server within 0\.3 s/);
    } finally {
      s.close();
    }
  });

  test('--reconnect: lines still queued when the run ends are counted on stderr, exit not 0', async () => {
    const port = await freePort();
    const r = await runCli(['connect', `ws://127.0.0.1:${port}/`, '--reconnect', '--max-time', '1'], {
      input: 'one\ntwo\n',
    });
    assert.notEqual(r.code, EXIT_CODES.ok);
    assert.match(r.stderr, /2 message\(s\) were not sent: 2 still queued/);
  });

  test('--reconnect, end of stdin: the Close waits for the server, whose answers are still printed', async () => {
    const r = await runCli(['connect', echo.url, '--reconnect'], { input: 'a\nb\nc\n' });
    assert.equal(r.code, EXIT_CODES.ok, r.stderr);
    // The run ended at its own Close, before the echoes came: stdout was empty.
    assert.equal(r.stdout, 'a\nb\nc\n');
  });

  test('--reconnect: 5,000 lines given while the server is away all arrive, in order, once it comes: stdin waits, none refused', async () => {
    const port = await freePort();
    const lines = Array.from({ length: 5000 }, (_, i) => `line-${i}`);
    const child = spawn(process.execPath, [WSVIA, 'connect', `ws://127.0.0.1:${port}/`, '--reconnect'], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, NO_PROXY: '*' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    // More than the reconnect queue holds (1,000 messages): before, the rest was refused and lost.
    child.stdin.end(lines.map((l) => `${l}\n`).join(''));
    let server: Awaited<ReturnType<typeof scriptedServer>> | undefined;
    try {
      await until('the client has been refused at least once', () => /reconnecting in/.test(stderr));
      server = await scriptedServer((ws) => ws.on('message', (m) => ws.send(String(m))), port);
      const code = await exited;
      assert.equal(code, EXIT_CODES.ok, stderr);
      assert.deepEqual(stdout.split('\n').filter(Boolean), lines);
      assert.doesNotMatch(stderr, /not sent|full queue|cannot queue|MaxListeners/);
    } finally {
      child.kill();
      await server?.close();
    }
  });

  test('--send without --expect: exits 0 after one answer per send', async () => {
    const r = await runCli(['connect', echo.url, '--send', 'a', '--send', 'b']);
    assert.equal(r.code, EXIT_CODES.ok, r.stderr);
    assert.equal(r.stdout, 'a\nb\n');
  });
});

describe('wsvia connect: data modes and options', () => {
  test('-b: stdin goes raw as binary messages and binary comes back raw, byte for byte', async () => {
    const data = Buffer.from([0xff, 0x00, 0x0a, 0x80, 0x41, 0x0d, 0x0a, 0xfe]);
    const r = await runRaw([echo.url, '-b'], data);
    assert.equal(r.code, EXIT_CODES.ok, r.stderr);
    assert.deepEqual(r.stdout, data);
  });

  test('--binary-lines: each line of stdin is one binary message', async () => {
    const r = await runCli(['connect', echo.url, '--binary-lines', '--json', '--expect', '2'], {
      input: 'ab\ncd\n',
    });
    assert.equal(r.code, EXIT_CODES.ok, r.stderr);
    const messages = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((e) => e.event === 'message');
    assert.deepEqual(messages, [
      { event: 'message', binary: true, data: Buffer.from('ab').toString('hex') },
      { event: 'message', binary: true, data: Buffer.from('cd').toString('hex') },
    ]);
  });

  test('text mode prints a binary message as hex behind a marker', async () => {
    const s = await scriptedServer((ws) => ws.send(Buffer.from([1, 2, 255])));
    try {
      const r = await runCli(['connect', s.url, '--expect', '1']);
      assert.equal(r.code, EXIT_CODES.ok, r.stderr);
      assert.equal(r.stdout, '[binary 3 bytes] 0102ff\n');
    } finally {
      await s.close();
    }
  });

  test('-1: sends the first line only, prints one message, exits 0', async () => {
    const s = await scriptedServer((ws) => ws.on('message', (m) => ws.send(`got ${String(m)}`)));
    try {
      const r = await runCli(['connect', s.url, '-1'], { input: 'first\nsecond\n' });
      assert.equal(r.code, EXIT_CODES.ok, r.stderr);
      assert.equal(r.stdout, 'got first\n');
      await until('the server to see the close', () => s.closes.length === 1);
      assert.deepEqual(s.received, ['first']);
    } finally {
      await s.close();
    }
  });

  test('--show-ping-pong: a ping from the server is shown on stderr and as a JSON event', async () => {
    const s = await scriptedServer((ws) => {
      ws.ping(Buffer.from('hb'));
      ws.send('after the ping');
    });
    try {
      const r = await runCli(['connect', s.url, '--expect', '1', '--show-ping-pong']);
      assert.equal(r.code, EXIT_CODES.ok, r.stderr);
      assert.match(r.stderr, /ping from the server \(2 bytes\)/);
      const j = await runCli(['connect', s.url, '--expect', '1', '--show-ping-pong', '--json']);
      assert.match(j.stdout, /\{"event":"ping","data":"6862"\}/);
    } finally {
      await s.close();
    }
  });

  test('--close-code and --close-reason: the Close this side sends carries them', async () => {
    const s = await scriptedServer((ws) => ws.on('message', (m) => ws.send(m, { binary: false })));
    try {
      const r = await runCli([
        'connect',
        s.url,
        '--send',
        'x',
        '--close-code',
        '4001',
        '--close-reason',
        'done here',
      ]);
      assert.equal(r.code, EXIT_CODES.ok, r.stderr);
      await until('the server to see the close', () => s.closes.length === 1);
      assert.deepEqual(s.closes, [{ code: 4001, reason: 'done here' }]);
      const bad = await runCli(['connect', s.url, '--close-code', '1006']);
      assert.equal(bad.code, EXIT_CODES.usage);
      assert.match(bad.stderr, /--close-code 1006 is out of range: 1000 or 3000-4999/);
    } finally {
      await s.close();
    }
  });
});
