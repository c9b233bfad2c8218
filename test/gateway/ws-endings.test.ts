/**
 * How a WebSocket through the gateway ends when one side dies without a close handshake: the other side gets a
 * close frame from the gateway (1011, or 1014 for a broken upstream frame) with a reason, never a bare TCP close
 * (1006); and nothing follows the gateway's own close frame (RFC 6455 §5.5.1), read from the wire by a raw client.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import net from 'node:net';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { until } from '../helpers/eventually.js';
import { openWs, startGateway, startUpstream, type TestGateway, type Upstream } from './peers.js';

const UPGRADE =
  'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';

/** The raw TCP socket under a `ws` WebSocket, to kill it as a crashed process would. */
function tcpOf(ws: WebSocket): net.Socket {
  return (ws as unknown as { _socket: net.Socket })._socket;
}

/** Resolves with the close code and reason the client saw. */
function closeOf(ws: WebSocket): Promise<[number, string]> {
  return new Promise((resolve) =>
    ws.once('close', (code: number, why: Buffer) => resolve([code, why.toString()])),
  );
}

interface Frame {
  readonly opcode: number;
  readonly payload: Buffer;
}

/** Splits unmasked server frames; returns the complete ones and the bytes left over. */
function parseFrames(buf: Buffer): { frames: Frame[]; rest: Buffer } {
  const frames: Frame[] = [];
  let off = 0;
  for (;;) {
    if (buf.length - off < 2) break;
    let len = (buf[off + 1] as number) & 0x7f;
    let head = 2;
    if (len === 126) {
      if (buf.length - off < 4) break;
      len = buf.readUInt16BE(off + 2);
      head = 4;
    }
    if (buf.length - off < head + len) break;
    frames.push({ opcode: (buf[off] as number) & 0x0f, payload: buf.subarray(off + head, off + head + len) });
    off += head + len;
  }
  return { frames, rest: buf.subarray(off) };
}

describe('gateway: a side that dies mid-session', { timeout: 30_000 }, () => {
  let up: Upstream;
  let gw: TestGateway;
  before(async () => {
    up = await startUpstream('mortal');
    gw = await startGateway(`
listen: 127.0.0.1:0
routes: [{ path: /, upstream: ${up.url} }]
`);
  });
  after(async () => {
    await gw.gateway.close();
    await up.close();
  });

  /** Opens a WebSocket and returns it with the upstream's side of it. */
  async function pair(): Promise<{ ws: WebSocket; upstream: WebSocket }> {
    const before = up.sockets.length;
    const { ws } = await openWs(`${gw.wsUrl}/`);
    await until('the upstream side', () => up.sockets.length > before);
    return { ws, upstream: up.sockets[before] as WebSocket };
  }

  it('an upstream that resets: the client gets close 1011 with a reason, not 1006', async () => {
    const { ws, upstream } = await pair();
    const closing = closeOf(ws);
    tcpOf(upstream).resetAndDestroy();
    assert.deepEqual(await closing, [1011, 'upstream connection reset']);
    await until('the log line', () => gw.records.some((r) => r['close'] === 'upstream_reset'));
    const rec = gw.records.find((r) => r['close'] === 'upstream_reset');
    assert.equal(rec?.['close_code'], 1011);
  });

  it('an upstream that closes TCP without a close frame: the client gets close 1011', async () => {
    const { ws, upstream } = await pair();
    const closing = closeOf(ws);
    tcpOf(upstream).destroy();
    assert.deepEqual(await closing, [1011, 'upstream closed without a close frame']);
    await until('the log line', () => gw.records.some((r) => r['close'] === 'upstream_lost'));
  });

  it('a client that resets: the upstream gets close 1011, not 1006', async () => {
    const { ws, upstream } = await pair();
    const closing = closeOf(upstream);
    tcpOf(ws).resetAndDestroy();
    assert.deepEqual(await closing, [1011, 'client connection reset']);
    await until('the log line', () => gw.records.some((r) => r['close'] === 'client_reset'));
  });

  it('a client that closes TCP without a close frame: the upstream gets close 1011', async () => {
    const { ws, upstream } = await pair();
    const closing = closeOf(upstream);
    tcpOf(ws).destroy();
    assert.deepEqual(await closing, [1011, 'client closed without a close frame']);
  });

  it('a normal close handshake is relayed as it is', async () => {
    const { ws, upstream } = await pair();
    const closing = closeOf(upstream);
    ws.close(4000, 'bye');
    assert.deepEqual(await closing, [4000, 'bye']);
    assert.equal((await closeOf(ws))[0], 4000);
  });

  it('writes exactly one log line per WebSocket', async () => {
    await until('every WebSocket closed', () => gw.gateway.openWebSockets === 0);
    assert.equal(gw.records.filter((r) => r['status'] === 101).length, 5);
  });
});

/** A raw upstream: completes the upgrade by hand, then runs `after` on the socket. */
async function startRawUpstream(after: (s: net.Socket) => void): Promise<net.Server> {
  const server = net.createServer((s) => {
    s.on('error', () => {});
    s.once('data', (d: Buffer) => {
      const key = /sec-websocket-key: *(\S+)/i.exec(d.toString('latin1'))?.[1] ?? '';
      const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
      s.write(
        `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
      );
      after(s);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return server;
}

describe('gateway: an upstream that breaks the protocol', { timeout: 30_000 }, () => {
  let upstream: net.Server;
  let gw: TestGateway;
  before(async () => {
    // A ping frame claiming a 126-byte payload: control frames are at most 125 bytes (§5.5).
    upstream = await startRawUpstream((s) => s.write(Buffer.from([0x89, 0x7e, 0x00, 0x7e])));
    const port = (upstream.address() as net.AddressInfo).port;
    gw = await startGateway(`
listen: 127.0.0.1:0
routes: [{ path: /, upstream: ws://127.0.0.1:${port} }]
`);
  });
  after(async () => {
    await gw.gateway.close();
    upstream.close();
  });

  it('closes the client with 1014 (bad gateway)', async () => {
    const ws = new WebSocket(`${gw.wsUrl}/`);
    const closing = closeOf(ws);
    assert.deepEqual(await closing, [1014, 'upstream sent a broken frame']);
    await until('the log line', () => gw.records.some((r) => r['close'] === 'protocol_error'));
  });
});

describe('gateway: nothing follows its own close frame (RFC 6455 §5.5.1)', { timeout: 30_000 }, () => {
  let upstream: net.Server;
  let gw: TestGateway;
  before(async () => {
    // An upstream that sends half of a 10-byte frame, waits for the gateway's close, then sends the other half
    // with the start of the next frame in the same write: that start must not reach the client after the close.
    upstream = net.createServer((s) => {
      s.on('error', () => {});
      s.once('data', (d: Buffer) => {
        const key = /sec-websocket-key: *(\S+)/i.exec(d.toString('latin1'))?.[1] ?? '';
        const accept = createHash('sha1')
          .update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`)
          .digest('base64');
        s.write(
          `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
        );
        s.write(Buffer.concat([Buffer.from([0x82, 10]), Buffer.from('01234')]));
        s.once('data', () =>
          s.write(Buffer.concat([Buffer.from('56789'), Buffer.from([0x82, 4]), Buffer.from('NE')])),
        );
      });
    });
    upstream.listen(0, '127.0.0.1');
    await once(upstream, 'listening');
    const port = (upstream.address() as net.AddressInfo).port;
    gw = await startGateway(`
listen: 127.0.0.1:0
routes: [{ path: /, upstream: ws://127.0.0.1:${port} }]
max-lifetime: 0.3
`);
  });
  after(async () => {
    await gw.gateway.close();
    upstream.close();
  });

  it('completes the frame in flight, sends close 1001, and drops the frame after it', async () => {
    const sock = net.connect({ host: '127.0.0.1', port: Number(new URL(gw.url).port) });
    sock.on('error', () => {});
    sock.write(UPGRADE);
    let buf = Buffer.alloc(0);
    sock.on('data', (d: Buffer) => (buf = Buffer.concat([buf, d])));
    await until('the 101', () => buf.includes('\r\n\r\n'));
    assert.match(buf.toString('latin1'), /^HTTP\/1\.1 101 /);
    const afterHead = (): Buffer => buf.subarray(buf.indexOf('\r\n\r\n') + 4);
    await until('the close frame', () => parseFrames(afterHead()).frames.some((f) => f.opcode === 8));
    // Give any bytes the gateway would wrongly write after the close a chance to arrive: it ends the socket.
    sock.end(Buffer.from([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe9]));
    await once(sock, 'close');
    const { frames, rest } = parseFrames(afterHead());
    assert.deepEqual(
      frames.map((f) => [f.opcode, f.opcode === 8 ? f.payload.readUInt16BE(0) : f.payload.toString()]),
      [
        [2, '0123456789'],
        [8, 1001],
      ],
    );
    assert.equal(rest.length, 0, 'no byte after the close frame');
  });
});
