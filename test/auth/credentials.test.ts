import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import util from 'node:util';
import { Credentials } from '../../src/auth/credentials.js';

const SECRET = 's3cr3t-PaSS';

describe('Credentials', () => {
  const c = new Credentials('alice', SECRET);

  it('never prints the password: inspect, JSON, String, template literals, format', () => {
    const renderings = [
      util.inspect(c),
      util.inspect(c, { showHidden: true, depth: 10 }),
      util.inspect(c, { customInspect: false, showHidden: true }),
      util.inspect({ nested: { c } }, { depth: 10 }),
      JSON.stringify(c),
      JSON.stringify({ proxy: { credentials: c } }),
      String(c),
      // The point of this test: every way a careless caller could stringify credentials must hide the password.
      // eslint-disable-next-line @typescript-eslint/restrict-template-expressions
      `${c}`,
      // eslint-disable-next-line @typescript-eslint/restrict-plus-operands
      'x' + c,
      util.format('%s %o %O %j', c, c, c, c),
      JSON.stringify(Object.entries(c)),
      JSON.stringify({ ...c }),
      JSON.stringify(structuredClone({ user: c.user })),
      Object.getOwnPropertyNames(c).join(','),
    ];
    for (const r of renderings) {
      assert.doesNotMatch(r, /s3cr3t/, r);
    }
    assert.equal(String(c), 'alice:***');
    assert.equal(JSON.stringify(c), '"alice:***"');
    assert.equal(util.inspect(c), 'Credentials(alice, ***)');
  });

  it('gives the password only when asked', () => {
    assert.equal(c.reveal(), SECRET);
    assert.equal(c.user, 'alice');
  });

  it('parses curl’s user:pass, colons after the first belonging to the password', () => {
    const p = Credentials.parse('bob:pa:ss:word');
    assert.equal(p.user, 'bob');
    assert.equal(p.reveal(), 'pa:ss:word');
    assert.equal(Credentials.parse('carol').reveal(), '');
    assert.equal(Credentials.parse('carol').user, 'carol');
    assert.equal(Credentials.parse(':only').user, '');
    assert.equal(Credentials.parse(':only').reveal(), 'only');
    assert.equal(Credentials.parse('d:').reveal(), '');
  });
});
