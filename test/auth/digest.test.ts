import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { parseChallenges, type Challenge } from '../../src/auth/challenge.js';
import { Credentials } from '../../src/auth/credentials.js';
import { canAnswerDigest, digestAuthorization, digestStrength } from '../../src/auth/digest.js';

function challenge(value: string): Challenge {
  const [c] = parseChallenges([value]);
  assert.ok(c);
  return c;
}

/** The fields of a Digest credentials value (RFC 7616 §3.4), quotes removed. */
function fields(value: string): Record<string, string> {
  assert.match(value, /^Digest /);
  const c = parseChallenges([value])[0];
  assert.ok(c);
  return { ...c.params };
}

// RFC 7616 §3.9.1: the same request answered with MD5 and with SHA-256.
const RFC7616 = {
  realm: 'http-auth@example.org',
  nonce: '7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v',
  opaque: 'FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS',
  cnonce: 'f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ',
  user: new Credentials('Mufasa', 'Circle of Life'),
  request: {
    method: 'GET',
    uri: '/dir/index.html',
    nc: 1,
    cnonce: 'f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ',
  },
};

describe('digestAuthorization: RFC 7616 §3.9.1 test vectors', () => {
  for (const [algorithm, response] of [
    ['MD5', '8ca523f5e9506fed4657c9700eebdbec'],
    ['SHA-256', '753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1'],
  ] as const) {
    it(`computes the ${algorithm} response`, () => {
      const c = challenge(
        `Digest realm="${RFC7616.realm}", qop="auth, auth-int", algorithm=${algorithm}, nonce="${RFC7616.nonce}", opaque="${RFC7616.opaque}"`,
      );
      assert.ok(canAnswerDigest(c));
      const value = digestAuthorization(c, RFC7616.user, RFC7616.request);
      assert.deepEqual(fields(value), {
        username: 'Mufasa',
        realm: RFC7616.realm,
        uri: '/dir/index.html',
        algorithm,
        nonce: RFC7616.nonce,
        nc: '00000001',
        cnonce: RFC7616.cnonce,
        qop: 'auth',
        response,
        opaque: RFC7616.opaque,
      });
      // qop, nc and algorithm are tokens, never quoted (RFC 7616 §3.4).
      assert.match(value, /, qop=auth, nc=00000001, /);
      assert.match(value, new RegExp(`, algorithm=${algorithm}(,|$)`));
    });
  }

  it('sends H(user:realm) as the username with userhash=true (RFC 7616 §3.4.4), SHA-512-256', () => {
    // The inputs of RFC 7616 §3.9.2. Its printed hashes are not reproducible (they are subject to errata), so the
    // expected values are computed here from the definitions in §3.4.1 and §3.4.4.
    const H = (s: string) => createHash('sha512-256').update(s, 'utf8').digest('hex');
    const user = 'J\u00e4s\u00f8n Doe';
    const realm = 'api@example.org';
    const nonce = '5TsQWLVdgBdmrQ0XsxbDODV+57QdFR34I9HAbC/RVvkK';
    const cnonce = 'NTg6RKcb9boFIAS3KrFK9BGeh+iDa/sm6jUMp2wds69v';
    const c = challenge(
      `Digest realm="${realm}", qop="auth", algorithm=SHA-512-256, nonce="${nonce}", opaque="HRPCssKJSGjCrkzDg8OhwpzCiGPChXYjwrI2QmXDnsOS", charset=UTF-8, userhash=true`,
    );
    const value = digestAuthorization(c, new Credentials(user, 'Secret, or not?'), {
      method: 'GET',
      uri: '/doe.json',
      cnonce,
    });
    const f = fields(value);
    assert.equal(f.username, H(`${user}:${realm}`));
    assert.equal(f.username, '793263caabb707a56211940d90411ea4a575adeccb7e360aeb624ed06ece9b0b');
    assert.equal(f.userhash, 'true');
    const ha1 = H(`${user}:${realm}:Secret, or not?`);
    const ha2 = H('GET:/doe.json');
    assert.equal(f.response, H(`${ha1}:${nonce}:00000001:${cnonce}:auth:${ha2}`));
    assert.doesNotMatch(value, /J.s.n/);
  });
});

describe('digestAuthorization: other forms', () => {
  it('answers without qop in the RFC 2069 form (no nc, cnonce or qop sent)', () => {
    const c = challenge(
      'Digest realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"',
    );
    const value = digestAuthorization(c, new Credentials('Mufasa', 'CircleOfLife'), {
      method: 'GET',
      uri: '/dir/index.html',
    });
    const f = fields(value);
    assert.equal(f.response, '1949323746fe6a43ef61f9606e7febea');
    assert.equal(f.qop, undefined);
    assert.equal(f.nc, undefined);
    assert.equal(f.cnonce, undefined);
    assert.equal(f.algorithm, undefined, 'algorithm is echoed only when the server sent it');
  });

  it('matches the RFC 2617 §3.5 example (qop=auth, MD5)', () => {
    const c = challenge(
      'Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"',
    );
    const value = digestAuthorization(c, new Credentials('Mufasa', 'Circle Of Life'), {
      method: 'GET',
      uri: '/dir/index.html',
      cnonce: '0a4f113b',
      nc: 1,
    });
    assert.equal(fields(value).response, '6629fae49393a05397450978507c4ef1');
  });

  it('answers CONNECT with the authority as the uri', () => {
    const c = challenge('Digest realm="squid", nonce="n", qop="auth"');
    const f = fields(
      digestAuthorization(c, new Credentials('u', 'p'), { method: 'CONNECT', uri: '[::1]:443', cnonce: 'c' }),
    );
    assert.equal(f.uri, '[::1]:443');
  });

  it('changes the response with nc and cnonce, and makes a fresh cnonce when none is given', () => {
    const c = challenge('Digest realm="r", nonce="n", qop="auth"');
    const creds = new Credentials('u', 'p');
    const a = fields(digestAuthorization(c, creds, { method: 'GET', uri: '/', cnonce: 'x', nc: 1 }));
    const b = fields(digestAuthorization(c, creds, { method: 'GET', uri: '/', cnonce: 'x', nc: 2 }));
    assert.equal(b.nc, '00000002');
    assert.notEqual(a.response, b.response);
    const r1 = fields(digestAuthorization(c, creds, { method: 'GET', uri: '/' }));
    const r2 = fields(digestAuthorization(c, creds, { method: 'GET', uri: '/' }));
    assert.match(r1.cnonce ?? '', /^[0-9a-f]{32}$/);
    assert.notEqual(r1.cnonce, r2.cnonce);
  });

  it('uses the session key for -sess algorithms (RFC 7616 §3.4.2)', () => {
    const plain = challenge('Digest realm="r", nonce="n", qop="auth", algorithm=MD5');
    const sess = challenge('Digest realm="r", nonce="n", qop="auth", algorithm=MD5-sess');
    const creds = new Credentials('u', 'p');
    const req = { method: 'GET', uri: '/', cnonce: 'c' };
    assert.notEqual(
      fields(digestAuthorization(plain, creds, req)).response,
      fields(digestAuthorization(sess, creds, req)).response,
    );
    assert.equal(fields(digestAuthorization(sess, creds, req)).algorithm, 'MD5-sess');
  });

  it('escapes quotes and backslashes in quoted fields', () => {
    const c = challenge('Digest realm="a \\"b\\" \\\\ c", nonce="n"');
    const value = digestAuthorization(c, new Credentials('us"er', 'p'), { method: 'GET', uri: '/' });
    assert.match(value, /username="us\\"er"/);
    assert.equal(fields(value).realm, 'a "b" \\ c');
  });

  it('never puts the password in the header', () => {
    const c = challenge('Digest realm="r", nonce="n", qop="auth"');
    assert.doesNotMatch(
      digestAuthorization(c, new Credentials('u', 'hunter2'), { method: 'GET', uri: '/' }),
      /hunter2/,
    );
  });
});

describe('canAnswerDigest and digestStrength', () => {
  it('needs a realm, a nonce, a known algorithm and qop auth (or none)', () => {
    for (const [value, ok] of [
      ['Digest realm="r", nonce="n"', true],
      ['Digest realm="r", nonce="n", qop="auth"', true],
      ['Digest realm="r", nonce="n", qop="auth-int, AUTH"', true],
      ['Digest realm="r", nonce="n", qop="auth-int"', false],
      ['Digest realm="r"', false],
      ['Digest nonce="n"', false],
      ['Digest realm="r", nonce="n", qop="auth", algorithm=SHA-256-sess', true],
      ['Digest realm="r", nonce="n", algorithm=SHA-256-sess', false],
      ['Digest realm="r", nonce="n", algorithm=MD5-sess', false],
      ['Digest realm="r", nonce="n", algorithm=sha-512-256', true],
      ['Digest realm="r", nonce="n", algorithm=SHA-1', false],
      ['Digest realm="r", nonce="n", algorithm=token', false],
    ] as const) {
      assert.equal(canAnswerDigest(challenge(value)), ok, value);
    }
  });

  it('ranks SHA-256 over MD5', () => {
    assert.equal(digestStrength(challenge('Digest realm="r", nonce="n"')), 1);
    assert.equal(digestStrength(challenge('Digest realm="r", nonce="n", algorithm=MD5-sess')), 1);
    assert.equal(digestStrength(challenge('Digest realm="r", nonce="n", algorithm=SHA-256')), 2);
    assert.equal(digestStrength(challenge('Digest realm="r", nonce="n", algorithm=SHA-1')), 0);
  });
});

describe('digestAuthorization: non-ASCII user names', () => {
  it('sends username* in RFC 8187 form (RFC 7616 §3.4.4), hashing the name as UTF-8', () => {
    const c = challenge('Digest realm="r", nonce="n", qop="auth"');
    const value = digestAuthorization(c, new Credentials('J\u00e4s\u00f8n D\u20ac', 'p'), {
      method: 'GET',
      uri: '/',
      cnonce: 'c',
    });
    assert.match(value, /^Digest username\*=UTF-8''J%C3%A4s%C3%B8n%20D%E2%82%AC, realm="r"/);
    assert.doesNotMatch(value, /[^\x20-\x7e]/);
    const H = (s: string) => createHash('md5').update(s, 'utf8').digest('hex');
    const ha1 = H('J\u00e4s\u00f8n D\u20ac:r:p');
    assert.equal(fields(value).response, H(`${ha1}:n:00000001:c:auth:${H('GET:/')}`));
  });

  it('keeps username="..." for ASCII names', () => {
    const c = challenge('Digest realm="r", nonce="n"');
    assert.match(
      digestAuthorization(c, new Credentials("o'brien (x)", 'p'), { method: 'GET', uri: '/' }),
      /^Digest username="o'brien \(x\)"/,
    );
  });
});
