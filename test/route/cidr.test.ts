import assert from 'node:assert/strict';
import { BlockList } from 'node:net';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { cidrContains, ipBytes, parseCidr, unmapIpv4 } from '../../src/route/cidr.js';

function contains(cidr: string, addr: string): boolean {
  const c = parseCidr(cidr);
  const a = ipBytes(addr);
  assert.ok(c, cidr);
  assert.ok(a, addr);
  return cidrContains(c, a);
}

describe('ipBytes: strict literals (STYLE trap 9)', () => {
  it('parses canonical IPv4 and IPv6', () => {
    assert.deepEqual([...(ipBytes('127.0.0.1') ?? [])], [127, 0, 0, 1]);
    assert.deepEqual([...(ipBytes('255.255.255.255') ?? [])], [255, 255, 255, 255]);
    assert.deepEqual([...(ipBytes('::1') ?? [])], [...Array<number>(15).fill(0), 1]);
    assert.deepEqual(
      [...(ipBytes('2001:db8::ff:1') ?? [])],
      [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0, 1],
    );
    assert.deepEqual(
      [...(ipBytes('1:2:3:4:5:6:7:8') ?? [])],
      [0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8],
    );
    assert.deepEqual([...(ipBytes('::') ?? [])], Array<number>(16).fill(0));
    assert.deepEqual([...(ipBytes('::ffff:127.0.0.1') ?? [])].slice(10), [0xff, 0xff, 127, 0, 0, 1]);
    assert.deepEqual([...(ipBytes('fe80::1%eth0') ?? [])].slice(0, 2), [0xfe, 0x80]);
  });

  it('rejects every lenient IPv4 spelling', () => {
    for (const t of [
      '0x7f.0.0.1',
      '1e2.0.0.1',
      '010.0.0.1',
      '127.0.0.01',
      '127.1',
      '2130706433',
      '0177.0.0.1',
      '...',
      '1.2.3',
      '1.2.3.4.5',
      '256.0.0.1',
      ' 1.2.3.4',
      '1.2.3.4 ',
      '+1.2.3.4',
      '',
      'localhost',
      '::ffff:010.0.0.1',
      '[::1]',
      '::g',
      '1:2:3:4:5:6:7:8:9',
      '1::2::3',
    ]) {
      assert.equal(ipBytes(t), undefined, t);
    }
  });

  it('agrees with node for any generated address (property)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.ipV4(), fc.ipV6()), (a) => {
        const b = ipBytes(a);
        assert.ok(b, a);
        assert.equal(b.length, a.includes(':') ? 16 : 4);
      }),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.ipV4(), (a) => {
        assert.deepEqual([...(ipBytes(a) ?? [])], a.split('.').map(Number));
      }),
    );
  });

  it('never throws on any string (property)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 50 }), (s) => {
        ipBytes(s);
        parseCidr(s);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('parseCidr and cidrContains', () => {
  it('matches IPv4 ranges', () => {
    assert.ok(contains('10.0.0.0/8', '10.255.1.2'));
    assert.ok(!contains('10.0.0.0/8', '11.0.0.1'));
    assert.ok(contains('192.168.0.0/16', '192.168.77.1'));
    assert.ok(contains('172.16.0.0/12', '172.31.255.255'));
    assert.ok(!contains('172.16.0.0/12', '172.32.0.0'));
    assert.ok(contains('0.0.0.0/0', '8.8.8.8'));
    assert.ok(contains('1.2.3.4', '1.2.3.4'));
    assert.ok(!contains('1.2.3.4', '1.2.3.5'));
    assert.ok(contains('1.2.3.4/32', '1.2.3.4'));
    assert.ok(contains('10.1.2.3/8', '10.9.9.9'), 'host bits in the rule are ignored');
    assert.ok(contains('192.168.1.128/25', '192.168.1.200'));
    assert.ok(!contains('192.168.1.128/25', '192.168.1.100'));
  });

  it('matches IPv6 ranges, bracketed or not', () => {
    assert.ok(contains('fe80::/10', 'febf::1'));
    assert.ok(!contains('fe80::/10', 'fec0::1'));
    assert.ok(contains('[2001:db8::]/32', '2001:db8:ffff::1'));
    assert.ok(contains('::1/128', '::1'));
    assert.ok(contains('::1', '::1'));
    assert.ok(!contains('::1', '::2'));
    assert.ok(contains('::/0', '2001:db8::1'));
  });

  it('matches IPv4-mapped IPv6 addresses against IPv4 rules, and the other way round', () => {
    assert.ok(contains('127.0.0.0/8', '::ffff:127.0.0.1'));
    assert.ok(contains('127.0.0.0/8', '::ffff:7f00:1'));
    assert.ok(!contains('127.0.0.0/8', '::ffff:10.0.0.1'));
    assert.ok(contains('::ffff:127.0.0.0/104', '127.1.2.3'));
    assert.ok(contains('::ffff:10.0.0.1', '10.0.0.1'));
    assert.ok(!contains('10.0.0.0/8', '::a00:1'), 'IPv4-compatible (not mapped) addresses are IPv6');
    assert.ok(!contains('::/0', '10.0.0.1'), 'an IPv6 rule does not cover an IPv4 address');
  });

  it('rejects bad prefixes and non-addresses', () => {
    for (const t of [
      '10.0.0.0/33',
      '::/129',
      '10.0.0.0/',
      '10.0.0.0/-1',
      '10.0.0.0/8/8',
      '10.0.0.0/a',
      '10.0.0.0/1000',
      'example.com/8',
      '0x7f.0.0.0/8',
      '/8',
      '10.0.0.0 /8',
    ]) {
      assert.equal(parseCidr(t), undefined, t);
    }
  });

  it('unmaps only ::ffff:0:0/96', () => {
    assert.equal(unmapIpv4(ipBytes('::ffff:1.2.3.4') as Uint8Array).length, 4);
    assert.equal(unmapIpv4(ipBytes('::1.2.3.4') as Uint8Array).length, 16);
    assert.equal(unmapIpv4(ipBytes('1.2.3.4') as Uint8Array).length, 4);
  });

  it('a /n range contains exactly the addresses sharing the first n bits (property)', () => {
    fc.assert(
      fc.property(fc.ipV4(), fc.ipV4(), fc.integer({ min: 0, max: 32 }), (net, addr, prefix) => {
        const toInt = (s: string) => s.split('.').reduce((n, p) => n * 256 + Number(p), 0);
        const mask = prefix === 0 ? 0 : Math.pow(2, 32) - Math.pow(2, 32 - prefix);
        const same = (toInt(net) & mask) >>> 0 === (toInt(addr) & mask) >>> 0;
        assert.equal(contains(`${net}/${prefix}`, addr), same);
      }),
      { numRuns: 1000 },
    );
  });

  it('agrees with node:net BlockList on IPv4 and IPv6 subnets, mapped addresses included (property)', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.tuple(
            fc.ipV4(),
            fc.integer({ min: 0, max: 32 }),
            fc.oneof(
              fc.ipV4(),
              fc.ipV4().map((a) => `::ffff:${a}`),
            ),
          ),
          fc.tuple(fc.ipV6(), fc.integer({ min: 0, max: 128 }), fc.ipV6()),
        ),
        ([net, prefix, addr]) => {
          const v6 = net.includes(':');
          const list = new BlockList();
          list.addSubnet(net, prefix, v6 ? 'ipv6' : 'ipv4');
          const want = list.check(addr, addr.includes(':') ? 'ipv6' : 'ipv4');
          assert.equal(contains(`${net}/${prefix}`, addr), want, `${net}/${prefix} ${addr}`);
        },
      ),
      { numRuns: 2000 },
    );
  });
});
