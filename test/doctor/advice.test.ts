/** The doctor's advice for a 407 names the schemes wsvia answers and how to write a password in a proxy URL. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { adviceFor } from '../../src/doctor/advice.js';
import { WsviaError } from '../../src/errors.js';

const target = { host: 'echo.example', port: 443, tls: true };

function auth407(...schemes: string[]): WsviaError {
  return new WsviaError('PROXY_AUTH_REQUIRED', 'proxy wants credentials', {
    hop: 'proxy',
    answer: {
      statusLine: 'HTTP/1.1 407 Proxy Authentication Required',
      status: 407,
      headers: schemes.map((s) => ['Proxy-Authenticate', `${s} realm="x"`] as const),
    },
  });
}

describe('advice for a 407', () => {
  for (const scheme of ['NTLM', 'Negotiate', 'Digest', 'Basic'])
    it(`a proxy offering only ${scheme} is not told it is unsupported`, () => {
      const advice = adviceFor(auth407(scheme), target, undefined);
      assert.ok(
        advice.some((a) => a.includes(`offers: ${scheme}`)),
        advice.join('\n'),
      );
      assert.ok(!advice.some((a) => /none of them|helper proxy/.test(a)), advice.join('\n'));
    });

  it('a proxy offering only a scheme wsvia does not answer is told so, naming the four it does', () => {
    const advice = adviceFor(auth407('Bearer'), target, undefined);
    assert.ok(
      advice.some((a) => /Basic, Digest, NTLM and Negotiate/.test(a)),
      advice.join('\n'),
    );
  });

  it('says a colon in a password needs no percent-encoding, as the README does, and names the characters that do', () => {
    const advice = adviceFor(auth407('Basic'), target, undefined).join('\n');
    assert.match(advice, /percent-encode @, \/ and #/);
    assert.match(advice, /a : needs no encoding/);
  });
});
