import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isWsviaError } from '../../src/errors.js';
import { checkTarget, parseTargetRule } from '../../src/bridge/allow-target.js';

const rules = (...t: string[]) => t.map(parseTargetRule);
const check = (r: string[], host: string, port: number, address = host, allowPrivate = false) =>
  checkTarget(rules(...r), { allowPrivate }, host, port, address);

describe('--allow-target', () => {
  it('parses host, CIDR, bracketed IPv6 and port lists', () => {
    assert.equal(parseTargetRule('127.0.0.1:22').host.kind, 'cidr');
    assert.equal(parseTargetRule('*.lab.example:22,80').host.kind, 'suffix');
    assert.deepEqual(parseTargetRule('[::1]:22').ports, [{ from: 22, to: 22 }]);
    assert.deepEqual(parseTargetRule('db.example').ports, [{ from: 1, to: 65535 }]);
    assert.throws(() => parseTargetRule('host:99999'));
    assert.throws(() => parseTargetRule('[::1:22'));
  });

  it('denies everything without rules, and what no rule matches', () => {
    assert.match((check([], '1.2.3.4', 80) as { reason: string }).reason, /does not let clients choose/);
    assert.match(
      (check(['1.2.3.4:80'], '1.2.3.4', 81) as { reason: string }).reason,
      /matches no --allow-target/,
    );
    assert.deepEqual(check(['1.2.3.4:80'], '1.2.3.4', 80), { allowed: true });
  });

  it('keeps the SSRF defaults: a name rule does not open loopback, private or metadata addresses', () => {
    const v = check(['localhost:22'], 'localhost', 22, '127.0.0.1');
    assert.equal(v.allowed, false);
    assert.match((v as { reason: string }).reason, /loopback address, denied by default/);
    assert.deepEqual(check(['localhost:22'], 'localhost', 22, '127.0.0.1', true), { allowed: true });
    assert.equal(check(['*.example:80'], 'meta.example', 80, '169.254.169.254', true).allowed, false);
    assert.deepEqual(check(['*.example:80'], 'www.example', 80, '93.184.216.34'), { allowed: true });
  });

  it('lets an address rule name its own class, and only its own', () => {
    assert.deepEqual(check(['127.0.0.1:22'], '127.0.0.1', 22), { allowed: true });
    assert.deepEqual(check(['10.0.0.0/8:5900-5999'], '10.1.2.3', 5901), { allowed: true });
    assert.equal(check(['0.0.0.0/0:80'], '127.0.0.1', 80).allowed, false);
    assert.equal(check(['0.0.0.0/0:80'], '169.254.169.254', 80).allowed, false);
    assert.equal(check(['169.254.0.0/16:80'], '169.254.169.254', 80).allowed, false);
    assert.deepEqual(check(['169.254.169.254:80'], '169.254.169.254', 80), { allowed: true });
    assert.deepEqual(check(['0.0.0.0/0:80'], '93.184.216.34', 80), { allowed: true });
  });

  it('any rule text either parses or throws a WsviaError', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string({ maxLength: 60 }), fc.constantFrom('[::1]:22', '10.0.0.0/8:1-2', '*.x:*')),
        (t) => {
          try {
            parseTargetRule(t);
          } catch (e) {
            assert.ok(isWsviaError(e), String(e));
          }
        },
      ),
    );
  });
});

describe('--allow-target and the unspecified addresses', () => {
  it('no rule, however broad, opens 0.0.0.0/8 or :: (they reach loopback)', () => {
    for (const [rule, target] of [
      ['0.0.0.0/0:80', '0.0.0.0'],
      ['0.0.0.0/0:80', '0.0.0.1'],
      ['0.0.0.0:80', '0.0.0.0'],
      ['[::/0]:80', '::'],
      ['[::]:80', '::'],
    ] as const) {
      const v = check([rule], target, 80, target, true);
      assert.equal(v.allowed, false, `${rule} ${target}`);
      assert.match((v as { reason: string }).reason, /unspecified address .* always denied/);
    }
  });

  it('an address rule for 127.0.0.1 does not open the IPv6 forms that carry it', () => {
    for (const a of ['::7f00:1', '64:ff9b::7f00:1', '::ffff:0:7f00:1', '2002:7f00:1::'])
      assert.equal(check(['127.0.0.1:22', '0.0.0.0/0:22', '[::/0]:22'], a, 22).allowed, false, a);
  });
});
