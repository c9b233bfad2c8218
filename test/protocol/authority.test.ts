import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isWsviaError, RemoteProtocolError } from '../../src/errors.js';
import { formatAuthority, formatHost, parseAuthority, unbracket } from '../../src/protocol/authority.js';
import { catchWsvia } from '../helpers/bytes.js';

describe('parseAuthority (RFC 9112 §3.2.3, strict)', () => {
  it('parses names, IPv4 and bracketed IPv6 with a port', () => {
    for (const [text, host, port] of [
      ['example.com:443', 'example.com', 443],
      ['Example.COM:80', 'example.com', 80],
      ['a:1', 'a', 1],
      ['my_host-1.internal:65535', 'my_host-1.internal', 65535],
      ['example.com.:443', 'example.com.', 443],
      ['127.0.0.1:8080', '127.0.0.1', 8080],
      ['[::1]:443', '::1', 443],
      ['[2001:DB8::1]:8443', '2001:db8::1', 8443],
      ['[::ffff:127.0.0.1]:80', '::ffff:127.0.0.1', 80],
      ['1.2.3.example:80', '1.2.3.example', 80],
      ['0x7f.example:80', '0x7f.example', 80],
    ] as const) {
      assert.deepEqual(parseAuthority(text), { host, port }, text);
    }
  });

  it('rejects ports 0 and 65536, missing or malformed ports', () => {
    for (const text of [
      'example.com:0',
      'example.com:65536',
      'example.com:99999',
      'example.com:123456',
      'example.com',
      'example.com:',
      'example.com:-1',
      'example.com:+80',
      'example.com:8o',
      'example.com: 80',
      '[::1]',
      '[::1]:',
      '[::1]:0',
      '[::1]:65536',
    ]) {
      const e = catchWsvia(() => parseAuthority(text));
      assert.ok(e instanceof RemoteProtocolError, text);
      assert.equal(e.code, 'PROTOCOL_ERROR');
      assert.equal(e.statusHint, 400);
    }
  });

  it('rejects IPv6 without brackets, bad brackets and non-IPv6 in brackets', () => {
    for (const text of [
      '::1:443',
      '2001:db8::1:443',
      '[::1:443',
      '::1]:443',
      '[example.com]:443',
      '[1.2.3.4]:80',
      '[::1]x:443',
      '[]:80',
      '[::g]:80',
    ]) {
      assert.equal(catchWsvia(() => parseAuthority(text)).code, 'PROTOCOL_ERROR', text);
    }
  });

  it('rejects garbage: empty, spaces, userinfo, paths, schemes, bad labels', () => {
    for (const text of [
      '',
      ':443',
      'exa mple.com:443',
      'user@example.com:443',
      'user:pass@example.com:443',
      'example.com/path:443',
      'http://example.com:443',
      '-example.com:443',
      'exa..mple.com:443',
      '.example.com:443',
      `${'a'.repeat(64)}.com:443`,
      `${'a.'.repeat(127)}aa:443`,
      'ex\u00e4mple.com:443',
      'example.com:443\r\n',
      '*:443',
    ]) {
      assert.equal(catchWsvia(() => parseAuthority(text)).code, 'PROTOCOL_ERROR', JSON.stringify(text));
    }
  });

  it('rejects legacy IPv4 spellings that the resolver would read as addresses (STYLE trap 9)', () => {
    for (const text of [
      '0x7f.0.0.1:80',
      '0x7f000001:80',
      '2130706433:80',
      '127.1:80',
      '010.0.0.1:80',
      '127.0.0.01:80',
      '1.2.3:80',
      '1e2.0.0.1:80',
      '256.0.0.1:80',
      'example.0x10:80',
      'example.123:80',
    ]) {
      assert.equal(catchWsvia(() => parseAuthority(text)).code, 'PROTOCOL_ERROR', text);
    }
  });

  it('names the peer in the message, and shows a cut version of the input', () => {
    const e = catchWsvia(() => parseAuthority(`${'x'.repeat(300)}`, 'client 127.0.0.1:5000'));
    assert.match(e.message, /^client 127\.0\.0\.1:5000 sent an invalid authority "x{100}"/);
  });

  it('never throws anything but a WsviaError, and round-trips what it accepts (property)', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 40 }),
          fc
            .tuple(
              fc.oneof(
                fc.domain(),
                fc.ipV4(),
                fc.ipV6().map((a) => `[${a}]`),
              ),
              fc.integer({ min: -1, max: 70000 }),
            )
            .map(([h, p]) => `${h}:${p}`),
        ),
        (text) => {
          try {
            const a = parseAuthority(text);
            assert.ok(a.port >= 1 && a.port <= 65535);
            assert.deepEqual(parseAuthority(formatAuthority(a)), a);
          } catch (e) {
            if (!isWsviaError(e)) throw e;
          }
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe('formatAuthority, formatHost, unbracket', () => {
  it('brackets IPv6 only', () => {
    assert.equal(formatAuthority({ host: '::1', port: 443 }), '[::1]:443');
    assert.equal(formatAuthority({ host: 'a.b', port: 80 }), 'a.b:80');
    assert.equal(formatHost('10.0.0.1'), '10.0.0.1');
    assert.equal(formatHost('fe80::1'), '[fe80::1]');
    assert.equal(unbracket('[::1]'), '::1');
    assert.equal(unbracket('::1'), '::1');
    assert.equal(unbracket('example.com'), 'example.com');
  });
});
