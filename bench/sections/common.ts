/** What the sections share: interleaved rounds, progress lines, medians into rows. */
import { median } from '../measure.js';
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
    if (!m) this.#data.set(contender, (m = new Map()));
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
  steps: readonly { what: string; run: (c: Contender, round: number) => Promise<void> }[],
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
