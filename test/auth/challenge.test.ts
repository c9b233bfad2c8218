import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { describeSchemes, parseChallenges } from '../../src/auth/challenge.js';

describe('parseChallenges (RFC 9110 §11.3, §11.6.1)', () => {
  it('splits several challenges in one field value, commas inside quotes included', () => {
    const cs = parseChallenges(['Digest realm="a, b", nonce="x", qop="auth,auth-int", Basic realm="r"']);
    assert.deepEqual(cs, [
      { scheme: 'digest', name: 'Digest', params: { realm: 'a, b', nonce: 'x', qop: 'auth,auth-int' } },
      { scheme: 'basic', name: 'Basic', params: { realm: 'r' } },
    ]);
  });

  it('parses the RFC 9110 §11.6.1 example', () => {
    const cs = parseChallenges([
      'Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple"',
    ]);
    assert.deepEqual(cs, [
      { scheme: 'newauth', name: 'Newauth', params: { realm: 'apps', type: '1', title: 'Login to "apps"' } },
      { scheme: 'basic', name: 'Basic', params: { realm: 'simple' } },
    ]);
  });

  it('reads challenges from several field lines, in order', () => {
    const cs = parseChallenges([
      'Negotiate',
      'NTLM',
      'Digest realm="squid", nonce="n1", qop="auth", algorithm=SHA-256',
      'Basic realm="squid"',
    ]);
    assert.deepEqual(
      cs.map((c) => c.scheme),
      ['negotiate', 'ntlm', 'digest', 'basic'],
    );
    assert.equal(cs[2]?.params.algorithm, 'SHA-256');
  });

  it('reads token68 credentials', () => {
    assert.deepEqual(parseChallenges(['Negotiate YII=']), [
      { scheme: 'negotiate', name: 'Negotiate', params: {}, token68: 'YII=' },
    ]);
    assert.equal(
      parseChallenges(['Bearer abc.def-ghi_jk~l+m/n==, Basic'])[0]?.token68,
      'abc.def-ghi_jk~l+m/n==',
    );
    assert.equal(parseChallenges(['NTLM TlRMTVNTUAACAAAA'])[0]?.token68, 'TlRMTVNTUAACAAAA');
  });

  it('lowercases schemes and parameter names, keeps values and the scheme’s spelling', () => {
    const [c] = parseChallenges(['DIGEST REALM="R", Nonce=AbC']);
    assert.equal(c?.scheme, 'digest');
    assert.equal(c?.name, 'DIGEST');
    assert.deepEqual(c?.params, { realm: 'R', nonce: 'AbC' });
  });

  it('accepts whitespace around "=" and empty quoted values, and tolerates empty list members', () => {
    const cs = parseChallenges([' , Basic  realm = "" ,, charset="UTF-8" , ']);
    assert.deepEqual(cs, [{ scheme: 'basic', name: 'Basic', params: { realm: '', charset: 'UTF-8' } }]);
  });

  it('skips garbage without throwing', () => {
    assert.deepEqual(parseChallenges(['', ',', '=', '"unterminated', 'realm=x']), []);
    assert.deepEqual(
      parseChallenges(['Basic realm="r", "junk", =x, Digest']).map((c) => c.scheme),
      ['basic', 'digest'],
    );
  });

  it('never throws, whatever the input (property)', () => {
    const piece = fc.constantFrom(
      'Basic',
      'Digest',
      ' ',
      ',',
      '=',
      '"',
      '\\',
      'realm',
      'a, b',
      'x==',
      '\t',
      '\u00e9',
    );
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.string({ maxLength: 80 }),
            fc.array(piece, { maxLength: 30 }).map((a) => a.join('')),
          ),
          {
            maxLength: 3,
          },
        ),
        (values) => {
          for (const c of parseChallenges(values)) {
            assert.equal(c.scheme, c.name.toLowerCase());
            assert.ok(c.scheme.length > 0);
          }
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe('describeSchemes', () => {
  it('lists each offered scheme once, as spelled', () => {
    assert.equal(
      describeSchemes(parseChallenges(['Digest realm="a", Basic realm="b"', 'Digest realm="c"'])),
      'Digest, Basic',
    );
    assert.equal(describeSchemes([]), '');
  });
});
