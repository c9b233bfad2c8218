/** Every tunnel ends in exactly one access-log line, whatever ended it, with the reason that did. */
import assert from 'node:assert/strict';
import net from 'node:net';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { RELAYS, relayOptions } from '../helpers/relays.js';
import { AccessLog } from '../../src/observe/access-log.js';
import { until } from '../helpers/eventually.js';
import { howItEnds } from '../helpers/endings.js';
import { connectRequest, request, startProxy, startTcpEcho } from '../helpers/wsvia-proxy.js';

for (const relay of RELAYS)
  test(
    `one log line per tunnel: a FIN, a reset on either side, the idle timeout, and the drain cut (${relay} relay)`,
    relayOptions(relay),
    async () => {
      const records: Record<string, unknown>[] = [];
      const sink = new Writable({
        write(chunk: Buffer, _enc, cb) {
          for (const line of chunk.toString().split('\n').filter(Boolean))
            records.push(JSON.parse(line) as Record<string, unknown>);
          cb();
        },
      });
      const echo = await startTcpEcho();
      const proxy = await startProxy({ relay, accessLog: new AccessLog(sink), limits: { idleTimeout: 300 } });
      const open = async (): Promise<{ client: net.Socket; far: net.Socket }> => {
        const before = echo.sockets.length;
        const a = await request(proxy.port, connectRequest(`127.0.0.1:${echo.port}`));
        a.socket.on('error', () => {});
        a.socket.write('x');
        await until('the echo connection', () => (echo.sockets[before]?.bytesRead ?? 0) > 0);
        return { client: a.socket, far: echo.sockets[before] as net.Socket };
      };

      const finClient = await open();
      finClient.client.end();
      await howItEnds(finClient.client);

      const resetClient = await open();
      resetClient.client.resetAndDestroy();

      const resetFar = await open();
      resetFar.far.resetAndDestroy();

      const idle = await open();
      await howItEnds(idle.client);

      await until('four tunnels logged', () => records.length === 4);
      const drained = await open();
      drained.client.resume();
      await proxy.close(0);
      await echo.close();

      assert.deepEqual(records.map((r) => r['close']).sort(), [
        'client_closed',
        'client_reset',
        'drain',
        'idle_timeout',
        'upstream_reset',
      ]);
      assert.ok(records.every((r) => r['status'] === 200 && r['method'] === 'CONNECT'));
      // The byte counts are the relay's: one byte each way for the tunnel that ended with a FIN (its echo came first).
      const fin = records.find((r) => r['close'] === 'client_closed');
      assert.equal(fin?.['bytes_up'], 1);
      assert.equal(fin?.['bytes_down'], 1);
    },
  );
