import assert from 'node:assert/strict';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import { connectRequest, request, startProxy } from '../helpers/wsvia-proxy.js';
import { until } from '../helpers/eventually.js';
import { RELAYS, relayOptions } from '../helpers/relays.js';

for (const relay of RELAYS)
  describe(`wsvia proxy: backpressure (${relay} relay)`, relayOptions(relay), () => {
    it('a slow reader makes the sender wait instead of the proxy buffering', async () => {
      // The server offers 64 MiB as fast as its own write() allows; the client reads nothing for a while.
      const OFFER = 64 * 1024 * 1024;
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      let written = 0;
      let stalled = false;
      const server = net.createServer((s) => {
        s.on('error', () => {});
        const pump = (): void => {
          while (written < OFFER) {
            written += chunk.length;
            if (!s.write(chunk)) {
              stalled = true;
              s.once('drain', pump);
              return;
            }
          }
          s.end();
        };
        pump();
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      const proxy = await startProxy({ relay });
      after(async () => {
        await proxy.close();
        server.close();
      });
      const port = (server.address() as net.AddressInfo).port;
      const heapBefore = process.memoryUsage().arrayBuffers;
      const a = await request(proxy.port, connectRequest(`127.0.0.1:${port}`));
      assert.equal(a.head.status, 200);
      await until('the server to be held back', () => stalled);
      // Whatever the proxy buffers, it has buffered once the server stays held back (no 'drain' between polls).
      let last = -1;
      await until('the flow to stop', () => {
        const settled = stalled && written === last;
        last = written;
        return settled;
      });
      const heldBack = written;
      const heapGrowth = process.memoryUsage().arrayBuffers - heapBefore;
      // Kernel socket buffers on loopback hold a few MiB each way; the proxy adds at most a high-water mark per
      // side. Unbounded buffering would have taken the whole offer.
      assert.ok(
        heldBack < 48 * 1024 * 1024,
        `the server could write ${heldBack} bytes into a stalled tunnel`,
      );
      assert.ok(heapGrowth < 16 * 1024 * 1024, `buffers grew by ${heapGrowth} bytes`);
      // Reading resumes the flow, and every byte arrives.
      const received = await new Promise<number>((resolve) => {
        let n = a.rest.length;
        a.socket.on('data', (c: Buffer) => (n += c.length));
        a.socket.once('end', () => resolve(n));
        a.socket.resume();
      });
      assert.equal(received, OFFER);
      a.socket.destroy();
    });
  });
