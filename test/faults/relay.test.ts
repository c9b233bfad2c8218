/**
 * The fault relay itself, straight in front of a TCP echo: the faults that lose nothing are byte-exact (half-close
 * included), the others fail loudly, and a seed gives the same plans every time.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { LOSSLESS_FAULTS, startFaultRelay, type FaultKind, type FaultRelay } from '../helpers/fault-relay.js';
import { startTcpEcho, type TcpPeer } from '../helpers/wsvia-proxy.js';
import { runSeed } from './parts.js';
import { dialTcp, runSessions, seededBytes, Tally, tcpSession } from './sessions.js';

describe('the fault relay', () => {
  const seed = runSeed();
  let echo: TcpPeer;
  const relays: FaultRelay[] = [];
  before(async () => {
    echo = await startTcpEcho();
  });
  after(async () => {
    await Promise.all(relays.map((r) => r.close()));
    await echo?.close();
  });

  async function through(kinds: readonly FaultKind[], sessions: number, deadline: number): Promise<Tally> {
    const relay = await startFaultRelay({ targetPort: echo.port, seed, kinds, spanBytes: 32 * 1024 });
    relays.push(relay);
    const tally = new Tally();
    await runSessions(
      sessions,
      sessions,
      (i) => tcpSession(() => dialTcp(relay.port), seededBytes(seed + i, 32 * 1024), deadline),
      tally,
      kinds.join(','),
    );
    return tally;
  }

  it('none, tiny writes, stalls and a slow reader carry every byte and the half-close', async () => {
    const tally = await through(LOSSLESS_FAULTS, LOSSLESS_FAULTS.length * 2, 10_000);
    assert.equal(tally.exact, LOSSLESS_FAULTS.length * 2, `seed ${seed}: ${tally.summary()}`);
  });

  it('a reset reaches the client as ECONNRESET, half-open and black hole as a timeout', async () => {
    const resets = await through(['reset'], 4, 5000);
    assert.equal(resets.failures.get('ECONNRESET'), 4, `seed ${seed}: ${resets.summary()}`);
    const silent = await through(['half-open', 'black-hole'], 4, 1500);
    assert.equal(silent.failures.get('timeout'), 4, `seed ${seed}: ${silent.summary()}`);
  });

  it('gives every connection the same plan for the same seed', async () => {
    const a = await startFaultRelay({ targetPort: echo.port, seed: 42 });
    const b = await startFaultRelay({ targetPort: echo.port, seed: 42 });
    relays.push(a, b);
    for (const r of [a, b])
      await runSessions(
        7,
        7,
        () => tcpSession(() => dialTcp(r.port), Buffer.from('x'), 1500),
        new Tally(),
        'plan',
      );
    const plan = (r: FaultRelay): string[] =>
      r.plans.map((p) => `${p.kind} ${p.direction} ${p.atByte} ${p.stallMs}`).sort();
    assert.deepEqual(plan(a), plan(b));
    assert.equal(new Set(a.plans.map((p) => p.kind)).size, 7);
  });
});
