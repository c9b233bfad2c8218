/**
 * Memory per idle connection: a fresh peer, a few connections opened and closed first (so code loading is not
 * charged to the connections), RSS of its process tree, then `count` idle connections held by a load process,
 * RSS again. The delta divided by the connections actually opened.
 */
import type { Job } from './jobs.js';
import { holdIdle, runJob, settledRssKiB, sleep } from './measure.js';
import type { BenchPeer } from './peers.js';
import { processCount, pssKiB } from './procfs.js';

export interface MemoryResult {
  /** KiB of RSS per idle connection. */
  readonly kibPerConnection: number;
  /**
   * KiB of RSS per idle connection after the connections stayed idle `settleMs` longer (what an operator sees once
   * the runtime has had a quiet moment: V8 collects the setup's garbage when the allocation rate drops); only when
   * asked for.
   */
  readonly kibSettled?: number;
  /** KiB of PSS per idle connection (fairer for a fork per connection, whose shared pages RSS counts again). */
  readonly pssKibPerConnection: number;
  readonly opened: number;
  readonly errors: number;
  readonly baseKiB: number;
  readonly processes: number;
  readonly firstError?: string;
}

export async function memoryPerConnection(
  start: () => Promise<BenchPeer>,
  warm: (peer: BenchPeer) => Job,
  idle: (peer: BenchPeer) => Job,
  settleMs = 0,
): Promise<MemoryResult> {
  const peer = await start();
  try {
    await sleep(300);
    await runJob(warm(peer));
    // Both readings subtract a baseline that had `settleMs` of quiet first: by then V8 has collected the start-up's
    // and the warm-up's garbage. A baseline still holding it credits the connections with whatever a collection
    // during their burst frees, and makes a peer that collects sooner look as if a connection cost less.
    await sleep(700 + settleMs);
    const base = await settledRssKiB(peer.pid);
    const basePss = pssKiB(peer.pid);
    const held = await holdIdle(idle(peer));
    try {
      await sleep(1000);
      const after = await settledRssKiB(peer.pid);
      const afterPss = pssKiB(peer.pid);
      const n = Math.max(1, held.result.opened);
      let settled: number | undefined;
      if (settleMs > 0) {
        await sleep(settleMs);
        settled = ((await settledRssKiB(peer.pid)) - base) / n;
      }
      return {
        kibPerConnection: (after - base) / n,
        ...(settled !== undefined ? { kibSettled: settled } : {}),
        pssKibPerConnection: (afterPss - basePss) / n,
        opened: held.result.opened,
        errors: held.result.errors,
        baseKiB: base,
        processes: processCount(peer.pid),
        ...(held.result.firstError !== undefined ? { firstError: held.result.firstError } : {}),
      };
    } finally {
      await held.release();
    }
  } finally {
    await peer.stop();
  }
}
