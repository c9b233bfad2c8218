import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import bcrypt from 'bcryptjs';
import { BcryptPool } from '../../src/auth/bcrypt-pool.js';
import { FailureLimit } from '../../src/auth/failure-limit.js';
import { Htpasswd } from '../../src/auth/htpasswd.js';

// `htpasswd -B -C 10 -b file alice right-pw` and `-C 5 ... bob`: two costs, so the dummy must take the higher.
const ALICE = bcrypt.hashSync('right-pw', 10);
const BOB = bcrypt.hashSync('bob-pw', 5);
const cost = (hash: string): string => hash.slice(0, 7); // `$2b$10$`

describe('Htpasswd with bcrypt', () => {
  it('an unknown user costs one bcrypt check at the file highest cost, as a known user with a wrong password', async () => {
    const calls: string[] = [];
    const file = Htpasswd.parse(`alice:${ALICE}\nbob:${BOB}\n`, 'test', {
      bcryptCompare: (password, hash) => {
        calls.push(hash);
        return Promise.resolve(bcrypt.compareSync(password, hash));
      },
    });
    assert.equal(await file.verify('alice', 'wrong'), false);
    assert.equal(await file.verify('nobody', 'wrong'), false);
    assert.equal(calls.length, 2);
    assert.equal(cost(calls[0] as string), '$2b$10$');
    assert.equal(cost(calls[1] as string), '$2b$10$', 'the dummy hash has the same cost');
    assert.notEqual(calls[1], ALICE);
    assert.equal(await file.verify('alice', 'right-pw'), true);
  });

  it('checks run in worker threads: the event loop stays mostly idle and a 10 ms timer keeps firing while eight cost-10 checks run', async () => {
    const pool = new BcryptPool({ size: 2 });
    const ticks: number[] = [];
    const timer = setInterval(() => ticks.push(performance.now()), 10);
    try {
      const before = performance.eventLoopUtilization();
      const started = performance.now();
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) => pool.compare(i === 0 ? 'right-pw' : 'wrong', ALICE)),
      );
      const elapsed = performance.now() - started;
      const busy = performance.eventLoopUtilization(before).utilization;
      assert.deepEqual(results, [true, false, false, false, false, false, false, false]);
      assert.equal(pool.checks, 8);
      // On the event loop the checks would keep it busy the whole time (utilization near 1; bcryptjs yields every
      // 100 ms at best). The share of time the loop ran code does not depend on how loaded the machine is, unlike a
      // bound on the longest pause between ticks (a descheduled thread pauses whatever it runs).
      assert.ok(busy < 0.5, `event loop busy ${(busy * 100).toFixed(0)} % of ${Math.round(elapsed)} ms`);
      assert.ok(ticks.length >= elapsed / 10 / 3, `${ticks.length} ticks in ${Math.round(elapsed)} ms`);
    } finally {
      clearInterval(timer);
      await pool.close();
    }
  });

  it('a malformed hash never matches and does not lose the worker', async () => {
    const pool = new BcryptPool({ size: 1 });
    try {
      assert.equal(await pool.compare('x', '$2b$10$short'), false);
      assert.equal(await pool.compare('bob-pw', BOB), true);
    } finally {
      await pool.close();
    }
  });
});

describe('FailureLimit', () => {
  it('after N failures in a minute, the address waits until its oldest failure is a minute old', () => {
    const l = new FailureLimit(3);
    for (const t of [0, 10_000, 20_000]) {
      assert.equal(l.retryAfter('a', t), undefined);
      l.fail('a', t);
    }
    assert.equal(l.retryAfter('a', 20_000), 40);
    assert.equal(l.retryAfter('b', 20_000), undefined, 'other addresses are not limited');
    assert.equal(l.retryAfter('a', 60_000), undefined);
  });

  it('0 turns it off', () => {
    const l = new FailureLimit(0);
    for (let i = 0; i < 100; i++) l.fail('a', 0);
    assert.equal(l.retryAfter('a', 0), undefined);
  });

  it('tracks at most maxKeys addresses', () => {
    const l = new FailureLimit(1, { maxKeys: 2 });
    for (const k of ['a', 'b', 'c']) l.fail(k, 0);
    assert.equal(l.retryAfter('a', 0), undefined);
    assert.equal(l.retryAfter('c', 0), 60);
  });
});
