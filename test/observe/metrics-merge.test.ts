/** One /metrics for --workers N: counters and histograms summed over the workers, gauges kept per worker. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { mergeExpositions } from '../../src/observe/metrics-merge.js';
import { LATENCY_BUCKETS, Registry } from '../../src/observe/metrics.js';

function workerRegistry(opened: number, open: number, latencies: readonly number[]): string {
  const r = new Registry();
  r.counter('x_opened_total', 'Opened, by route').inc({ route: '/a "quoted"' }, opened);
  r.gauge('x_open', 'Open now').set({}, open);
  const h = r.histogram('x_seconds', 'Latency', LATENCY_BUCKETS);
  for (const l of latencies) h.observe(l, { route: '/a' });
  return r.render();
}

function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('mergeExpositions', () => {
  it('sums counters, keeps one HELP and TYPE per family, and labels gauges by worker', () => {
    const text = mergeExpositions([
      { worker: 0, text: workerRegistry(3, 1, [0.002]) },
      { worker: 1, text: workerRegistry(4, 2, [0.002, 7]) },
    ]);
    assert.equal(sample(text, 'x_opened_total{route="/a \\"quoted\\""}'), 7);
    assert.equal(sample(text, 'x_open{worker="0"}'), 1);
    assert.equal(sample(text, 'x_open{worker="1"}'), 2);
    assert.equal(sample(text, 'x_open'), undefined, 'no unlabelled gauge that would double a sum()');
    assert.equal(sample(text, 'x_seconds_count{route="/a"}'), 3);
    assert.equal(sample(text, 'x_seconds_bucket{le="0.0025",route="/a"}'), 2);
    assert.equal(sample(text, 'x_seconds_bucket{le="+Inf",route="/a"}'), 3);
    assert.equal(sample(text, 'x_seconds_sum{route="/a"}'), 7.004);
    for (const family of ['x_opened_total', 'x_open', 'x_seconds']) {
      assert.equal(
        text
          .split('\n')
          .filter(
            (l) =>
              l ===
              `# TYPE ${family} ${family === 'x_open' ? 'gauge' : family === 'x_seconds' ? 'histogram' : 'counter'}`,
          ).length,
        1,
      );
      assert.equal(text.split('\n').filter((l) => l.startsWith(`# HELP ${family} `)).length, 1);
    }
  });

  it('a gauge with labels gets the worker label first, the others kept', () => {
    const r = new Registry();
    r.gauge('g', 'G').set({ upstream: 'ws://u' }, 1);
    const text = mergeExpositions([{ worker: 3, text: r.render() }]);
    assert.equal(sample(text, 'g{worker="3",upstream="ws://u"}'), 1);
  });

  it('property: every counter total is the sum of the workers’ values', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(fc.nat({ max: 1e6 }), { minLength: 3, maxLength: 3 }), {
          minLength: 1,
          maxLength: 8,
        }),
        (workers) => {
          const parts = workers.map((counts, worker) => {
            const r = new Registry();
            const c = r.counter('c_total', 'C');
            counts.forEach((n, i) => c.inc({ k: String(i) }, n));
            return { worker, text: r.render() };
          });
          const text = mergeExpositions(parts);
          for (let i = 0; i < 3; i++)
            assert.equal(
              sample(text, `c_total{k="${i}"}`),
              workers.reduce((s, w) => s + (w[i] ?? 0), 0),
            );
        },
      ),
    );
  });
});
