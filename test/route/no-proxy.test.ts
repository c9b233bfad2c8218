import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { matchNoProxy, parseNoProxy } from '../../src/route/no-proxy.js';

function matches(noProxy: string, host: string, port = 443): boolean {
  return matchNoProxy(parseNoProxy(noProxy), host, port) !== undefined;
}

// [NO_PROXY value, target host (IPv6 unbracketed, as a URL's hostname after unbracketing), port, bypass?]
const TABLE: readonly (readonly [string, string, number, boolean])[] = [
  // curl's documented cases (CURLOPT_NOPROXY): a name matches itself and its subdomains, on any port.
  ['ample.com', 'ample.com', 443, true],
  ['ample.com', 'ample.com', 80, true],
  ['ample.com', 'www.ample.com', 443, true],
  ['ample.com', 'www.example.com', 443, false],
  ['ample.com', 'ample.com.org', 443, false],
  ['.example.com', 'www.example.com', 443, true],
  ['.example.com', 'foo.example.com', 443, true],
  ['.example.com', 'a.b.example.com', 443, true],
  ['.example.com', 'example.com', 443, true],
  ['example.com', 'notexample.com', 443, false],
  ['example.com', 'example.com.evil.net', 443, false],
  ['example.com', 'www.notexample.com', 443, false],
  ['example.com', 'example.com.othertld', 443, false],
  ['.example.com', 'notexample.com', 443, false],
  ['*.example.com', 'www.example.com', 443, true],
  ['*.example.com', 'wwwexample.com', 443, false],
  // '*' alone bypasses every host.
  ['*', 'anything.example', 1, true],
  ['*', '10.0.0.1', 1, true],
  ['*', '::1', 1, true],
  [' * ', 'anything.example', 1, true],
  // ...but only as the whole value, as curl does: in a list it is no wildcard.
  ['localhost,*', 'anything.example', 1, false],
  ['*, localhost', 'localhost', 1, true],
  ['localhost *', 'anything.example', 1, false],
  ['.', 'anything.example', 1, false],
  ['', 'example.com', 443, false],
  [' , ,', 'example.com', 443, false],
  // host:port limits the entry to that port.
  ['example.com:8080', 'example.com', 8080, true],
  ['example.com:8080', 'example.com', 443, false],
  ['example.com:8080', 'www.example.com', 8080, true],
  ['127.0.0.1:9000', '127.0.0.1', 9000, true],
  ['127.0.0.1:9000', '127.0.0.1', 9001, false],
  ['[::1]:8080', '::1', 8080, true],
  ['[::1]:8080', '::1', 8081, false],
  // IPv4 addresses match addresses only: no DNS, so a name never matches an address rule.
  ['127.0.0.1', '127.0.0.1', 443, true],
  ['127.0.0.1', '127.0.0.2', 443, false],
  ['127.0.0.1', 'localhost', 443, false],
  ['localhost', '127.0.0.1', 443, false],
  ['localhost', 'localhost', 443, true],
  ['127.0.0.1', '::ffff:127.0.0.1', 443, true],
  ['10.0.0.1', '10.0.0.10', 443, false],
  ['0.0.1', '10.0.0.1', 443, false],
  // IPv6, bracketed or not (curl: enter them without brackets).
  ['::1', '::1', 443, true],
  ['[::1]', '::1', 443, true],
  ['::1', '::2', 443, false],
  ['2001:DB8::1', '2001:db8:0:0:0:0:0:1', 443, true],
  ['example.com,::1,localhost', '::1', 443, true],
  ['example.com,::1,localhost', 'localhost', 443, true],
  // CIDR, IPv4 and IPv6 (curl >= 7.86).
  ['192.168.0.0/16', '192.168.77.1', 443, true],
  ['192.168.0.0/16', '192.169.0.1', 443, false],
  ['10.0.0.0/8', '10.1.2.3', 443, true],
  ['10.0.0.0/8', '::ffff:10.1.2.3', 443, true],
  ['10.0.0.0/8', 'ten.example', 443, false],
  ['fe80::/10', 'fe80::1', 443, true],
  ['fe80::/10', 'fec0::1', 443, false],
  ['[fe80::]/10', 'fe80::abcd', 443, true],
  ['fc00::/7', 'fd12:3456::1', 443, true],
  ['10.0.0.0/8:8080', '10.0.0.1', 8080, true],
  ['10.0.0.0/8:8080', '10.0.0.1', 80, false],
  // Case-insensitive, trailing dots ignored.
  ['EXAMPLE.com', 'www.Example.COM', 443, true],
  ['example.com.', 'example.com', 443, true],
  ['example.com', 'example.com.', 443, true],
  // Separated by commas and/or spaces, entries trimmed.
  ['a.test, b.test  c.test,,d.test\t e.test', 'c.test', 443, true],
  ['a.test, b.test  c.test,,d.test\t e.test', 'e.test', 443, true],
  ['a.test, b.test  c.test,,d.test\t e.test', 'f.test', 443, false],
  ['a.test,10.0.0.0/8, .b.test', 'x.b.test', 443, true],
];

describe('NO_PROXY (curl conventions)', () => {
  for (const [noProxy, host, port, want] of TABLE) {
    it(`${JSON.stringify(noProxy)} ${want ? 'bypasses' : 'does not bypass'} ${host} port ${port}`, () => {
      assert.equal(matches(noProxy, host, port), want);
    });
  }

  it('returns the entry that matched, as written', () => {
    const rule = matchNoProxy(parseNoProxy('a.test, .Example.COM:443'), 'www.example.com', 443);
    assert.equal(rule?.text, '.Example.COM:443');
  });

  it('reads "*" alone as every host', () => {
    assert.deepEqual(parseNoProxy('*'), [{ kind: 'all', text: '*' }]);
  });

  it('parses entries into name and cidr rules, skipping a "*" in a list', () => {
    assert.deepEqual(
      parseNoProxy('*, .a.test, b.test:80, 10.0.0.0/8, [::1]:3128').map((r) => [
        r.kind,
        'port' in r ? r.port : undefined,
      ]),
      [
        ['name', undefined],
        ['name', 80],
        ['cidr', undefined],
        ['cidr', 3128],
      ],
    );
  });

  it('never throws, whatever the list and host (property)', () => {
    const entry = fc.oneof(
      fc.domain(),
      fc.ipV4(),
      fc.ipV6(),
      fc.string({ maxLength: 20 }),
      fc.constantFrom('*', '.', ':', '[', ']', '/'),
    );
    fc.assert(
      fc.property(
        fc.array(entry, { maxLength: 6 }),
        fc.oneof(fc.domain(), fc.ipV4(), fc.ipV6(), fc.string()),
        fc.nat(65535),
        (entries, host, port) => {
          matchNoProxy(parseNoProxy(entries.join(',')), host, port);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('a domain entry matches exactly itself and names ending in "." + itself (property)', () => {
    fc.assert(
      fc.property(fc.domain(), fc.domain(), (rule, host) => {
        const want = host === rule || host.endsWith(`.${rule}`);
        assert.equal(matches(rule, host), want);
        assert.equal(matches(rule, `sub.${rule}`), true);
        assert.equal(matches(rule, `x${rule}`), false);
      }),
      { numRuns: 500 },
    );
  });
});
