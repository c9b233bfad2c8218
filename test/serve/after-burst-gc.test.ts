/**
 * serve/after-burst-gc.ts: one full collection once a burst of connections has ended, none while connections keep
 * opening, none for a handful, none when they closed again, none over the heap bound; the default collection is
 * V8's own full GC and exposes `gc` to no other context.
 */
import assert from 'node:assert/strict';
import { PerformanceObserver, constants, type PerformanceEntry } from 'node:perf_hooks';
import { describe, it } from 'node:test';
import vm from 'node:vm';
import { AfterBurstCollector, collectionKind } from '../../src/serve/after-burst-gc.js';
import { until } from '../helpers/eventually.js';

/** A collector whose collection resolves `collected` with the time it ran. */
function recording(
  quietMs: number,
  minOpened: number,
): { c: AfterBurstCollector; collected: Promise<number> } {
  let done: (at: number) => void = () => {};
  const collected = new Promise<number>((resolve) => (done = resolve));
  const c = new AfterBurstCollector({ quietMs, minOpened, collect: () => done(performance.now()) });
  return { c, collected };
}

const tick = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The collector's timer does not keep a process alive (a server's listeners do): this test's wait does. */
async function held<T>(p: Promise<T>): Promise<T> {
  const keep = setInterval(() => {}, 1000);
  try {
    return await p;
  } finally {
    clearInterval(keep);
  }
}

describe('collection after a burst of connections (serve/after-burst-gc)', () => {
  it('collects once, quietMs after the last of at least minOpened connections', async () => {
    const { c, collected } = recording(40, 5);
    for (let i = 0; i < 5; i++) c.opened();
    const lastOpened = performance.now();
    const at = await held(collected);
    assert.ok(at - lastOpened >= 39, `collected ${(at - lastOpened).toFixed(1)} ms after the last opened`);
    assert.equal(c.collections, 1);
    c.stop();
  });

  it('arms its timer with whole milliseconds only, also when a connection postponed it', async () => {
    const delays: number[] = [];
    const real = globalThis.setTimeout;
    const recorder = (...args: Parameters<typeof setTimeout>): NodeJS.Timeout => {
      delays.push(Number(args[1]));
      return real(...args);
    };
    globalThis.setTimeout = Object.assign<typeof recorder, typeof setTimeout>(recorder, real);
    try {
      const { c, collected } = recording(60, 2);
      c.opened();
      c.opened();
      await new Promise((r) => real(r, 25));
      c.opened();
      await held(collected);
      c.stop();
    } finally {
      globalThis.setTimeout = real;
    }
    // The first delay is quietMs; the second is what was left of it after the postponing connection.
    assert.ok(delays.length >= 2, `the collector armed ${delays.length} timer(s): ${delays.join(', ')}`);
    for (const d of delays) assert.ok(Number.isInteger(d), `a timer was armed with ${d} ms`);
  });

  it('a connection opening during the quiet time postpones the collection', async () => {
    const { c, collected } = recording(400, 2);
    c.opened();
    c.opened();
    // The timer armed now fires 400 ms on, finds a connection 300 ms old and waits 100 ms more.
    await tick(100);
    c.opened();
    const lastOpened = performance.now();
    const at = await held(collected);
    assert.ok(at - lastOpened >= 399, `collected ${(at - lastOpened).toFixed(1)} ms after the last opened`);
    assert.equal(c.collections, 1);
    c.stop();
  });

  it('a burst smaller than minOpened is counted toward the next one, not collected on its own', async () => {
    const { c, collected } = recording(20, 10);
    for (let i = 0; i < 9; i++) c.opened();
    // Well past the quiet time: the nine alone armed nothing.
    await tick(80);
    assert.equal(c.collections, 0);
    const tenth = performance.now();
    c.opened();
    const at = await held(collected);
    assert.ok(at - tenth >= 19);
    assert.equal(c.collections, 1);
    c.stop();
  });

  it('a burst whose connections closed again is left to V8; one whose connections stay open is collected', async () => {
    let collected = 0;
    const c = new AfterBurstCollector({ quietMs: 10, minOpened: 4, collect: () => collected++ });
    for (let i = 0; i < 6; i++) c.opened();
    for (let i = 0; i < 3; i++) c.closed();
    await held(until('the burst ended', () => c.closedAgain === 1));
    assert.equal(collected, 0);
    // The next burst opens four and keeps them: seven open.
    for (let i = 0; i < 4; i++) c.opened();
    await held(until('the second burst collected', () => c.collections === 1));
    assert.equal(collected, 1);
    assert.equal(c.closedAgain, 1);
    c.stop();
  });

  it('a heap over maxHeapBytes is left to V8 (no pause that long)', async () => {
    let collected = 0;
    const c = new AfterBurstCollector({
      quietMs: 10,
      minOpened: 1,
      maxHeapBytes: 100 * 1024 * 1024,
      heapUsed: () => 101 * 1024 * 1024,
      collect: () => collected++,
    });
    c.opened();
    await held(until('the burst ended', () => c.skipped === 1));
    assert.equal(collected, 0);
    assert.equal(c.collections, 0);
    c.stop();
  });

  it("the collection is V8's last-resort one from V8 12 (Node 22, 24), a full one on V8 11 (Node 20)", () => {
    assert.equal(collectionKind('11.3.244.8-node.33'), 'full');
    assert.equal(collectionKind('12.4.254.21-node.33'), 'last-resort');
    assert.equal(collectionKind('13.6.233.17-node.37'), 'last-resort');
    assert.equal(collectionKind('dev'), 'full');
  });

  it('on V8 12 and later the default collection runs two full collections (the last-resort one), one before', async () => {
    const expected = collectionKind(process.versions.v8) === 'last-resort' ? 2 : 1;
    const c = new AfterBurstCollector({ quietMs: 1, minOpened: 1 });
    let majors = 0;
    const obs = new PerformanceObserver((list) => {
      for (const e of list.getEntries())
        if (
          (e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind ===
          constants.NODE_PERFORMANCE_GC_MAJOR
        )
          majors++;
    });
    obs.observe({ entryTypes: ['gc'] });
    try {
      c.opened();
      await held(until('the collection ran', () => c.collections === 1));
      // Within 2 s: V8's memory reducer may run a full collection of its own some seconds on.
      await held(until(`${expected} full collection(s) observed`, () => majors >= expected, 2000));
    } finally {
      obs.disconnect();
      c.stop();
    }
  });

  it("the default collection is V8's full GC, and no other context gets a gc function", async () => {
    const c = new AfterBurstCollector({ quietMs: 1, minOpened: 1 });
    assert.equal(vm.runInNewContext('typeof gc'), 'undefined');
    const major = new Promise<void>((resolve) => {
      const obs = new PerformanceObserver((list) => {
        const full = list
          .getEntries()
          .some(
            (e) =>
              (e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind ===
              constants.NODE_PERFORMANCE_GC_MAJOR,
          );
        if (full && c.collections === 1) {
          obs.disconnect();
          resolve();
        }
      });
      obs.observe({ entryTypes: ['gc'] });
    });
    c.opened();
    await held(major);
    assert.equal(c.collections, 1);
    c.stop();
  });
});
