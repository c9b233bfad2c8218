/** What the sections share: interleaved rounds, progress lines, medians into rows. */
import type { EchoResult, LatencyResult, WsTarget } from '../jobs.js';
import { median, percentile, runJob, withCpu } from '../measure.js';
import type { Row } from '../report.js';

/** One column of a table: a peer (or direct) and the pid whose cost is read, if any. */
export interface Contender {
  readonly name: string;
  readonly pid?: number;
  readonly isLimit?: boolean;
}

export function log(line: string): void {
  process.stdout.write(`  ${line}\n`);
}

/** The contenders in a different order each round, so none is always measured first or last. */
export function rotated<T>(xs: readonly T[], round: number): T[] {
  const k = round % Math.max(1, xs.length);
  return [...xs.slice(k), ...xs.slice(0, k)];
}

/** Samples per contender and metric, reduced to medians. */
export class Samples {
  readonly #data = new Map<string, Map<string, number[]>>();

  add(contender: string, metric: string, value: number): void {
    if (!Number.isFinite(value)) return;
    let m = this.#data.get(contender);
    if (!m) this.#data.set(contender, (m = new Map<string, number[]>()));
    let xs = m.get(metric);
    if (!xs) m.set(metric, (xs = []));
    xs.push(value);
  }

  row(c: Contender): Row {
    const values: Record<string, number> = {};
    const samples: Record<string, number[]> = {};
    for (const [k, xs] of this.#data.get(c.name) ?? []) {
      values[k] = median(xs);
      samples[k] = [...xs];
    }
    return { name: c.name, values, samples, ...(c.isLimit ? { isLimit: true } : {}) };
  }
}

export const MB = 1e6;
export const GB = 1e9;

/** Runs `f`, logging and keeping the error instead of ending the whole benchmark. */
export async function attempt(what: string, notes: string[], f: () => Promise<void>): Promise<void> {
  try {
    await f();
  } catch (e) {
    const msg = `${what}: ${(e as Error).message.split('\n')[0]}`;
    log(`! ${msg}`);
    if (!notes.includes(msg)) notes.push(msg);
  }
}

/**
 * Every step for every contender, round after round: within a round each step runs for all contenders back to
 * back (in an order rotated each round), so a figure and its comparison are taken minutes apart at most on a
 * machine whose load changes.
 */
export async function interleave(
  rounds: number,
  contenders: readonly Contender[],
  steps: readonly Step[],
  notes: string[],
): Promise<void> {
  for (let round = 0; round < rounds; round++) {
    log(`round ${round + 1}/${rounds}`);
    for (const step of steps) {
      const t0 = Date.now();
      for (const c of rotated(contenders, round))
        await attempt(`${c.name} ${step.what}`, notes, () => step.run(c, round));
      log(`  ${step.what}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    }
  }
}

export interface Step {
  readonly what: string;
  run(c: Contender, round: number): Promise<void>;
}

/** WebSocket setup latency: p50 and p99 over `count` sequential handshakes through the contender. */
export function wsSetupStep(
  target: (c: Contender) => WsTarget,
  count: number,
  samples: Samples,
  notes: string[],
): Step {
  return {
    what: 'setup',
    run: async (c, round) => {
      const r = await runJob<LatencyResult>({ kind: 'ws-setup', ws: target(c), count });
      samples.add(c.name, 'p50', percentile(r.latenciesMs, 50));
      samples.add(c.name, 'p99', percentile(r.latenciesMs, 99));
      if (r.errors) notes.push(`${c.name}: ${r.errors} setup errors in round ${round + 1}`);
    },
  };
}

/**
 * Echo of 64 KiB WebSocket messages through the contender: MB/s, and its CPU per GB relayed when it is a process
 * of ours (each echoed byte crosses it twice: to the server and back).
 */
export function wsBulkEchoStep(
  what: string,
  target: (c: Contender) => WsTarget,
  seconds: number,
  samples: Samples,
): Step {
  return {
    what,
    run: async (c) => {
      const job = {
        kind: 'ws-echo',
        ws: target(c),
        connections: 2,
        size: 64 * 1024,
        window: 4,
        seconds,
      } as const;
      const { result, cpu } = c.pid
        ? await withCpu<EchoResult>(c.pid, job)
        : { result: await runJob<EchoResult>(job), cpu: NaN };
      samples.add(c.name, 'mbps', result.bytes / MB / result.seconds);
      if (c.pid) samples.add(c.name, 'cpuPerGb', cpu / ((2 * result.bytes) / GB));
    },
  };
}
