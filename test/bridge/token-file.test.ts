import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseTokenFile, TokenFile } from '../../src/bridge/token-file.js';
import { isWsviaError } from '../../src/errors.js';
import { tempDir } from '../helpers/process.js';

const TEXT =
  '# websockify tokens\nvnc1: 127.0.0.1:5901\n\n  ssh : host.example:22   # trailing comment\nv6: [::1]:80\n';

describe('parseTokenFile', () => {
  it('reads websockify TokenFile lines, comments and blanks', () => {
    const m = parseTokenFile(TEXT);
    assert.deepEqual(
      [...m],
      [
        ['vnc1', { host: '127.0.0.1', port: 5901 }],
        ['ssh', { host: 'host.example', port: 22 }],
        ['v6', { host: '::1', port: 80 }],
      ],
    );
  });

  it('accepts CRLF and a missing final newline', () => {
    assert.equal(parseTokenFile(TEXT.replace(/\n/g, '\r\n').trimEnd()).size, 3);
  });

  it('every prefix parses or names its bad line; a trailing partial line is an error, not a silent skip', () => {
    for (let i = 0; i <= TEXT.length; i++) {
      try {
        const m = parseTokenFile(TEXT.slice(0, i));
        assert.ok(m.size <= 3);
      } catch (e) {
        assert.ok(isWsviaError(e), String(e));
      }
    }
    assert.throws(() => parseTokenFile(`${TEXT}vnc2: 127.0.0`), /line 6/);
  });

  it('names the bad line', () => {
    assert.throws(() => parseTokenFile('a: 127.0.0.1:1\nb 127.0.0.1:2\n', 'tok'), /tok line 2/);
    assert.throws(() => parseTokenFile('a: 127.0.0.1\n'), /line 1: invalid target/);
    assert.throws(() => parseTokenFile('a: ::1:80\n'), isWsviaError);
  });

  it('any input either parses or throws a WsviaError', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (text) => {
        try {
          parseTokenFile(text);
        } catch (e) {
          assert.ok(isWsviaError(e), String(e));
        }
      }),
    );
  });
});

describe('TokenFile', () => {
  it('re-reads the file when it changes and keeps the last good tokens on a bad write', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'tokens');
    fs.writeFileSync(file, 'a: 127.0.0.1:1\n');
    const t = new TokenFile(file);
    await t.load();
    assert.deepEqual(await t.lookup('a'), { host: '127.0.0.1', port: 1 });
    fs.writeFileSync(file, 'b: 127.0.0.1:22\n# a is gone\n');
    assert.equal(await t.lookup('a'), undefined);
    assert.deepEqual(await t.lookup('b'), { host: '127.0.0.1', port: 22 });
    fs.writeFileSync(file, 'this is not a token line at all\n');
    assert.deepEqual(await t.lookup('b'), { host: '127.0.0.1', port: 22 });
    fs.rmSync(dir, { recursive: true });
  });

  it('a missing file is a configuration error naming it', async () => {
    await assert.rejects(new TokenFile('/nonexistent/tokens').load(), (e: unknown) => {
      assert.ok(isWsviaError(e));
      assert.equal(e.code, 'CONFIG_INVALID');
      assert.match(e.message, /\/nonexistent\/tokens: ENOENT/);
      return true;
    });
  });
});
