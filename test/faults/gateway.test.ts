/**
 * `wsvia gateway` with the fault relay in front of its upstream (a `ws` echo): a client gets every message back,
 * or a close whose code says the session did not end normally; never a 1000 after a cut upstream (issue 12 §1).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { describePlan, FAULT_KINDS, startFaultRelay, type FaultRelay } from '../helpers/fault-relay.js';
import { startGateway, type TestGateway } from '../gateway/peers.js';
import { runSeed, startWsEcho, type WsEcho } from './parts.js';
import { reasonOf, runSessions, seededBytes, Tally, wsSession, type Outcome } from './sessions.js';

const SESSIONS = FAULT_KINDS.length * 2;
const BYTES = 48 * 1024;
const DEADLINE = 5000;

/** Opens a WebSocket to the gateway; a refused or failed upgrade is a failure of the session. */
function open(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { handshakeTimeout: 3000 });
    ws.once('open', () => {
      ws.off('error', reject);
      resolve(ws);
    });
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => {
      res.resume();
      ws.terminate();
      reject(Object.assign(new Error(`answered ${res.statusCode}`), { code: `HTTP_${res.statusCode}` }));
    });
  });
}

describe('faults: wsvia gateway -> upstream', () => {
  const seed = runSeed();
  let upstream: WsEcho;
  let relay: FaultRelay;
  let gw: TestGateway;

  before(async () => {
    upstream = await startWsEcho();
    relay = await startFaultRelay({ targetPort: upstream.port, seed, spanBytes: BYTES });
    gw = await startGateway(
      `listen: 127.0.0.1:0\nroutes: [{ path: /, upstream: ws://127.0.0.1:${relay.port} }]\nconnect-timeout: 2`,
    );
  });
  after(async () => {
    await gw?.gateway.close();
    await relay?.close();
    await upstream?.close();
  });

  it('every message back, or a close code other than 1000 when the upstream hop was cut', async (t) => {
    const tally = new Tally();
    const session = async (i: number): Promise<Outcome> => {
      let ws;
      try {
        ws = await open(`${gw.wsUrl}/`);
      } catch (e) {
        return { kind: 'failed', reason: `open: ${reasonOf(e)}` };
      }
      return wsSession(ws, seededBytes(seed + i, BYTES), 4096, DEADLINE);
    };
    await runSessions(SESSIONS, SESSIONS, session, tally, 'gateway');
    t.diagnostic(`seed ${seed}: ${tally.summary()}`);
    const why = `seed ${seed} (WSVIA_FAULT_SEED reproduces it): ${tally.summary()}\nplans: ${relay.plans.map(describePlan).join('; ')}`;
    assert.deepEqual(tally.silent, [], why);
    assert.ok(tally.exact > 0, why);
    assert.ok(tally.failed > 0, why);
  });
});
