import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AuthCache } from '../../src/proxy/auth-cache.js';

describe('AuthCache', () => {
  it('remembers a user for the TTL, keyed by a hash of the header value', () => {
    const c = new AuthCache({ ttlMs: 1000 });
    const key = AuthCache.key('Basic YWxpY2U6cHc=');
    assert.ok(!key.includes('YWxpY2U6cHc'));
    c.set(key, 'alice', 0);
    assert.equal(c.get(key, 999), 'alice');
    assert.equal(c.get(key, 1000), undefined);
    assert.equal(c.get(AuthCache.key('Basic YWxpY2U6eHg='), 1), undefined);
  });

  it('is bounded: the oldest entry goes first', () => {
    const c = new AuthCache({ maxEntries: 2 });
    c.set('a', 'A', 0);
    c.set('b', 'B', 0);
    c.set('c', 'C', 0);
    assert.equal(c.get('a', 1), undefined);
    assert.equal(c.get('b', 1), 'B');
    assert.equal(c.get('c', 1), 'C');
  });
});
