import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CountsByKey } from '../../src/observe/counts-by-key.js';

describe('CountsByKey', () => {
  it('counts per key, and a key at zero reads 0 again (a stray remove never goes negative)', () => {
    const c = new CountsByKey();
    assert.equal(c.get('a'), 0);
    c.add('a');
    c.add('a');
    c.add('b');
    assert.equal(c.get('a'), 2);
    assert.equal(c.get('b'), 1);
    c.remove('a');
    c.remove('b');
    c.remove('b');
    assert.equal(c.get('a'), 1);
    assert.equal(c.get('b'), 0);
    c.add('b');
    assert.equal(c.get('b'), 1);
  });
});
