import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { connect } from '../../src/client/connect.js';

/**
 * A server that writes its 101 and its first frame in one write, as a server that greets at once does behind a
 * proxy that coalesces reads: the frame must reach a listener added right after `await connect()`.
 */
describe('connect(): a message glued to the 101', () => {
  let server: net.Server;
  let port = 0;
  before(async () => {
    server = net.createServer((socket) => {
      socket.on('error', () => socket.destroy());
      let head = '';
      socket.on('data', (c: Buffer) => {
        head += c.toString('latin1');
        if (!head.includes('\r\n\r\n')) return;
        const key = /sec-websocket-key: *(\S+)/i.exec(head)?.[1] ?? '';
        const accept = createHash('sha1')
          .update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`)
          .digest('base64');
        const text = Buffer.from('hello first');
        const frame = Buffer.concat([Buffer.from([0x81, text.length]), text]);
        socket.write(
          Buffer.concat([
            Buffer.from(
              `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
            ),
            frame,
          ]),
        );
        head = '';
        socket.removeAllListeners('data');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as net.AddressInfo).port;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  it('is delivered to a listener added after await connect()', async () => {
    for (let i = 0; i < 5; i++) {
      const ws = await connect(`ws://127.0.0.1:${port}/`, { proxy: false });
      const got = await new Promise<string | undefined>((resolve) => {
        const t = setTimeout(() => resolve(undefined), 2000);
        ws.once('message', (m) => {
          clearTimeout(t);
          resolve(String(m));
        });
      });
      ws.terminate();
      assert.equal(got, 'hello first');
    }
  });
});
