import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Balancer, rendezvousOrder, requestKey, type Member } from '../../src/gateway/balancer.js';
import { ClientRateLimiter } from '../../src/gateway/client-rate.js';

/** Members u0..un-1 with the given weights, all alive, none busy. */
function members(weights: readonly number[]): Member[] {
  return weights.map((weight, i) => ({ id: `ws://10.0.0.${i}:9000`, weight, alive: true, active: 0 }));
}

function hashChoice(ms: readonly Member[], key: string): number {
  return new Balancer('hash', ms.length).order(ms, key)[0] as number;
}

const weightsArb = fc.array(fc.integer({ min: 1, max: 10 }), { minLength: 2, maxLength: 8 });
const keysArb = fc.uniqueArray(fc.string({ minLength: 1, maxLength: 12 }), { minLength: 1, maxLength: 60 });

describe('hash balancing (weighted rendezvous)', () => {
  it('a dead member moves only its own keys, and they come back when it recovers', () => {
    fc.assert(
      fc.property(weightsArb, keysArb, fc.nat(), (weights, keys, pick) => {
        const all = members(weights);
        const deadIndex = pick % all.length;
        const withDead = all.map((m, i) => (i === deadIndex ? { ...m, alive: false } : m));
        for (const key of keys) {
          const before = hashChoice(all, key);
          const during = hashChoice(withDead, key);
          if (before === deadIndex) assert.notEqual(during, deadIndex);
          else assert.equal(during, before, `key ${JSON.stringify(key)} moved though its member lived`);
          assert.equal(hashChoice(all, key), before, 'back on its member after recovery');
        }
      }),
      { numRuns: 200 },
    );
  });

  it('a member added to the pool takes keys only for itself (nobody else moves)', () => {
    fc.assert(
      fc.property(weightsArb, keysArb, (weights, keys) => {
        const small = members(weights);
        const big = members([...weights, 3]);
        for (const key of keys) {
          const after = hashChoice(big, key);
          if (after !== small.length) assert.equal(after, hashChoice(small, key));
        }
      }),
      { numRuns: 200 },
    );
  });

  it('the order is a failover list: every member once, the live ones first', () => {
    fc.assert(
      fc.property(weightsArb, fc.string(), fc.array(fc.boolean()), (weights, key, deadFlags) => {
        const ms = members(weights).map((m, i) => ({ ...m, alive: !deadFlags[i] }));
        const order = new Balancer('hash', ms.length).order(ms, key);
        assert.deepEqual(
          [...order].sort((a, b) => a - b),
          ms.map((_, i) => i),
        );
        const firstDead = order.findIndex((i) => !ms[i]?.alive);
        if (firstDead >= 0) assert.ok(order.slice(firstDead).every((i) => !ms[i]?.alive));
      }),
    );
  });

  it('keys spread in proportion to the weights', () => {
    const ms = members([3, 1]);
    let first = 0;
    const n = 8000;
    for (let k = 0; k < n; k++) if (rendezvousOrder(`user-${k}`, ms)[0] === 0) first++;
    // 3:1 is 75%; 8000 keys put one standard deviation near 0.5%.
    assert.ok(Math.abs(first / n - 0.75) < 0.03, `weight 3 of 4 took ${((100 * first) / n).toFixed(1)}%`);
  });

  it('falls back to round-robin when the request has no key', () => {
    const ms = members([1, 1]);
    const b = new Balancer('hash', 2);
    const firsts = [0, 1, 2, 3].map(() => b.order(ms, undefined)[0]);
    assert.deepEqual(firsts, [0, 1, 0, 1]);
  });
});

describe('smooth weighted round-robin', () => {
  it('each window of sum(weights) picks gives every live member exactly its weight', () => {
    fc.assert(
      fc.property(weightsArb, fc.integer({ min: 1, max: 4 }), (weights, windows) => {
        const ms = members(weights);
        const b = new Balancer('round-robin', ms.length);
        const total = weights.reduce((a, w) => a + w, 0);
        for (let w = 0; w < windows; w++) {
          const counts = new Array<number>(ms.length).fill(0);
          for (let i = 0; i < total; i++) {
            const chosen = b.order(ms, 'ignored')[0] as number;
            counts[chosen] = (counts[chosen] ?? 0) + 1;
          }
          assert.deepEqual(counts, weights);
        }
      }),
      { numRuns: 100 },
    );
  });

  it('interleaves (nginx: weights 5, 1, 1 give a a b a c a a)', () => {
    const b = new Balancer('round-robin', 3);
    const ms = members([5, 1, 1]);
    const seq = Array.from({ length: 7 }, () => 'abc'[b.order(ms, undefined)[0] as number]).join(' ');
    assert.equal(seq, 'a a b a c a a');
  });

  it('skips dead members, and tries them last', () => {
    const ms = members([1, 1, 1]).map((m, i) => (i === 1 ? { ...m, alive: false } : m));
    const b = new Balancer('round-robin', 3);
    for (let i = 0; i < 6; i++) {
      const order = b.order(ms, undefined);
      assert.notEqual(order[0], 1);
      assert.equal(order.at(-1), 1);
    }
  });
});

describe('least-connections', () => {
  it('picks the fewest open connections for the weight', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ weight: fc.integer({ min: 1, max: 5 }), active: fc.nat(50) }), {
          minLength: 1,
          maxLength: 8,
        }),
        (specs) => {
          const ms = specs.map((s, i) => ({ id: `m${i}`, alive: true, ...s }));
          const chosen = new Balancer('least-connections', ms.length).order(ms, undefined)[0] as number;
          const load = (m: Member): number => m.active / m.weight;
          assert.ok(ms.every((m) => load(ms[chosen] as Member) <= load(m)));
        },
      ),
    );
  });
});

describe('requestKey', () => {
  const req = {
    address: '192.0.2.7',
    headers: [
      ['X-User', 'alice'],
      ['cookie', 'a=1; sid=xyz'],
      ['cookie', 'theme=dark'],
    ] as [string, string][],
    target: '/live?room=7&x=1',
  };
  it('reads the client address, a header, a cookie (in any Cookie field) and a query parameter', () => {
    assert.equal(requestKey({ kind: 'client-ip' }, req), '192.0.2.7');
    assert.equal(requestKey({ kind: 'header', name: 'x-user' }, req), 'alice');
    assert.equal(requestKey({ kind: 'cookie', name: 'sid' }, req), 'xyz');
    assert.equal(requestKey({ kind: 'cookie', name: 'theme' }, req), 'dark');
    assert.equal(requestKey({ kind: 'query', name: 'room' }, req), '7');
    assert.equal(requestKey({ kind: 'header', name: 'x-none' }, req), undefined);
    assert.equal(requestKey({ kind: 'query', name: 'none' }, req), undefined);
  });
});

describe('ClientRateLimiter', () => {
  it('lets a burst of `rate` through, then says when the next token comes', () => {
    const r = new ClientRateLimiter();
    const t = 1_000_000;
    assert.deepEqual(
      [0, 1, 2].map(() => r.take('a', 3, t)),
      [0, 0, 0],
    );
    assert.equal(r.take('a', 3, t), 334);
    assert.equal(r.take('b', 3, t), 0, 'another address has its own bucket');
    assert.equal(r.take('a', 3, t + 334), 0, 'a token is back after 1/rate s');
  });

  it('keeps at most maxClients buckets, and drops refilled ones', () => {
    const r = new ClientRateLimiter(100);
    for (let i = 0; i < 1000; i++) r.take(`10.0.${i >> 8}.${i & 255}`, 5, 0);
    assert.ok(r.size <= 101, `${r.size} buckets`);
    r.take('late', 5, 10_000);
    assert.equal(r.size, 1, 'every earlier bucket had refilled');
  });
});
