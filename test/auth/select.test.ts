import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { basicAuthorization } from '../../src/auth/basic.js';
import { parseChallenges } from '../../src/auth/challenge.js';
import { Credentials } from '../../src/auth/credentials.js';
import { answerChallenge, pickChallenge } from '../../src/auth/select.js';

const SHA256 = 'Digest realm="r", nonce="n2", qop="auth", algorithm=SHA-256';
const MD5 = 'Digest realm="r", nonce="n1", qop="auth", algorithm=MD5';
const BASIC = 'Basic realm="r"';

function pick(values: string[], allowed?: readonly ('basic' | 'digest')[]) {
  return pickChallenge(parseChallenges(values), allowed);
}

describe('pickChallenge (curl --proxy-anyauth)', () => {
  it('picks the strongest: SHA-256 Digest > MD5 Digest > Basic, in any order', () => {
    for (const order of [
      [BASIC, MD5, SHA256],
      [SHA256, MD5, BASIC],
      [MD5, BASIC, SHA256],
      [`${BASIC}, ${MD5}, ${SHA256}`],
    ]) {
      assert.equal(pick(order)?.params.algorithm, 'SHA-256', order.join(' | '));
    }
    assert.equal(pick([BASIC, MD5])?.params.nonce, 'n1');
    assert.equal(pick([BASIC])?.scheme, 'basic');
  });

  it('ignores unknown schemes and Digest it cannot answer', () => {
    assert.equal(pick(['Negotiate YII=', 'Kerberos-Only', 'Bearer', BASIC])?.scheme, 'basic');
    assert.equal(pick(['Negotiate', 'Bearer'])?.scheme, undefined);
    assert.equal(pick(['Digest realm="r", nonce="n", qop="auth-int"', BASIC])?.scheme, 'basic');
    assert.equal(pick(['Digest realm="r", nonce="n", algorithm=SHA-1', BASIC])?.scheme, 'basic');
    assert.equal(pick(['Digest realm="r"'])?.scheme, undefined);
    assert.equal(pick([])?.scheme, undefined);
  });

  it('Negotiate: strongest when asked for by name, or under any-auth with empty credentials (curl -U :)', () => {
    const offered = parseChallenges(['Negotiate', SHA256, 'NTLM', BASIC]);
    assert.equal(pickChallenge(offered, ['negotiate'])?.scheme, 'negotiate');
    assert.equal(pickChallenge(offered, ['negotiate', 'basic'])?.scheme, 'negotiate');
    assert.equal(pickChallenge(offered, undefined, new Credentials('', ''))?.scheme, 'negotiate');
    // A password means Digest/NTLM/Basic: a machine without Kerberos is never tried with Negotiate first.
    assert.equal(
      pickChallenge(offered, undefined, new Credentials('alice', 'pw'))?.params.algorithm,
      'SHA-256',
    );
    assert.equal(pickChallenge(offered)?.params.algorithm, 'SHA-256');
    assert.equal(pickChallenge(offered, ['ntlm'], new Credentials('', ''))?.scheme, 'ntlm');
    assert.equal(pickChallenge(parseChallenges([BASIC]), ['negotiate'])?.scheme, undefined);
  });

  it('keeps to the allowed schemes', () => {
    assert.equal(pick([SHA256, BASIC], ['basic'])?.scheme, 'basic');
    assert.equal(pick([BASIC], ['digest']), undefined);
    assert.equal(pick([MD5, BASIC], ['digest', 'basic'])?.scheme, 'digest');
  });

  it('takes the first of equally strong challenges', () => {
    assert.equal(pick(['Basic realm="one"', 'Basic realm="two"'])?.params.realm, 'one');
  });
});

describe('answerChallenge and basicAuthorization (RFC 7617)', () => {
  it('answers Basic with base64 of user:pass in UTF-8 (RFC 7617 §2 and §2.1 examples)', () => {
    assert.equal(
      basicAuthorization(new Credentials('Aladdin', 'open sesame')),
      'Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==',
    );
    assert.equal(basicAuthorization(new Credentials('test', '123\u00a3')), 'Basic dGVzdDoxMjPCow==');
    const c = pick([BASIC]);
    assert.ok(c);
    assert.equal(
      answerChallenge(c, new Credentials('a', 'b:c'), { method: 'CONNECT', uri: 'x:1' }),
      'Basic YTpiOmM=',
    );
  });

  it('answers Digest through digestAuthorization', () => {
    const c = pick([SHA256]);
    assert.ok(c);
    assert.match(
      answerChallenge(c, new Credentials('u', 'p'), { method: 'CONNECT', uri: 'x:1' }),
      /^Digest username="u"/,
    );
  });

  it('refuses a scheme it cannot answer', () => {
    const [c] = parseChallenges(['Kerberos-Only']);
    assert.ok(c);
    assert.throws(
      () => answerChallenge(c, new Credentials('u', 'p'), { method: 'CONNECT', uri: 'x:1' }),
      /Kerberos-Only/,
    );
  });
});
