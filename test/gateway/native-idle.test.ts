/**
 * What an idle WebSocket keeps while the native relay holds it (issue 15): no JavaScript socket at all. The
 * accepted and dialed net.Sockets are let go at the handover (a WeakRef to each is cleared by a full GC), while
 * the duties they carried live on: the admission slot and the upstream's open count (least-connections) are held
 * as long as the connection is, and given back once when it ends. bench/heap-diff.ts measures the bytes.
 */
import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import { splicedOpen, spliceSupport } from '../../src/serve/splice-relay.js';
import { until } from '../helpers/eventually.js';
import {
  closed,
  echo,
  openWs,
  startGateway,
  startUpstream,
  type TestGateway,
  type Upstream,
} from './peers.js';

let gc: (() => void) | undefined;
/** Node's `gc`, exposed for this check only; a few rounds so weak references are cleared. */
async function fullGc(): Promise<void> {
  if (gc === undefined) {
    v8.setFlagsFromString('--expose-gc');
    gc = vm.runInNewContext('gc') as () => void;
  }
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
}

/**
 * Weak references to the sockets this process accepts on `port` or dials from now on (Node's net diagnostics
 * channels), taken as they are made: a destroyed socket no longer says its ports.
 */
function watchSockets(port: number): {
  accepted: WeakRef<net.Socket>[];
  dialed: WeakRef<net.Socket>[];
  stop(): void;
} {
  const accepted: WeakRef<net.Socket>[] = [];
  const dialed: WeakRef<net.Socket>[] = [];
  const onAccept = (m: unknown): void => {
    const { socket } = m as { socket: net.Socket };
    if (socket.localPort === port) accepted.push(new WeakRef(socket));
  };
  const onDial = (m: unknown): void => {
    dialed.push(new WeakRef((m as { socket: net.Socket }).socket));
  };
  diagnostics.subscribe('net.server.socket', onAccept);
  diagnostics.subscribe('net.client.socket', onDial);
  return {
    accepted,
    dialed,
    stop: () => {
      diagnostics.unsubscribe('net.server.socket', onAccept);
      diagnostics.unsubscribe('net.client.socket', onDial);
    },
  };
}

const native = spliceSupport().available;

describe(
  'gateway, native relay: an idle WebSocket keeps no net.Socket',
  { skip: !native, timeout: 30_000 },
  () => {
    let a: Upstream;
    let b: Upstream;
    let gw: TestGateway;
    before(async () => {
      [a, b] = await Promise.all([startUpstream('a'), startUpstream('b')]);
      gw = await startGateway(`
listen: 127.0.0.1:0
warm: 0
routes: [{ path: /, upstream: [ ${a.url}, ${b.url} ], balance: least-connections }]
`);
    });
    after(async () => {
      await gw.gateway.close();
      await Promise.all([a.close(), b.close()]);
    });

    it("the gateway's two sockets are collected while the addon holds the WebSocket", async () => {
      const watch = watchSockets(Number(new URL(gw.url).port));
      const { ws } = await openWs(`${gw.wsUrl}/idle`);
      watch.stop();
      try {
        await until('the native relay has it', () => splicedOpen() === 1);
        // The test's own client socket is dialed too, and stays: the gateway's is the other one.
        const own = (ws as unknown as { _socket: net.Socket })._socket;
        const gatewaySides = [...watch.accepted, ...watch.dialed.filter((r) => r.deref() !== own)];
        assert.equal(gatewaySides.length, 2, 'one accepted and one dialed socket');
        await fullGc();
        const kept = gatewaySides.filter((r) => r.deref() !== undefined).length;
        assert.equal(kept, 0, 'no socket object kept for an idle native WebSocket');
      } catch (e) {
        ws.terminate();
        throw e;
      }
      // Still the same WebSocket, relayed both ways.
      assert.equal((await echo(ws, 'still here')).toString(), 'still here');
      ws.close();
      await closed(ws);
      await until('logged', () => gw.records.length === 1);
      await until('the slot given back', () => gw.gateway.connections === 0);
    });

    it('the admission slot and the upstream count are held while native, and given back once at the end', async () => {
      const first = await openWs(`${gw.wsUrl}/one`);
      await until('the native relay has it', () => splicedOpen() === 1);
      await fullGc();
      assert.equal(gw.gateway.connections, 1, 'its admission slot is held');
      // least-connections: the busy upstream's count lives on while the addon holds the connection.
      const second = await openWs(`${gw.wsUrl}/two`);
      assert.notEqual(second.report['name'], first.report['name'], 'the second goes to the idle upstream');
      await until('both native', () => splicedOpen() === 2);
      // The first one ends: its upstream's count goes down (once), so the next WebSocket goes there, not to the busy.
      first.ws.close();
      await closed(first.ws);
      await until('one native relay left', () => splicedOpen() === 1);
      await until('its slot given back', () => gw.gateway.connections === 1);
      const third = await openWs(`${gw.wsUrl}/three`);
      assert.equal(
        third.report['name'],
        first.report['name'],
        'the upstream the first one left is the idle one',
      );
      for (const { ws } of [second, third]) ws.close();
      await Promise.all([second, third].map(({ ws }) => closed(ws)));
      await until('no native relay open', () => splicedOpen() === 0);
      await until('every slot given back', () => gw.gateway.connections === 0);
      assert.equal(gw.gateway.connections, 0, 'given back once each');
    });
  },
);
