import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  describeProxyStatus,
  formatProxyStatus,
  parseProxyStatus,
  PROXY_ERROR_TYPES,
} from '../../src/protocol/proxy-status.js';

describe('parseProxyStatus (RFC 9209)', () => {
  it('parses the RFC’s examples', () => {
    assert.deepEqual(parseProxyStatus(['ExampleCDN']), [{ proxy: 'ExampleCDN', params: {} }]);
    // §2: one member per intermediary, the one nearest the origin first.
    assert.deepEqual(parseProxyStatus(['r34.example.net; error=http_request_error, ExampleCDN']), [
      { proxy: 'r34.example.net', params: { error: 'http_request_error' } },
      { proxy: 'ExampleCDN', params: {} },
    ]);
    assert.deepEqual(parseProxyStatus(['cdn.example.org; next-hop=backend.example.org:8001']), [
      { proxy: 'cdn.example.org', params: { 'next-hop': 'backend.example.org:8001' } },
    ]);
    assert.deepEqual(parseProxyStatus(['"proxy.example.org"; next-protocol=h2']), [
      { proxy: 'proxy.example.org', params: { 'next-protocol': 'h2' } },
    ]);
    assert.deepEqual(parseProxyStatus(['ExampleCDN; received-status=200']), [
      { proxy: 'ExampleCDN', params: { 'received-status': '200' } },
    ]);
    assert.deepEqual(
      parseProxyStatus([
        'ExampleCDN; error=http_protocol_error; details="Malformed response header: space before colon"',
      ]),
      [
        {
          proxy: 'ExampleCDN',
          params: { error: 'http_protocol_error', details: 'Malformed response header: space before colon' },
        },
      ],
    );
    assert.deepEqual(parseProxyStatus(['ExampleCDN; error=dns_error; rcode=NXDOMAIN']), [
      { proxy: 'ExampleCDN', params: { error: 'dns_error', rcode: 'NXDOMAIN' } },
    ]);
  });

  it('joins several field lines into one list', () => {
    assert.deepEqual(
      parseProxyStatus(['a; error=dns_timeout', 'b, c; error=connection_refused']).map((e) => e.proxy),
      ['a', 'b', 'c'],
    );
  });

  it('keeps commas and semicolons inside quoted strings, and unescapes them', () => {
    assert.deepEqual(parseProxyStatus(['p; details="a, b; c \\"q\\" \\\\ d", q']), [
      { proxy: 'p', params: { details: 'a, b; c "q" \\ d' } },
      { proxy: 'q', params: {} },
    ]);
  });

  it('reads a bare parameter as true, lowercases keys, skips empty members', () => {
    assert.deepEqual(parseProxyStatus([' , p ;  Flag ; ERROR = dns_error ,, ']), [
      { proxy: 'p', params: { flag: 'true', error: 'dns_error' } },
    ]);
    assert.deepEqual(parseProxyStatus([]), []);
    assert.deepEqual(parseProxyStatus(['']), []);
  });

  it('never throws, whatever the input (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ maxLength: 60 }), { maxLength: 3 }), (values) => {
        const entries = parseProxyStatus(values);
        describeProxyStatus(entries);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('describeProxyStatus and formatProxyStatus', () => {
  it('describes entries in one line, quoting values that need it', () => {
    assert.equal(
      describeProxyStatus(parseProxyStatus(['squid; error=dns_error; details="no such host", ExampleCDN'])),
      'squid: error=dns_error, details="no such host"; ExampleCDN',
    );
  });

  it('formats an entry that parses back to itself', () => {
    for (const error of PROXY_ERROR_TYPES) {
      const v = formatProxyStatus('wsvia', error, 'dial "x:1": refused\r\n\x00é');
      assert.doesNotMatch(v, /[\r\n\0]/);
      const [e] = parseProxyStatus([v]);
      assert.equal(e?.proxy, 'wsvia');
      assert.equal(e?.params.error, error);
      assert.equal(e?.params.details, 'dial "x:1": refused????');
    }
    assert.equal(formatProxyStatus('wsvia', 'connection_refused'), 'wsvia; error=connection_refused');
  });
});
