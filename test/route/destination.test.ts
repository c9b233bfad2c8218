import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { embeddedIpv4, ipBytes } from '../../src/route/cidr.js';
import {
  checkDestination,
  classifyAddress,
  DEFAULT_POLICY,
  destinationRules,
  parseHostRule,
  parsePortList,
  type DestinationPolicy,
} from '../../src/route/destination.js';

const ALL_PORTS: DestinationPolicy = { ...DEFAULT_POLICY, ports: parsePortList('*') };
const hex = (a: number, b: number): string => ((a << 8) | b).toString(16);

/** Every IPv6 form that carries `v4`, in the spelling a client would send. */
function carriers([a, b, c, d]: readonly number[]): string[] {
  const [x, y, z, w] = [a, b, c, d] as [number, number, number, number];
  const dotted = `${x}.${y}.${z}.${w}`;
  return [
    `::ffff:${dotted}`,
    `::ffff:${hex(x, y)}:${hex(z, w)}`,
    `::ffff:0:${dotted}`,
    `::ffff:0:${hex(x, y)}:${hex(z, w)}`,
    `64:ff9b::${dotted}`,
    `64:ff9b::${hex(x, y)}:${hex(z, w)}`,
    `2002:${hex(x, y)}:${hex(z, w)}::1`,
    `2001:0:4136:e378:8000:63bf:${hex(x ^ 0xff, y ^ 0xff)}:${hex(z ^ 0xff, w ^ 0xff)}`,
    // IPv4-compatible: ::0.0.0.0 and ::0.0.0.1 are :: and ::1, addresses of their own.
    ...(x + y + z === 0 && w <= 1 ? [] : [`::${dotted}`, `::${hex(x, y)}:${hex(z, w)}`]),
  ];
}

describe('address classes by what a connection reaches (STYLE.md trap 20)', () => {
  it('classifies every IPv6 form that carries 127.0.0.1 as loopback', () => {
    for (const a of [
      '::7f00:1',
      '::127.0.0.1',
      '64:ff9b::7f00:1',
      '64:ff9b::127.0.0.1',
      '::ffff:0:7f00:1',
      '::ffff:0:127.0.0.1',
      '::ffff:7f00:1',
      '2002:7f00:1::',
      '2002:7f00:1:0:1:2:3:4',
      '2001:0:4136:e378:8000:63bf:80ff:fffe',
    ]) {
      assert.equal(classifyAddress(a), 'loopback', a);
    }
  });

  it('classifies carried private, metadata and public addresses by the IPv4', () => {
    assert.equal(classifyAddress('::a00:1'), 'private');
    assert.equal(classifyAddress('64:ff9b::a9fe:a9fe'), 'metadata');
    assert.equal(classifyAddress('2002:a9fe:a9fe::'), 'metadata');
    assert.equal(classifyAddress('2002:c0a8:101::1'), 'private');
    assert.equal(classifyAddress('64:ff9b::5db8:d822'), 'public');
    assert.equal(classifyAddress('2002:5db8:d822::1'), 'public');
    // Neither loopback nor unspecified lose their own class to the compatible form.
    assert.equal(classifyAddress('::1'), 'loopback');
    assert.equal(classifyAddress('::'), 'unspecified');
    assert.equal(classifyAddress('2001:db8::1'), 'public');
  });

  it('an IPv4 carried in any IPv6 form classifies as the bare IPv4 (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 4, maxLength: 4 }), (v4) => {
        const bare = classifyAddress(v4.join('.'));
        for (const form of carriers(v4)) {
          assert.deepEqual([...(embeddedIpv4(ipBytes(form) as Uint8Array) ?? [])], v4, form);
          assert.equal(classifyAddress(form), bare, form);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('treats 0.0.0.0/8 and :: as unspecified, denied whatever --allow and --allow-private say', () => {
    const broad: DestinationPolicy = {
      ...ALL_PORTS,
      allowPrivate: true,
      allow: ['0.0.0.0/0', '::/0', '0.0.0.0', '::', 'zero.test'].map(parseHostRule),
    };
    for (const [host, address] of [
      ['0.0.0.0', '0.0.0.0'],
      ['0.1.2.3', '0.1.2.3'],
      ['::', '::'],
      ['::ffff:0.0.0.0', '::ffff:0.0.0.0'],
      ['zero.test', '0.0.0.0'],
    ] as const) {
      const v = checkDestination(broad, host, 80, address);
      assert.equal(v.allowed, false, host);
      assert.match((v as { rule: string }).rule, /unspecified address .* always denied/);
    }
    // The broad rules still open what they name.
    assert.deepEqual(checkDestination(broad, '127.0.0.1', 80, '127.0.0.1'), { allowed: true });
  });

  it('--allow of an IPv4 does not open its other forms; --deny of it denies them all', () => {
    const policy: DestinationPolicy = { ...ALL_PORTS, allow: [parseHostRule('127.0.0.1')] };
    assert.deepEqual(checkDestination(policy, '127.0.0.1', 80, '127.0.0.1'), { allowed: true });
    assert.deepEqual(checkDestination(policy, '::ffff:127.0.0.1', 80, '::ffff:127.0.0.1'), { allowed: true });
    for (const a of ['::7f00:1', '64:ff9b::7f00:1', '2002:7f00:1::']) {
      const v = checkDestination(policy, a, 80, a);
      assert.equal(v.allowed, false, a);
      assert.match((v as { rule: string }).rule, /a loopback address, denied by default/);
    }
    const deny: DestinationPolicy = {
      ...ALL_PORTS,
      allowPrivate: true,
      deny: [parseHostRule('10.0.0.0/8')],
    };
    for (const a of ['10.1.2.3', '::a01:203', '64:ff9b::10.1.2.3', '2002:a01:203::'])
      assert.deepEqual(checkDestination(deny, a, 80, a), { allowed: false, rule: '--deny 10.0.0.0/8' }, a);
  });

  it('destinationRules: the name check denies by name and port, before any address', () => {
    const rules = destinationRules({ ...DEFAULT_POLICY, deny: [parseHostRule('*.blocked.test')] });
    assert.deepEqual(rules.checkName('a.blocked.test', 443), {
      allowed: false,
      rule: '--deny *.blocked.test',
    });
    assert.deepEqual(rules.checkName('example.com', 22), {
      allowed: false,
      rule: 'port 22 is not in --allow-ports 443,80',
    });
    assert.deepEqual(rules.checkName('example.com', 443), { allowed: true });
    assert.equal(rules.checkAddress('example.com', 443, '::7f00:1').allowed, false);
  });
});
