/**
 * `wsvia tunnel -L` -> `wsvia bridge` -> a TCP echo, as real processes, with the fault relay on the path: between
 * the tunnel and the bridge, and between the tunnel and a `wsvia proxy` it goes through. Every session is byte-exact
 * or fails loudly (a reset or an error at the tunnel's local socket); none ends cleanly short (issue 12).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { describePlan, FAULT_KINDS, startFaultRelay, type FaultRelay } from '../helpers/fault-relay.js';
import { startServerCli, type RunningServer } from '../helpers/server-cli.js';
import { startTcpEcho, type TcpPeer } from '../helpers/wsvia-proxy.js';
import { runSeed, startTunnelCli, type RunningTunnel } from './parts.js';
import { dialTcp, runSessions, seededBytes, Tally, tcpSession } from './sessions.js';

const SESSIONS = FAULT_KINDS.length * 2;
const BYTES = 48 * 1024;
const DEADLINE = 5000;

/** Runs the sessions through the tunnel and checks the three counts; the message names the seed and the plans. */
async function checkSessions(tunnel: RunningTunnel, relay: FaultRelay, label: string): Promise<Tally> {
  const tally = new Tally();
  await runSessions(
    SESSIONS,
    SESSIONS,
    (i) => tcpSession(() => dialTcp(tunnel.port), seededBytes(relay.seed + i, BYTES), DEADLINE),
    tally,
    label,
  );
  const why = `seed ${relay.seed} (WSVIA_FAULT_SEED=${relay.seed} reproduces it): ${tally.summary()}\nplans: ${relay.plans.map(describePlan).join('; ')}`;
  assert.deepEqual(tally.silent, [], why);
  assert.ok(tally.exact > 0, why);
  assert.ok(tally.failed > 0, why);
  return tally;
}

describe('faults: wsvia tunnel -> wsvia bridge, real processes', () => {
  const seed = runSeed();
  let echo: TcpPeer;
  let bridge: RunningServer;
  let proxy: RunningServer;
  let direct: FaultRelay;
  let beforeProxy: FaultRelay;
  let tunnels: RunningTunnel[] = [];

  before(async () => {
    echo = await startTcpEcho();
    [bridge, proxy] = await Promise.all([
      startServerCli('bridge', ['--listen', '127.0.0.1:0', '--target', `127.0.0.1:${echo.port}`]),
      startServerCli('proxy', ['--port', '0', '--allow', '127.0.0.1', '--allow-ports', '*']),
    ]);
    direct = await startFaultRelay({ targetPort: bridge.port, seed, spanBytes: BYTES });
    beforeProxy = await startFaultRelay({ targetPort: proxy.port, seed: seed + 1, spanBytes: BYTES });
    tunnels = await Promise.all([
      startTunnelCli([`ws://127.0.0.1:${direct.port}/`, '--timeout', '3']),
      startTunnelCli([
        `ws://127.0.0.1:${bridge.port}/`,
        '-x',
        `http://127.0.0.1:${beforeProxy.port}`,
        '--timeout',
        '3',
      ]),
    ]);
  });
  after(async () => {
    await Promise.all(tunnels.map((t) => t.stop()));
    await Promise.all([direct?.close(), beforeProxy?.close()]);
    await Promise.all([bridge?.stop(), proxy?.stop()]);
    await echo?.close();
  });

  it('directly: every session byte-exact or failed loudly (reset, timeout), none cut short silently', async (t) => {
    const tally = await checkSessions(tunnels[0] as RunningTunnel, direct, 'direct');
    t.diagnostic(`seed ${seed}: ${tally.summary()}`);
  });

  it('through wsvia proxy (faults before the proxy): byte-exact or failed loudly, never cut short silently', async (t) => {
    const tally = await checkSessions(tunnels[1] as RunningTunnel, beforeProxy, 'via proxy');
    t.diagnostic(`seed ${seed + 1}: ${tally.summary()}`);
  });
});
