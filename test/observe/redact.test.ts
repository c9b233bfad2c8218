import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { basicAuthorization } from '../../src/auth/basic.js';
import { parseChallenges } from '../../src/auth/challenge.js';
import { Credentials } from '../../src/auth/credentials.js';
import { digestAuthorization } from '../../src/auth/digest.js';
import {
  redactHeaders,
  redactHeadText,
  redactHeaderValue,
  redactTarget,
  redactUrl,
} from '../../src/observe/redact.js';

const SECRET = 'Zq7-s3cr3t';
const B64 = Buffer.from(`alice:${SECRET}`).toString('base64');

describe('redactHeaderValue', () => {
  it('keeps only the scheme of Basic, Bearer, Negotiate and unknown schemes', () => {
    assert.equal(redactHeaderValue('Proxy-Authorization', `Basic ${B64}`), 'Basic ***');
    assert.equal(redactHeaderValue('authorization', `Bearer ${SECRET}`), 'Bearer ***');
    assert.equal(redactHeaderValue('Authorization', 'Negotiate YIIabc=='), 'Negotiate ***');
    assert.equal(redactHeaderValue('Authorization', `Custom  ${SECRET}`), 'Custom ***');
  });

  it('redacts a value without a scheme entirely', () => {
    for (const v of [SECRET, ` ${SECRET}`, `${SECRET} `, '']) {
      assert.equal(redactHeaderValue('Authorization', v), '***', JSON.stringify(v));
    }
  });

  it('keeps only the user name of Digest', () => {
    const [c] = parseChallenges(['Digest realm="r", nonce="n", qop="auth", opaque="o"']);
    assert.ok(c);
    const v = digestAuthorization(c, new Credentials('alice', SECRET), {
      method: 'CONNECT',
      uri: 'a:1',
      cnonce: 'cn',
    });
    const r = redactHeaderValue('Proxy-Authorization', v);
    assert.equal(r, 'Digest username="alice", ***');
    assert.doesNotMatch(r, /response|cnonce|nonce|opaque/);
    assert.equal(redactHeaderValue('Proxy-Authorization', 'Digest response="x"'), 'Digest ***');
    assert.equal(
      redactHeaderValue('Proxy-Authorization', 'Digest username*=UTF-8\'\'J%C3%A4s, response="x"'),
      'Digest ***',
    );
  });

  it('hides cookies and API key headers whole', () => {
    assert.equal(redactHeaderValue('Cookie', `session=${SECRET}; theme=dark`), '***');
    assert.equal(redactHeaderValue('Set-Cookie', `session=${SECRET}; HttpOnly`), '***');
    assert.equal(redactHeaderValue('X-Api-Key', SECRET), '***');
    assert.equal(redactHeaderValue('X-Auth-Token', SECRET), '***');
  });

  it('leaves other headers alone', () => {
    assert.equal(redactHeaderValue('Proxy-Authenticate', 'Basic realm="r"'), 'Basic realm="r"');
    assert.equal(redactHeaderValue('Host', 'a:1'), 'a:1');
    assert.deepEqual(
      redactHeaders([
        ['Host', 'a:1'],
        ['Proxy-Authorization', basicAuthorization(new Credentials('alice', SECRET))],
      ]),
      [
        ['Host', 'a:1'],
        ['Proxy-Authorization', 'Basic ***'],
      ],
    );
  });
});

describe('redactHeadText', () => {
  it('redacts secret fields of a CONNECT request, keeping the rest byte for byte', () => {
    const head = [
      'CONNECT echo.example:443 HTTP/1.1',
      'Host: echo.example:443',
      `Proxy-Authorization: Basic ${B64}`,
      `proxy-authorization:Bearer ${SECRET}`,
      `Cookie: a=${SECRET}`,
      'User-Agent: wsvia/0.1',
    ].join('\n');
    assert.equal(
      redactHeadText(head),
      [
        'CONNECT echo.example:443 HTTP/1.1',
        'Host: echo.example:443',
        'Proxy-Authorization: Basic ***',
        'proxy-authorization: Bearer ***',
        'Cookie: ***',
        'User-Agent: wsvia/0.1',
      ].join('\n'),
    );
  });

  it('redacts secrets in the request line: query tokens and absolute-form userinfo', () => {
    assert.equal(
      redactHeadText(
        `GET /chat?room=1&access_token=${SECRET}&api_key=${SECRET}&sig=${SECRET} HTTP/1.1\nHost: a`,
      ),
      'GET /chat?room=1&access_token=***&api_key=***&sig=*** HTTP/1.1\nHost: a',
    );
    assert.equal(redactHeadText(`GET http://u:${SECRET}@h/x HTTP/1.1`), 'GET http://u:***@h/x HTTP/1.1');
    assert.equal(redactHeadText('HTTP/1.1 200 OK\nX: y'), 'HTTP/1.1 200 OK\nX: y');
  });

  it('no secret survives any head built from secret fields (property)', () => {
    const secret = fc.stringMatching(/^[A-Za-z0-9+/=_.~-]{12,30}$/).map((s) => `S3C${s}`);
    fc.assert(
      fc.property(
        secret,
        fc.constantFrom(
          'Authorization',
          'Proxy-Authorization',
          'Cookie',
          'Set-Cookie',
          'authorization',
          'X-API-KEY',
        ),
        fc.constantFrom('Basic ', 'Bearer ', '', 'Negotiate ', 'token='),
        (s, name, prefix) => {
          const out = redactHeadText(
            `GET /?token=${s} HTTP/1.1\nHost: h\n${name}: ${prefix}${s}\nAccept: */*`,
          );
          assert.ok(!out.includes(s), out);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('redactTarget and redactUrl', () => {
  it('redacts targets', () => {
    assert.equal(redactTarget('/plain/path'), '/plain/path');
    assert.equal(redactTarget('/?a=1&b'), '/?a=1&b');
    assert.equal(redactTarget(`/?password=${SECRET}`), '/?password=***');
    assert.equal(redactTarget('echo.example:443'), 'echo.example:443');
  });

  it('redacts URL passwords and secret query values', () => {
    assert.equal(redactUrl(`http://alice:${SECRET}@proxy:3128`), 'http://alice:***@proxy:3128/');
    assert.equal(redactUrl(`wss://h/ws?token=${SECRET}&room=2`), 'wss://h/ws?token=***&room=2');
    assert.equal(redactUrl('ws://h/x'), 'ws://h/x');
  });

  it('redacts URL text that does not parse, up to the last @', () => {
    for (const t of [`http://u:${SECRET}@`, `http://u:a/${SECRET}@h:99999`, `http://u:${SECRET}@x@h:bad`]) {
      const r = redactUrl(t);
      assert.doesNotMatch(r, /s3cr3t/, t);
      assert.match(r, /\/\/u:\*\*\*@/);
    }
  });
});
