/**
 * The tunnel's destination socket reads into reused buffers (net's `onread`): small reads into one shared buffer
 * that is copied out, bulk reads into the socket's own buffer, dropped whenever a write still refers to it.
 * These tests move data the way that can go wrong: a fast sender and a client that stops reading, so writes
 * queue and reads alternate between small and full; every byte must arrive exactly, in order.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import net, { type AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { connectRequest, startProxy, type RunningWsviaProxy } from '../helpers/wsvia-proxy.js';

let proxy: RunningWsviaProxy;
before(async () => {
  proxy = await startProxy();
});
after(() => proxy.close());

function sha(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** A server that sends `data` in writes of the given sizes, as fast as the socket takes them, then ends. */
async function sender(data: Buffer, sizes: readonly number[]): Promise<{ port: number; close(): void }> {
  const server = net.createServer((s) => {
    let off = 0;
    let i = 0;
    const pump = (): void => {
      while (off < data.length) {
        const n = sizes[i++ % sizes.length] as number;
        const ok = s.write(data.subarray(off, off + n));
        off += n;
        if (!ok) return void s.once('drain', pump);
      }
      s.end();
    };
    s.on('error', () => {});
    pump();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, close: () => server.close() };
}

/** Opens a tunnel to `port` and reads everything, pausing for `pauseMs` every `every` chunks. */
function download(port: number, every: number, pauseMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const c = net.connect(proxy.port, '127.0.0.1');
    c.write(connectRequest(`127.0.0.1:${port}`));
    const parts: Buffer[] = [];
    let head = Buffer.alloc(0);
    let n = 0;
    c.on('data', (d: Buffer) => {
      if (head !== undefined && !head.includes('\r\n\r\n')) {
        head = Buffer.concat([head, d]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        assert.match(head.subarray(0, end).toString(), /^HTTP\/1\.1 200/);
        parts.push(head.subarray(end + 4));
        head = Buffer.from('\r\n\r\n');
        return;
      }
      parts.push(d);
      if (++n % every === 0) {
        c.pause();
        setTimeout(() => c.resume(), pauseMs);
      }
    });
    c.on('end', () => resolve(Buffer.concat(parts)));
    c.on('error', reject);
  });
}

test('a slow reader gets 32 MiB byte for byte, through bulk and small reads alternating', async () => {
  // Enough to fill the kernel's buffers on both sides, so the proxy's writes stay pending and partial.
  const data = randomBytes(32 * 1024 * 1024);
  // Write sizes that make the proxy's reads alternate between full 64 KiB reads and small ones.
  const s = await sender(data, [65536, 100, 16384, 1, 70000, 5000]);
  try {
    const got = await download(s.port, 4, 15);
    assert.equal(got.length, data.length);
    assert.equal(sha(got), sha(data));
  } finally {
    s.close();
  }
});

test('several tunnels at once share the small-read buffer without mixing bytes', async () => {
  const blobs = [0, 1, 2, 3, 4, 5].map(() => randomBytes(1024 * 1024));
  const senders = await Promise.all(blobs.map((b, i) => sender(b, [1 + i * 97, 3000, 200])));
  try {
    const got = await Promise.all(senders.map((s, i) => download(s.port, 8 + i, 2)));
    got.forEach((g, i) => assert.equal(sha(g), sha(blobs[i] as Buffer), `tunnel ${i} intact`));
  } finally {
    for (const s of senders) s.close();
  }
});
