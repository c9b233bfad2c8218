import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isWsviaError } from '../../src/errors.js';
import { MAX_PAC_RESULT, parsePacResult, type PacEntry } from '../../src/route/pac-result.js';

function shown(entries: readonly PacEntry[]): string[] {
  return entries.map((e) => (e.kind === 'direct' ? 'DIRECT' : e.proxy.display));
}

const WHOLE = 'PROXY a:3128; HTTPS b:443; SOCKS5 c:1080; SOCKS d:1081; HTTP [::1]:8080; DIRECT';
const EXPECTED = [
  'http://a:3128',
  'https://b:443',
  'socks5h://c:1080',
  'socks4://d:1081',
  'http://[::1]:8080',
  'DIRECT',
];

describe('parsePacResult', () => {
  it('parses every keyword, in order', () => {
    const r = parsePacResult(WHOLE);
    assert.deepEqual(shown(r.entries), EXPECTED);
    assert.deepEqual(r.skipped, []);
    assert.equal(r.entries[2]?.text, 'SOCKS5 c:1080');
  });

  it('ignores trailing separators and whitespace, and keyword case', () => {
    for (const tail of [';', '; ', ';;\n', '  \t']) {
      assert.deepEqual(shown(parsePacResult(`${WHOLE}${tail}`).entries), EXPECTED);
    }
    assert.deepEqual(shown(parsePacResult('  proxy   a:1 ;direct').entries), ['http://a:1', 'DIRECT']);
  });

  it('each entry alone parses as it does inside the list', () => {
    WHOLE.split(';').forEach((entry, i) => {
      assert.deepEqual(shown(parsePacResult(entry).entries), [EXPECTED[i]]);
    });
  });

  it('skips entries that do not parse, as browsers do', () => {
    const r = parsePacResult('PROXY; FTP x:1; PROXY http://a:1; PROXY a:99999; PROXY a:1 b; PROXY ok:8080');
    assert.deepEqual(shown(r.entries), ['http://ok:8080']);
    assert.equal(r.skipped.length, 5);
  });

  it('refuses garbage, non-strings and huge results with CONFIG_INVALID', () => {
    for (const v of ['', 'blah', 'PROXY', ';;;', 42, null, undefined, {}, 'x'.repeat(MAX_PAC_RESULT + 1)]) {
      assert.throws(
        () => parsePacResult(v),
        (e: unknown) => isWsviaError(e) && e.code === 'CONFIG_INVALID' && e.hop === 'route',
      );
    }
    assert.throws(
      () => parsePacResult('garbage here'),
      /returned "garbage here", which holds no usable entry/,
    );
  });

  it('any input either parses or throws a WsviaError', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc
            .array(
              fc.oneof(
                fc.constantFrom('PROXY', 'HTTPS', 'SOCKS5', 'DIRECT', 'SOCKS', ';', ' ', ':', '[', ']'),
                fc.string({ maxLength: 8 }),
                fc.integer({ min: 0, max: 70000 }).map(String),
              ),
            )
            .map((a) => a.join('')),
          fc.anything(),
        ),
        (input) => {
          try {
            const r = parsePacResult(input);
            assert.ok(r.entries.length > 0);
          } catch (e) {
            assert.ok(isWsviaError(e), String(e));
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});
