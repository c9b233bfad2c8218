import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { socksRefusal } from '../../src/protocol/socks-reply.js';

describe('socksRefusal', () => {
  it('maps every RFC 1928 reply to a code and its RFC wording', () => {
    const cases = [
      ['Failure', 'PROXY_UNAVAILABLE', 'general SOCKS server failure (reply 1)'],
      ['NotAllowed', 'PROXY_REFUSED', 'connection not allowed by ruleset (reply 2)'],
      ['NetworkUnreachable', 'PROXY_UNAVAILABLE', 'network unreachable (reply 3)'],
      ['HostUnreachable', 'PROXY_UNAVAILABLE', 'host unreachable (reply 4)'],
      ['ConnectionRefused', 'PROXY_UNAVAILABLE', 'connection refused (reply 5)'],
      ['TTLExpired', 'PROXY_UNAVAILABLE', 'TTL expired (reply 6)'],
      ['CommandNotSupported', 'PROXY_REFUSED', 'command not supported (reply 7)'],
      ['AddressNotSupported', 'PROXY_REFUSED', 'address type not supported (reply 8)'],
    ] as const;
    for (const [name, code, reply] of cases) {
      const r = socksRefusal(`Socks5 proxy rejected connection - ${name}`, false);
      assert.equal(r?.code, code);
      assert.equal(r?.reply, reply);
    }
  });

  it('maps SOCKS4 replies 91-93', () => {
    assert.equal(socksRefusal('Socks4 Proxy rejected connection - (Failed)', false)?.code, 'PROXY_REFUSED');
    assert.equal(
      socksRefusal('Socks4 Proxy rejected connection - (Rejected)', false)?.code,
      'PROXY_AUTH_REQUIRED',
    );
    assert.match(
      socksRefusal('Socks4 Proxy rejected connection - (RejectedIdent)', false)?.reply ?? '',
      /reply 93/,
    );
  });

  it('tells missing credentials from rejected ones', () => {
    const none = socksRefusal(
      'Received invalid Socks5 initial handshake (no accepted authentication type)',
      false,
    );
    assert.match(none?.hint ?? '', /--proxy-user/);
    const some = socksRefusal(
      'Received invalid Socks5 initial handshake (no accepted authentication type)',
      true,
    );
    assert.match(some?.hint ?? '', /GSSAPI/);
    assert.equal(socksRefusal('Socks5 Authentication failed', true)?.code, 'PROXY_AUTH_REQUIRED');
  });

  it('an unassigned reply is still a refusal; other text is not', () => {
    assert.match(
      socksRefusal('Socks5 proxy rejected connection - undefined', false)?.reply ?? '',
      /unassigned/,
    );
    assert.equal(socksRefusal('Socket closed', false), undefined);
  });

  it('any text gives a refusal or undefined, never a throw', () => {
    fc.assert(
      fc.property(fc.string(), fc.boolean(), (text, creds) => {
        const r = socksRefusal(text, creds);
        assert.ok(r === undefined || typeof r.reply === 'string');
      }),
    );
  });
});
