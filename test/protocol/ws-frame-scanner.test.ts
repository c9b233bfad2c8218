import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isWsviaError } from '../../src/errors.js';
import {
  closePayload,
  encodeControlFrame,
  FrameScanner,
  OPCODES,
} from '../../src/protocol/ws-frame-scanner.js';

/** A data frame as `ws` would write it. */
function frame(opcode: number, payload: Uint8Array, mask?: Uint8Array): Buffer {
  const len = payload.length;
  const ext = len < 126 ? 0 : len < 65536 ? 2 : 8;
  const head = Buffer.alloc(2 + ext + (mask ? 4 : 0));
  head[0] = 0x80 | opcode;
  head[1] = (mask ? 0x80 : 0) | (ext === 0 ? len : ext === 2 ? 126 : 127);
  if (ext === 2) head.writeUInt16BE(len, 2);
  if (ext === 8) head.writeBigUInt64BE(BigInt(len), 2);
  const body = Buffer.from(payload);
  if (mask) {
    head.set(mask, 2 + ext);
    for (let i = 0; i < body.length; i++) body[i] = (body[i] as number) ^ (mask[i & 3] as number);
  }
  return Buffer.concat([head, body]);
}

const MASK = Uint8Array.from([1, 2, 3, 4]);
const STREAM = Buffer.concat([
  frame(OPCODES.text, Buffer.from('hello'), MASK),
  frame(OPCODES.binary, Buffer.alloc(300, 7), MASK),
  frame(OPCODES.pong, Buffer.from('wsvia'), MASK),
  frame(OPCODES.binary, Buffer.alloc(70_000, 1)),
  frame(OPCODES.close, closePayload(4001, 'bye'), MASK),
]);

describe('FrameScanner', () => {
  it('finds every frame, pongs and the close code in a whole stream', () => {
    const s = new FrameScanner('test');
    assert.equal(s.scan(STREAM), STREAM.length);
    assert.equal(s.frames, 5);
    assert.equal(s.pongs, 1);
    assert.equal(s.closeCode, 4001);
    assert.ok(s.atBoundary);
  });

  it('gives the same result byte by byte, and reports boundaries only where frames end', () => {
    const s = new FrameScanner('test');
    const ends: number[] = [];
    for (let i = 0; i < STREAM.length; i++) {
      const b = s.scan(STREAM.subarray(i, i + 1));
      if (b === 1) ends.push(i + 1);
    }
    assert.equal(s.frames, 5);
    assert.equal(s.pongs, 1);
    assert.equal(s.closeCode, 4001);
    assert.equal(ends.length, 5);
    assert.equal(ends[ends.length - 1], STREAM.length);
  });

  it('stops mid-frame on trailing bytes and says where the last whole frame ended', () => {
    const s = new FrameScanner('test');
    const first = frame(OPCODES.text, Buffer.from('abc'));
    const tail = frame(OPCODES.binary, Buffer.alloc(10)).subarray(0, 5);
    assert.equal(s.scan(Buffer.concat([first, tail])), first.length);
    assert.equal(s.atBoundary, false);
  });

  it('reports 1005 for a close frame without a code (RFC 6455 §7.1.5)', () => {
    const s = new FrameScanner('test');
    s.scan(encodeControlFrame(OPCODES.close, new Uint8Array(0), MASK));
    assert.equal(s.closeCode, 1005);
  });

  it('reads its own control frames back, masked and unmasked', () => {
    for (const mask of [undefined, MASK]) {
      const s = new FrameScanner('test');
      s.scan(encodeControlFrame(OPCODES.pong, Buffer.from('x'), mask));
      s.scan(encodeControlFrame(OPCODES.close, closePayload(1001), mask));
      assert.equal(s.pongs, 1);
      assert.equal(s.closeCode, 1001);
    }
  });

  it('rejects a control frame over 125 bytes and a 64-bit length with the top bit set', () => {
    assert.throws(() => new FrameScanner('t').scan(Buffer.from([0x89, 126, 0, 200])), isWsviaError);
    assert.throws(
      () => new FrameScanner('t').scan(Buffer.from([0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0])),
      isWsviaError,
    );
  });

  it('property: any bytes either scan or throw a WsviaError, and splitting never changes the result', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(300), (bytes, cut) => {
        const whole = new FrameScanner('t');
        let wholeErr: unknown;
        try {
          whole.scan(bytes);
        } catch (e) {
          wholeErr = e;
          assert.ok(isWsviaError(e));
        }
        const split = new FrameScanner('t');
        const at = Math.min(cut, bytes.length);
        try {
          split.scan(bytes.subarray(0, at));
          split.scan(bytes.subarray(at));
          assert.equal(wholeErr, undefined);
          assert.equal(split.frames, whole.frames);
          assert.equal(split.pongs, whole.pongs);
          assert.equal(split.closeCode, whole.closeCode);
        } catch (e) {
          assert.ok(isWsviaError(e));
        }
      }),
    );
  });
});
