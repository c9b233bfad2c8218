import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { socks4Refusal, socks5Refusal, socksAuthRefusal } from '../../src/protocol/socks-reply.js';

describe('SOCKS refusals by reply code', () => {
  it('maps every RFC 1928 reply to a code and its RFC wording', () => {
    const cases = [
      [1, 'PROXY_UNAVAILABLE', 'general SOCKS server failure (reply 1)'],
      [2, 'PROXY_REFUSED', 'connection not allowed by ruleset (reply 2)'],
      [3, 'PROXY_UNAVAILABLE', 'network unreachable (reply 3)'],
      [4, 'PROXY_UNAVAILABLE', 'host unreachable (reply 4)'],
      [5, 'PROXY_UNAVAILABLE', 'connection refused (reply 5)'],
      [6, 'PROXY_UNAVAILABLE', 'TTL expired (reply 6)'],
      [7, 'PROXY_REFUSED', 'command not supported (reply 7)'],
      [8, 'PROXY_REFUSED', 'address type not supported (reply 8)'],
    ] as const;
    for (const [n, code, reply] of cases) {
      const r = socks5Refusal(n);
      assert.equal(r.code, code);
      assert.equal(r.reply, reply);
    }
  });

  it('maps SOCKS4 replies 91-93', () => {
    assert.equal(socks4Refusal(91).code, 'PROXY_REFUSED');
    assert.equal(socks4Refusal(92).code, 'PROXY_AUTH_REQUIRED');
    assert.match(socks4Refusal(93).reply, /reply 93/);
  });

  it('tells missing credentials from rejected ones', () => {
    assert.match(socksAuthRefusal('method', false).hint, /--proxy-user/);
    assert.match(socksAuthRefusal('method', true).hint, /GSSAPI/);
    assert.equal(socksAuthRefusal('password', true).code, 'PROXY_AUTH_REQUIRED');
  });

  it('an unassigned reply is still a refusal, named with its number', () => {
    assert.equal(socks5Refusal(0x2a).reply, 'unassigned SOCKS5 reply 42');
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 255 }), (n) => {
        assert.equal(typeof socks5Refusal(n).reply, 'string');
        assert.equal(typeof socks4Refusal(n).reply, 'string');
      }),
    );
  });
});
