/**
 * `wsvia tunnel -L` -> squid -> `wsvia bridge`, as real processes, with the fault relay between squid and the
 * bridge: squid sees the resets, stalls and cuts, and whatever it makes of them the tunnel's local socket gets
 * every byte or a reset, never a clean end short (issue 12).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { describePlan, FAULT_KINDS, startFaultRelay, type FaultRelay } from '../helpers/fault-relay.js';
import type { RunningPeer } from '../helpers/process.js';
import { startServerCli, type RunningServer } from '../helpers/server-cli.js';
import { startSquid } from '../helpers/squid.js';
import { startTcpEcho, type TcpPeer } from '../helpers/wsvia-proxy.js';
import { runSeed, startTunnelCli, type RunningTunnel } from './parts.js';
import { dialTcp, runSessions, seededBytes, Tally, tcpSession } from './sessions.js';

const SESSIONS = FAULT_KINDS.length * 2;
const BYTES = 48 * 1024;
const DEADLINE = 5000;

describe('faults: wsvia tunnel -> squid -> wsvia bridge, real processes', () => {
  const seed = runSeed();
  let echo: TcpPeer;
  let bridge: RunningServer;
  let squid: RunningPeer;
  let relay: FaultRelay;
  let tunnel: RunningTunnel;

  before(async () => {
    echo = await startTcpEcho();
    [bridge, squid] = await Promise.all([
      startServerCli('bridge', ['--listen', '127.0.0.1:0', '--target', `127.0.0.1:${echo.port}`]),
      startSquid(),
    ]);
    relay = await startFaultRelay({ targetPort: bridge.port, seed, spanBytes: BYTES });
    tunnel = await startTunnelCli([`ws://127.0.0.1:${relay.port}/`, '-x', squid.url, '--timeout', '3']);
  });
  after(async () => {
    await tunnel?.stop();
    await relay?.close();
    await Promise.all([bridge?.stop(), squid?.stop()]);
    await echo?.close();
  });

  it('faults between squid and the bridge: byte-exact or failed loudly, never cut short silently', async (t) => {
    const tally = new Tally();
    await runSessions(
      SESSIONS,
      SESSIONS,
      (i) => tcpSession(() => dialTcp(tunnel.port), seededBytes(seed + i, BYTES), DEADLINE),
      tally,
      'squid',
    );
    t.diagnostic(`seed ${seed}: ${tally.summary()}`);
    const why = `seed ${seed} (WSVIA_FAULT_SEED reproduces it): ${tally.summary()}\nplans: ${relay.plans.map(describePlan).join('; ')}`;
    assert.deepEqual(tally.silent, [], why);
    assert.ok(tally.exact > 0, why);
    assert.ok(tally.failed > 0, why);
  });
});
