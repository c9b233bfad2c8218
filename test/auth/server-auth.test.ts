import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseChallenges, type Challenge } from '../../src/auth/challenge.js';
import { Credentials } from '../../src/auth/credentials.js';
import { digestAuthorization } from '../../src/auth/digest.js';
import { NonceTable } from '../../src/auth/nonce-table.js';
import { ServerAuth, StaticUsers } from '../../src/auth/server-auth.js';

const alice = new Credentials('alice', 'pw');
const digestOf = (auth: ServerAuth): Challenge => {
  const c = parseChallenges(auth.challenges())[0];
  assert.ok(c);
  return c;
};
const answer = (c: Challenge, nc = 1): string =>
  digestAuthorization(c, alice, { method: 'CONNECT', uri: 'h:1', nc });

describe('ServerAuth Digest nonces', () => {
  const options = { realm: 'r', users: new StaticUsers(['alice:pw']), schemes: ['digest'] as const };

  it('a forgotten nonce (table full) is stale, not rejected: the client retries without asking the user', async () => {
    const auth = new ServerAuth({ ...options, maxNonces: 2 });
    const old = digestOf(auth);
    const fresh = digestOf(auth); // two more nonces push the first pair out
    assert.deepEqual(await auth.check(answer(old), 'CONNECT', 'h:1'), {
      ok: false,
      reason: 'stale',
      user: 'alice',
    });
    assert.equal((await auth.check(answer(fresh), 'CONNECT', 'h:1')).ok, true);
  });

  it('an expired nonce is stale; a wrong password on it is rejected, never stale', async () => {
    const auth = new ServerAuth({ ...options, nonceLifetime: -1 });
    const c = digestOf(auth);
    const r = await auth.check(answer(c), 'CONNECT', 'h:1');
    assert.ok(!r.ok && r.reason === 'stale');
    const wrong = digestAuthorization(c, new Credentials('alice', 'nope'), { method: 'CONNECT', uri: 'h:1' });
    const w = await auth.check(wrong, 'CONNECT', 'h:1');
    assert.ok(!w.ok && w.reason === 'rejected');
  });

  it('a wrong response does not advance the nonce count (an attacker cannot lock a nonce)', async () => {
    const auth = new ServerAuth(options);
    const c = digestOf(auth);
    const forged = answer(c, 9).replace(/response="[0-9a-f]+"/, `response="${'0'.repeat(64)}"`);
    assert.ok(!(await auth.check(forged, 'CONNECT', 'h:1')).ok);
    assert.equal((await auth.check(answer(c, 1), 'CONNECT', 'h:1')).ok, true);
  });
});

describe('NonceTable', () => {
  it('holds at most maxEntries, forgetting the oldest first', () => {
    const t = new NonceTable({ lifetimeMs: 60_000, maxEntries: 3 });
    for (const n of ['a', 'b', 'c', 'd']) t.issue(n, 0);
    assert.equal(t.size, 3);
    assert.equal(t.check('a', 1, 0), 'unknown');
    assert.equal(t.check('d', 1, 0), 'fresh');
  });

  it('forgets nonces older than their lifetime', () => {
    const t = new NonceTable({ lifetimeMs: 1000, maxEntries: 10 });
    t.issue('a', 0);
    t.issue('b', 900);
    assert.equal(t.check('a', 1, 1500), 'unknown');
    assert.equal(t.check('b', 1, 1500), 'fresh');
    assert.equal(t.size, 1);
  });

  it('accepts a count once, and only above the highest accepted', () => {
    const t = new NonceTable({ lifetimeMs: 1000, maxEntries: 10 });
    t.issue('a', 0);
    t.accept('a', 2);
    assert.equal(t.check('a', 2, 0), 'replayed');
    assert.equal(t.check('a', 1, 0), 'replayed');
    assert.equal(t.check('a', 3, 0), 'fresh');
  });
});
