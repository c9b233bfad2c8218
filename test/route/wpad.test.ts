import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { mayTryWpadIn, normalizeDomain, resolvConfDomains, wpadCandidates } from '../../src/route/wpad.js';

const from = (domain: string) => ({ domain, origin: 'in /etc/resolv.conf' });
const urls = (...domains: string[]) => wpadCandidates(domains.map(from)).map((c) => c.url);

describe('WPAD candidates up the search domains', () => {
  const table: [string[], string[]][] = [
    [
      ['a.b.corp.example'],
      [
        'http://wpad.a.b.corp.example/wpad.dat',
        'http://wpad.b.corp.example/wpad.dat',
        'http://wpad.corp.example/wpad.dat',
      ],
    ],
    [['corp.example'], ['http://wpad.corp.example/wpad.dat']],
    [['example'], []], // a single label: never wpad.example
    [['com'], []],
    [['eng.corp.co.uk'], ['http://wpad.eng.corp.co.uk/wpad.dat', 'http://wpad.corp.co.uk/wpad.dat']],
    [['co.uk'], []], // a public suffix: never wpad.co.uk
    [['shop.com.au'], ['http://wpad.shop.com.au/wpad.dat']],
    [['x.io'], ['http://wpad.x.io/wpad.dat']], // io's second level is not a generic one
    [['Corp.Example.'], ['http://wpad.corp.example/wpad.dat']], // case and the root's dot
    // Shared parents are tried once, at their first place.
    [
      ['a.corp.example', 'b.corp.example'],
      [
        'http://wpad.a.corp.example/wpad.dat',
        'http://wpad.corp.example/wpad.dat',
        'http://wpad.b.corp.example/wpad.dat',
      ],
    ],
    [
      ['10.0.0.1', 'bad..name', 'under_score.corp.example', '-x.corp'],
      ['http://wpad.under_score.corp.example/wpad.dat', 'http://wpad.corp.example/wpad.dat'],
    ],
    [[], []],
  ];
  for (const [domains, expected] of table) {
    it(`${JSON.stringify(domains)} -> ${expected.length} candidates`, () => {
      assert.deepEqual(urls(...domains), expected);
    });
  }

  it('each candidate says its search domain and where it came from', () => {
    const [first, last] = [
      wpadCandidates([from('a.corp.example')])[0],
      wpadCandidates([from('a.corp.example')])[1],
    ];
    assert.deepEqual(first, {
      name: 'wpad.a.corp.example',
      url: 'http://wpad.a.corp.example/wpad.dat',
      searchDomain: 'a.corp.example',
      origin: 'in /etc/resolv.conf',
    });
    assert.equal(last?.searchDomain, 'a.corp.example');
  });

  it('the stop rule', () => {
    assert.equal(mayTryWpadIn('example'), false);
    assert.equal(mayTryWpadIn('corp.example'), true);
    assert.equal(mayTryWpadIn('co.uk'), false);
    assert.equal(mayTryWpadIn('corp.co.uk'), true);
    assert.equal(normalizeDomain('192.168.0.1'), null);
    assert.equal(normalizeDomain(''), null);
  });

  it('property: terminates, never a single label or a public second level, only wpad.<valid name>', () => {
    const label = fc.oneof(
      fc.constantFrom('co', 'uk', 'com', 'example', 'corp', 'a', 'io', 'x'),
      fc.stringMatching(/^[a-z0-9-]{1,12}$/),
    );
    const domain = fc.oneof(
      fc.array(label, { minLength: 0, maxLength: 10 }).map((l) => l.join('.')),
      fc.string({ maxLength: 40 }),
    );
    fc.assert(
      fc.property(fc.array(domain, { maxLength: 5 }), (domains) => {
        const cs = wpadCandidates(domains.map(from));
        const totalLabels = domains.reduce((n, d) => n + d.split('.').length, 0);
        assert.ok(cs.length <= totalLabels);
        assert.equal(new Set(cs.map((c) => c.url)).size, cs.length, 'no duplicates');
        for (const c of cs) {
          assert.ok(c.name.startsWith('wpad.'));
          const rest = c.name.slice(5);
          const labels = rest.split('.');
          assert.ok(labels.length >= 2, `single label: ${c.name}`);
          assert.ok(mayTryWpadIn(rest), c.name);
          assert.equal(normalizeDomain(c.name), c.name);
          assert.equal(c.url, `http://${c.name}/wpad.dat`);
        }
      }),
      { numRuns: 1000 },
    );
  });
});

describe('resolv.conf search domains', () => {
  it('the search line, with comments', () => {
    assert.deepEqual(
      resolvConfDomains('# generated\nnameserver 10.0.0.1\nsearch a.corp.example corp.example ; x\n'),
      {
        keyword: 'search',
        domains: ['a.corp.example', 'corp.example'],
      },
    );
  });
  it('the last of search and domain wins (resolv.conf(5))', () => {
    assert.deepEqual(resolvConfDomains('search a.example b.example\ndomain c.example\n'), {
      keyword: 'domain',
      domains: ['c.example'],
    });
    assert.deepEqual(resolvConfDomains('domain c.example\r\nsearch a.example\r\n'), {
      keyword: 'search',
      domains: ['a.example'],
    });
  });
  it('none', () => {
    assert.equal(resolvConfDomains('nameserver 127.0.0.53\noptions edns0\nsearch\n'), null);
    assert.equal(resolvConfDomains(''), null);
  });
});
