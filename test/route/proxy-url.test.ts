import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import util from 'node:util';
import fc from 'fast-check';
import { Credentials } from '../../src/auth/credentials.js';
import { isWsviaError } from '../../src/errors.js';
import { parseProxyUrl, redactUrlText, withCredentials } from '../../src/route/proxy-url.js';
import { catchWsvia } from '../helpers/bytes.js';

describe('parseProxyUrl', () => {
  it('reads scheme, host and port, with curl’s default ports (1080, 443 for https)', () => {
    for (const [text, scheme, host, port] of [
      ['http://proxy.example:3128', 'http', 'proxy.example', 3128],
      ['proxy.example:3128', 'http', 'proxy.example', 3128],
      ['proxy.example', 'http', 'proxy.example', 1080],
      ['http://proxy.example', 'http', 'proxy.example', 1080],
      ['http://proxy.example/', 'http', 'proxy.example', 1080],
      ['http://proxy.example:80', 'http', 'proxy.example', 80],
      ['proxy.example:80', 'http', 'proxy.example', 80],
      ['https://proxy.example', 'https', 'proxy.example', 443],
      ['https://proxy.example:443', 'https', 'proxy.example', 443],
      ['https://proxy.example:80', 'https', 'proxy.example', 80],
      ['socks5://s:1081', 'socks5', 's', 1081],
      ['socks5h://s', 'socks5h', 's', 1080],
      ['socks4://s', 'socks4', 's', 1080],
      ['socks4a://s', 'socks4a', 's', 1080],
      ['HTTP://PROXY.Example:8080', 'http', 'proxy.example', 8080],
      ['  http://p:1  ', 'http', 'p', 1],
    ] as const) {
      const p = parseProxyUrl(text);
      assert.deepEqual([p.scheme, p.host, p.port], [scheme, host, port], text);
      assert.equal(p.credentials, undefined);
    }
  });

  it('reads IPv6 literals, unbracketed in host and bracketed in display', () => {
    for (const [text, port] of [
      ['http://[::1]:3128', 3128],
      ['[::1]:3128', 3128],
      ['http://[::1]', 1080],
      ['http://[::1]:80', 80],
      ['socks5://[::1]:1080', 1080],
    ] as const) {
      const p = parseProxyUrl(text);
      assert.equal(p.host, '::1', text);
      assert.equal(p.port, port, text);
      assert.match(p.display, /\/\/\[::1\]:\d+$/);
    }
  });

  it('percent-decodes credentials; ":" and "@" may appear in the password', () => {
    for (const [text, user, pass] of [
      ['http://alice:secret@p:3128', 'alice', 'secret'],
      ['http://alice:pa:ss@p:3128', 'alice', 'pa:ss'],
      ['http://alice:p%40ss%3Aw%2Fd@p:3128', 'alice', 'p@ss:w/d'],
      ['http://alice:p@ss@p:3128', 'alice', 'p@ss'],
      ['http://al%20ice:%E2%82%AC@p:3128', 'al ice', '\u20ac'],
      ['http://alice@p:3128', 'alice', ''],
      ['http://alice:@p:3128', 'alice', ''],
      ['http://:secret@p:3128', '', 'secret'],
      ['alice:secret@p:3128', 'alice', 'secret'],
    ] as const) {
      const p = parseProxyUrl(text);
      assert.ok(p.credentials, text);
      assert.equal(p.credentials.user, user, text);
      assert.equal(p.credentials.reveal(), pass, text);
      assert.equal(p.host, 'p');
    }
  });

  it('redacts the password in display and everywhere the parsed URL is printed', () => {
    const p = parseProxyUrl('http://alice:s3cr3t@p:3128');
    assert.equal(p.display, 'http://alice:***@p:3128');
    for (const r of [
      util.inspect(p, { depth: 5 }),
      JSON.stringify(p),
      String(p.credentials),
      `${p.display}`,
    ]) {
      assert.doesNotMatch(r, /s3cr3t/, r);
    }
    assert.equal(parseProxyUrl('http://a%40b:x@p:1').display, 'http://a%40b:***@p:1');
  });

  it('refuses bad schemes, missing hosts, paths and queries with INVALID_ARGUMENT', () => {
    for (const text of [
      'ftp://p:21',
      'ws://p:80',
      'socks://p',
      'file:///etc/passwd',
      'http://',
      'http://:3128',
      'http://p:3128/path',
      'http://p:3128?x=1',
      'http://p:3128#frag',
      'http://p:99999',
      'http://p:port',
      'http://[::1',
      '',
      '   ',
    ]) {
      const e = catchWsvia(() => parseProxyUrl(text));
      assert.equal(e.code, 'INVALID_ARGUMENT', JSON.stringify(text));
      assert.equal(e.hop, 'config');
    }
  });

  it('never shows the password of a URL it refuses', () => {
    for (const text of [
      'ftp://u:s3cr3t@p',
      'http://u:s3cr3t@p:3128/path',
      'http://u:s3/cr3t@p',
      'http://u:s3cr3t@@p:99999',
      'http://u:s3@cr3t@p/x',
      'u:s3cr3t@p:port',
      'http://u:%zzs3cr3t@p',
    ]) {
      const e = catchWsvia(() => parseProxyUrl(text));
      assert.doesNotMatch(`${e.message} ${JSON.stringify(e)}`, /s3|cr3t/, text);
    }
  });

  it('never throws anything but a WsviaError, and never leaks the password (property)', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 50 }),
          fc.webUrl({ withQueryParameters: true }),
          fc.webAuthority({ withUserInfo: true }),
        ),
        (text) => {
          try {
            const p = parseProxyUrl(text);
            if (p.credentials && p.credentials.reveal().length > 3) {
              assert.ok(!p.display.includes(p.credentials.reveal()));
            }
          } catch (e) {
            if (!isWsviaError(e)) throw e;
          }
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe('withCredentials and redactUrlText', () => {
  it('replaces the credentials and the display', () => {
    const p = withCredentials(parseProxyUrl('http://a:b@p:1'), new Credentials('c', 'd'));
    assert.equal(p.credentials?.user, 'c');
    assert.equal(p.display, 'http://c:***@p:1');
    assert.equal(withCredentials(p, undefined).display, 'http://p:1');
  });

  it('redacts passwords in text that is not a URL, up to the last @', () => {
    assert.equal(redactUrlText('http://u:p@h'), 'http://u:***@h');
    assert.equal(redactUrlText('u:p@h'), 'u:***@h');
    assert.equal(redactUrlText('http://u:p/a@b@h:1/x'), 'http://u:***@h:1/x');
    assert.equal(redactUrlText('http://h:1'), 'http://h:1');
  });
});
