import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isWsviaError } from '../../src/errors.js';
import { buildDnsAnswer, parseDnsQuery, RCODE } from './dns-message.js';

/** A query as a stub resolver sends it: id 0x1234, RD, one question for `name` type A class IN. */
function query(name: string, extra: Uint8Array = new Uint8Array()): Uint8Array {
  const labels = name
    .split('.')
    .map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'latin1')]));
  const header = Buffer.from([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, extra.length > 0 ? 1 : 0]);
  return Buffer.concat([header, ...labels, Buffer.from([0, 0, 1, 0, 1]), extra]);
}

// An EDNS OPT pseudo-record (RFC 6891 §6.1.2), as c-ares appends to its queries.
const OPT = Buffer.from([0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);

describe('the test DNS server query parser', () => {
  it('parses a whole query', () => {
    const q = parseDnsQuery(query('Wpad.Corp.Test'));
    assert.equal(q.id, 0x1234);
    assert.equal(q.name, 'wpad.corp.test');
    assert.equal(q.type, 1);
    assert.equal(q.qclass, 1);
  });

  it('every strict prefix of a query is refused with a WsviaError (byte by byte)', () => {
    const bytes = query('wpad.corp.test');
    for (let n = 0; n < bytes.length; n++) {
      assert.throws(() => parseDnsQuery(bytes.subarray(0, n)), isWsviaError, `prefix of ${n} bytes`);
    }
  });

  it('trailing bytes (an EDNS OPT record) are left unread', () => {
    const q = parseDnsQuery(query('wpad.corp.test', OPT));
    assert.equal(q.name, 'wpad.corp.test');
    assert.equal(q.questionBytes.length, 'wpad.corp.test'.length + 2 + 4);
  });

  it('refuses responses, several questions and compression pointers', () => {
    const response = Buffer.from(query('a.test'));
    response[2] = 0x81;
    assert.throws(() => parseDnsQuery(response), /QR is set/);
    const two = Buffer.from(query('a.test'));
    two[5] = 2;
    assert.throws(() => parseDnsQuery(two), /2 questions/);
    const pointer = Buffer.concat([
      Buffer.from(query('a.test')).subarray(0, 12),
      Buffer.from([0xc0, 0x0c, 0, 1, 0, 1]),
    ]);
    assert.throws(() => parseDnsQuery(pointer), /compression/);
  });

  it('builds answers a resolver reads: the question echoed, A records, NXDOMAIN', () => {
    const q = parseDnsQuery(query('wpad.corp.test', OPT));
    const a = Buffer.from(buildDnsAnswer(q, RCODE.noError, ['127.0.0.1']));
    assert.equal(a.readUInt16BE(0), 0x1234);
    assert.equal(a.readUInt16BE(2) & 0x8000, 0x8000);
    assert.equal(a.readUInt16BE(2) & 0x0100, 0x0100, 'RD copied');
    assert.equal(a.readUInt16BE(6), 1);
    assert.deepEqual([...a.subarray(a.length - 4)], [127, 0, 0, 1]);
    const nx = Buffer.from(buildDnsAnswer(q, RCODE.nxDomain));
    assert.equal(nx.readUInt16BE(2) & 0xf, 3);
    assert.equal(nx.readUInt16BE(6), 0);
  });

  it('property: any bytes either parse or throw a WsviaError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        try {
          parseDnsQuery(bytes);
        } catch (e) {
          assert.ok(isWsviaError(e), String(e));
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('property: a query for any valid name parses back to that name', () => {
    const label = fc.stringMatching(/^[a-z0-9-]{1,20}$/);
    fc.assert(
      fc.property(fc.array(label, { minLength: 1, maxLength: 6 }), (labels) => {
        assert.equal(parseDnsQuery(query(labels.join('.'))).name, labels.join('.'));
      }),
    );
  });
});
