/**
 * serve/young-generation.ts: a window in which many connections closed and few are open is churn; a burst that
 * stays open, a quiet window, or churn beside many held connections is not; the flag is set only when the answer
 * changes, once per window.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ChurnWindow, YoungGenerationGrowth } from '../../src/serve/young-generation.js';
import { until } from '../helpers/eventually.js';

function churn(w: { opened(): void; closed(): void }, n: number): void {
  for (let i = 0; i < n; i++) {
    w.opened();
    w.closed();
  }
}

describe('young generation growth under churn (serve/young-generation)', () => {
  it('many closed and few open is churn; the next window starts empty', () => {
    const w = new ChurnWindow(100, 200);
    churn(w, 100);
    assert.equal(w.next(), true);
    assert.equal(w.next(), false, 'a window with nothing closed');
  });

  it('fewer than minClosed closed is not churn', () => {
    const w = new ChurnWindow(100, 200);
    churn(w, 99);
    assert.equal(w.next(), false);
  });

  it('a burst that stays open is not churn, however large', () => {
    const w = new ChurnWindow(100, 200);
    for (let i = 0; i < 5000; i++) w.opened();
    assert.equal(w.next(), false);
  });

  it('churn beside maxOpen held connections is not churn; below maxOpen it is', () => {
    const w = new ChurnWindow(100, 200);
    for (let i = 0; i < 200; i++) w.opened();
    churn(w, 500);
    assert.equal(w.next(), false, '200 held');
    w.closed();
    churn(w, 100);
    assert.equal(w.next(), true, '199 held');
  });

  it('sets the growth once when churn starts and once when it ends, from its timer', async () => {
    const calls: boolean[] = [];
    const g = new YoungGenerationGrowth({
      maxOpen: 200,
      minClosed: 10,
      windowMs: 20,
      setGrowth: (x) => calls.push(x),
    });
    const keep = setInterval(() => {}, 1000);
    try {
      const churnOnTicks = setInterval(() => churn(g, 20), 5);
      await until('growth', () => calls.length === 1);
      clearInterval(churnOnTicks);
      assert.deepEqual(calls, [true]);
      assert.equal(g.growing, true);
      await until('held again', () => calls.length === 2);
      assert.deepEqual(calls, [true, false]);
    } finally {
      clearInterval(keep);
      g.stop();
    }
  });
});
