/**
 * `wsvia proxy` under faults, on both of its sides: CONNECT tunnels whose destination sits behind the fault relay,
 * and the WebSocket client `connect()` reaching the proxy through the fault relay. Every session is byte-exact or
 * fails loudly; none ends cleanly short (issue 12).
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { connect } from '../../src/client/connect.js';
import { BadProxyList } from '../../src/dial/bad-proxies.js';
import { describePlan, FAULT_KINDS, startFaultRelay, type FaultRelay } from '../helpers/fault-relay.js';
import { startProxy, startTcpEcho, type RunningWsviaProxy, type TcpPeer } from '../helpers/wsvia-proxy.js';
import { runSeed, startWsEcho, type WsEcho } from './parts.js';
import {
  dialConnect,
  runSessions,
  seededBytes,
  Tally,
  tcpSession,
  wsSession,
  type Outcome,
} from './sessions.js';

const SESSIONS = FAULT_KINDS.length * 2;
const BYTES = 48 * 1024;
const DEADLINE = 5000;

function check(tally: Tally, relay: FaultRelay): void {
  const why = `seed ${relay.seed} (WSVIA_FAULT_SEED reproduces it): ${tally.summary()}\nplans: ${relay.plans.map(describePlan).join('; ')}`;
  assert.deepEqual(tally.silent, [], why);
  assert.ok(tally.exact > 0, why);
  assert.ok(tally.failed > 0, why);
}

describe('faults: wsvia proxy', () => {
  const seed = runSeed();
  let echo: TcpPeer;
  let wsEcho: WsEcho;
  let proxy: RunningWsviaProxy;
  let beforeEcho: FaultRelay;
  let beforeProxy: FaultRelay;

  before(async () => {
    [echo, wsEcho, proxy] = await Promise.all([startTcpEcho(), startWsEcho(), startProxy()]);
    beforeEcho = await startFaultRelay({ targetPort: echo.port, seed, spanBytes: BYTES });
    beforeProxy = await startFaultRelay({ targetPort: proxy.port, seed: seed + 1, spanBytes: BYTES });
  });
  after(async () => {
    await Promise.all([beforeEcho?.close(), beforeProxy?.close()]);
    await proxy?.close();
    await Promise.all([echo?.close(), wsEcho?.close()]);
  });

  it('CONNECT to a destination behind faults: byte-exact or failed loudly, never cut short silently', async (t) => {
    const tally = new Tally();
    await runSessions(
      SESSIONS,
      SESSIONS,
      (i) =>
        tcpSession(
          () => dialConnect(proxy.port, `127.0.0.1:${beforeEcho.port}`),
          seededBytes(seed + i, BYTES),
          DEADLINE,
        ),
      tally,
      'CONNECT',
    );
    t.diagnostic(`seed ${seed}: ${tally.summary()}`);
    check(tally, beforeEcho);
  });

  it('CONNECT: a destination that resets right behind its last bytes is a reset at the client, not an end', async () => {
    // The answer and the RST leave together: on Node 20 and 22 the proxy's read of them looked like a FIN.
    const sockets = new Set<net.Socket>();
    const resetter = net.createServer({ allowHalfOpen: true }, (s) => {
      sockets.add(s);
      s.on('error', () => {});
      s.on('end', () => {
        s.write(Buffer.alloc(1000, 1));
        s.resetAndDestroy();
      });
      s.resume();
    });
    await new Promise<void>((r) => resetter.listen(0, '127.0.0.1', r));
    const port = (resetter.address() as net.AddressInfo).port;
    try {
      const tally = new Tally();
      await runSessions(
        10,
        5,
        (i) => tcpSession(() => dialConnect(proxy.port, `127.0.0.1:${port}`), seededBytes(i, 100), DEADLINE),
        tally,
        'reset behind data',
      );
      assert.deepEqual(tally.silent, [], tally.summary());
      assert.equal(tally.failures.get('ECONNRESET'), 10, tally.summary());
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => resetter.close(r));
    }
  });

  it('connect() through the proxy behind faults: all messages echoed or a close that is not 1000', async (t) => {
    const tally = new Tally();
    const session = async (i: number): Promise<Outcome> => {
      let ws;
      try {
        ws = await connect(`ws://127.0.0.1:${wsEcho.port}/`, {
          proxy: `http://127.0.0.1:${beforeProxy.port}`,
          badProxies: new BadProxyList(),
          timeouts: { tcp: 3000, tunnel: 3000, upgrade: 3000 },
        });
      } catch (e) {
        return { kind: 'failed', reason: `open: ${(e as { code?: string }).code ?? String(e)}` };
      }
      return wsSession(ws, seededBytes(seed + 100 + i, BYTES), 4096, DEADLINE);
    };
    await runSessions(SESSIONS, SESSIONS, session, tally, 'connect()');
    t.diagnostic(`seed ${seed + 1}: ${tally.summary()}`);
    check(tally, beforeProxy);
  });
});
