import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { formatRecording, parseRecording } from '../../src/bridge/replay.js';
import { SessionRecorder } from '../../src/bridge/recorder.js';
import { isWsviaError } from '../../src/errors.js';
import { tempDir } from '../helpers/process.js';

describe('session recordings', () => {
  it('round-trip: what the recorder writes, replay reads and prints', async () => {
    const dir = tempDir();
    const rec = new SessionRecorder(dir, { client: '127.0.0.1:1', target: '127.0.0.1:2', path: '/' });
    rec.data('up', Buffer.from('GET / HTTP/1.0\r\n\r\n'));
    rec.data('down', Buffer.from([0, 1, 2, 0xff]));
    await rec.end({ closed_by: 'target', bytes_up: 18, bytes_down: 4 });
    const text = fs.readFileSync(rec.file, 'utf8');
    const r = parseRecording(text);
    assert.equal(r.header['target'], '127.0.0.1:2');
    assert.deepEqual(
      r.chunks.map((c) => [c.dir, c.data.toString('hex')]),
      [
        ['up', Buffer.from('GET / HTTP/1.0\r\n\r\n').toString('hex')],
        ['down', '000102ff'],
      ],
    );
    const shown = formatRecording(text);
    assert.match(shown, /client -> target 18 bytes "GET \/ HTTP\/1.0\\r\\n\\r\\n"/);
    assert.match(shown, /target -> client 4 bytes hex 000102ff/);
    assert.match(shown, /closed by target/);
    // Byte by byte prefixes never crash: they parse (fewer chunks) or name the bad line.
    for (let i = 0; i < text.length; i += 7) {
      try {
        parseRecording(text.slice(0, i));
      } catch (e) {
        assert.ok(isWsviaError(e));
      }
    }
    assert.throws(() => parseRecording(`${text}garbage\n`), /line 5: not JSON/);
    fs.rmSync(path.join(dir), { recursive: true });
  });

  it('any input either parses or throws a WsviaError', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (t) => {
        try {
          parseRecording(t);
        } catch (e) {
          assert.ok(isWsviaError(e), String(e));
        }
      }),
    );
  });
});
