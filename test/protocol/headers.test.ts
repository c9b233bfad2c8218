import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  getHeader,
  getHeaderValues,
  hasToken,
  headerTokens,
  isToken,
  isValidFieldValue,
  type HeaderList,
} from '../../src/protocol/headers.js';

const H: HeaderList = [
  ['Connection', 'Upgrade, Keep-Alive'],
  ['Via', '1.1 a'],
  ['via', '1.0 b'],
  ['connection', ' close ,, '],
  ['Empty', ''],
];

describe('header lookups (RFC 9110 §5.1, §5.6.1)', () => {
  it('finds names case-insensitively, first value or all in order', () => {
    assert.equal(getHeader(H, 'VIA'), '1.1 a');
    assert.deepEqual(getHeaderValues(H, 'via'), ['1.1 a', '1.0 b']);
    assert.equal(getHeader(H, 'missing'), undefined);
    assert.deepEqual(getHeaderValues(H, 'missing'), []);
    assert.equal(getHeader(H, 'empty'), '');
  });

  it('splits list fields into lowercased members across lines, skipping empty ones', () => {
    assert.deepEqual(headerTokens(H, 'connection'), ['upgrade', 'keep-alive', 'close']);
    assert.ok(hasToken(H, 'Connection', 'CLOSE'));
    assert.ok(hasToken(H, 'connection', 'upgrade'));
    assert.ok(!hasToken(H, 'connection', 'keep'));
    assert.deepEqual(headerTokens(H, 'empty'), []);
  });
});

describe('isToken and isValidFieldValue', () => {
  it('accepts tchar only (RFC 9110 §5.6.2)', () => {
    for (const t of ['GET', 'X-Custom_1', "!#$%&'*+-.^_`|~", 'a']) assert.ok(isToken(t), t);
    for (const t of ['', 'a b', 'a:b', 'a"b', 'a,b', 'a(b)', 'é', 'a\tb', 'a/b', 'a=b', 'a[b]'])
      assert.ok(!isToken(t), t);
  });

  it('accepts visible characters, obs-text, SP and HTAB; refuses other controls (RFC 9110 §5.5)', () => {
    for (const v of ['', 'a b\tc', '\u0080\u00ff', '"quoted"', '~!@#$%^&*()'])
      assert.ok(isValidFieldValue(v), JSON.stringify(v));
    for (let c = 0; c < 0x20; c++) {
      if (c === 0x09) continue;
      assert.ok(!isValidFieldValue(`a${String.fromCharCode(c)}b`), `0x${c.toString(16)}`);
    }
    assert.ok(!isValidFieldValue('a\x7fb'));
  });
});
