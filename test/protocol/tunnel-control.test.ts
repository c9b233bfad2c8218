import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isWsviaError } from '../../src/errors.js';
import {
  formatControlMessage,
  HalfClose,
  MAX_CONTROL_BYTES,
  parseControlMessage,
  type ControlMessage,
} from '../../src/protocol/tunnel-control.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('tunnel control messages', () => {
  const samples: ControlMessage[] = [
    { type: 'eof' },
    { type: 'listening', bind: '127.0.0.1', port: 2222 },
    { type: 'connection', id: 'abcdefgh12345678' },
  ];

  it('round-trips every message type', () => {
    for (const m of samples) assert.deepEqual(parseControlMessage(enc(formatControlMessage(m))), m);
  });

  it('parses the whole message only: a prefix or trailing bytes are errors', () => {
    const text = formatControlMessage({ type: 'listening', bind: '::1', port: 80 });
    for (let i = 1; i < text.length; i++) {
      assert.throws(() => parseControlMessage(enc(text.slice(0, i))), isWsviaError);
    }
    assert.throws(() => parseControlMessage(enc(`${text}x`)), isWsviaError);
    // Whitespace after the object is still one JSON value.
    assert.deepEqual(parseControlMessage(enc(`${text}\n`)), { type: 'listening', bind: '::1', port: 80 });
  });

  it('rejects unknown types, bad fields, arrays, oversized and non-UTF-8 input', () => {
    for (const bad of [
      '{"type":"open"}',
      '[]',
      'null',
      '"eof"',
      '{"type":"listening","bind":"x","port":0}',
      '{"type":"listening","bind":"","port":1}',
      '{"type":"connection","id":"short"}',
      '{"type":"connection","id":"has space in it"}',
    ]) {
      assert.throws(() => parseControlMessage(enc(bad)), isWsviaError, bad);
    }
    assert.throws(() => parseControlMessage(new Uint8Array([0xff, 0xfe])), isWsviaError);
    const big = enc(`{"type":"eof","pad":"${'x'.repeat(MAX_CONTROL_BYTES)}"}`);
    assert.throws(() => parseControlMessage(big), /limit is 512/);
  });

  it('any input either parses or throws a WsviaError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        try {
          parseControlMessage(bytes);
        } catch (e) {
          assert.ok(isWsviaError(e), String(e));
        }
      }),
    );
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        try {
          parseControlMessage(enc(JSON.stringify(v) ?? 'null'));
        } catch (e) {
          assert.ok(isWsviaError(e), String(e));
        }
      }),
    );
  });
});

describe('HalfClose', () => {
  it('is done only when both directions ended, each reported once', () => {
    const h = new HalfClose();
    assert.equal(h.done, false);
    assert.equal(h.localEnded(), true);
    assert.equal(h.localEnded(), false);
    assert.equal(h.done, false);
    assert.equal(h.remoteOpen, true);
    assert.equal(h.remoteEnded(), true);
    assert.equal(h.remoteEnded(), false);
    assert.equal(h.remoteOpen, false);
    assert.equal(h.done, true);
  });
});
