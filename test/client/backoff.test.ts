import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { backoffDelay, DEFAULT_BACKOFF, MAX_TIMER_DELAY } from '../../src/client/backoff.js';

/** A random() that always returns `x`, for exact expectations. */
const always = (x: number) => () => x;
const TOP = 1 - Number.EPSILON;

describe('backoffDelay: exponential with full jitter', () => {
  it('draws uniformly between 0 and the capped exponential', () => {
    for (let attempt = 0; attempt < 8; attempt++) {
      const ceiling = Math.min(30_000, 500 * 2 ** attempt);
      assert.equal(backoffDelay(attempt, {}, always(0)), 0, `attempt ${attempt}`);
      assert.equal(backoffDelay(attempt, {}, always(0.5)), Math.floor(ceiling / 2), `attempt ${attempt}`);
      assert.equal(backoffDelay(attempt, {}, always(TOP)), ceiling - 1, `attempt ${attempt}`);
    }
  });

  it('uses the defaults: 500 ms first, doubling, capped at 30 s', () => {
    assert.deepEqual(DEFAULT_BACKOFF, { initialDelay: 500, maxDelay: 30_000, factor: 2 });
    assert.equal(backoffDelay(0, {}, always(TOP)), 499);
    assert.equal(backoffDelay(1, {}, always(TOP)), 999);
    assert.equal(backoffDelay(6, {}, always(TOP)), 29_999);
    assert.equal(backoffDelay(7, {}, always(TOP)), 29_999);
    assert.equal(backoffDelay(1_000_000, {}, always(TOP)), 29_999);
  });

  it('honours initialDelay, factor and maxDelay', () => {
    const o = { initialDelay: 100, factor: 3, maxDelay: 1000 };
    assert.equal(backoffDelay(0, o, always(TOP)), 99);
    assert.equal(backoffDelay(1, o, always(TOP)), 299);
    assert.equal(backoffDelay(2, o, always(TOP)), 899);
    assert.equal(backoffDelay(3, o, always(TOP)), 999);
    assert.equal(backoffDelay(5, { initialDelay: 0 }, always(TOP)), 0);
    assert.equal(backoffDelay(5, { factor: 1, initialDelay: 250 }, always(TOP)), 249);
  });

  it('never exceeds what a Node timer honours, even with maxDelay Infinity', () => {
    for (const attempt of [30, 64, 1000, Number.MAX_SAFE_INTEGER]) {
      const d = backoffDelay(attempt, { maxDelay: Infinity }, always(TOP));
      assert.ok(d <= MAX_TIMER_DELAY, String(d));
      assert.ok(d > 1_000_000);
    }
    assert.ok(
      backoffDelay(0, { initialDelay: Infinity, maxDelay: Infinity }, always(0.5)) <= MAX_TIMER_DELAY,
    );
  });

  it('falls back to the defaults for NaN or negative options, and treats a negative attempt as 0', () => {
    assert.equal(backoffDelay(0, { initialDelay: NaN }, always(TOP)), 499);
    assert.equal(backoffDelay(0, { initialDelay: -5 }, always(TOP)), 499);
    assert.equal(backoffDelay(10, { maxDelay: NaN }, always(TOP)), 29_999);
    assert.equal(backoffDelay(1, { factor: 0.5 }, always(TOP)), 999);
    assert.equal(backoffDelay(-3, {}, always(TOP)), 499);
  });

  it('is a whole number within [0, ceiling) for any options and draw (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 200 }),
        fc.record({
          initialDelay: fc.double({ min: 0, max: 1e7, noNaN: true }),
          maxDelay: fc.double({ min: 0, max: 1e12, noNaN: true }),
          factor: fc.double({ min: 1, max: 10, noNaN: true }),
        }),
        fc.double({ min: 0, max: TOP, noNaN: true }),
        (attempt, o, r) => {
          const d = backoffDelay(attempt, o, always(r));
          assert.ok(Number.isInteger(d));
          assert.ok(d >= 0);
          assert.ok(d <= Math.min(o.maxDelay, MAX_TIMER_DELAY, o.initialDelay * o.factor ** attempt));
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('grows monotonically in its ceiling with the attempt (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 100 }), (attempt) => {
        assert.ok(backoffDelay(attempt + 1, {}, always(TOP)) >= backoffDelay(attempt, {}, always(TOP)));
      }),
    );
  });
});
