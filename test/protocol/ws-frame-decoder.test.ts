import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isWsviaError } from '../../src/errors.js';
import {
  encodeFrameHeader,
  FrameDecoder,
  FrameError,
  type FrameEvent,
} from '../../src/protocol/ws-frame-decoder.js';
import { closePayload, OPCODES } from '../../src/protocol/ws-frame-scanner.js';

/** A frame as a client writes it (masked unless `mask` is null). */
function frame(
  opcode: number,
  payload: Uint8Array,
  options: { fin?: boolean; mask?: Uint8Array | null; rsv?: number } = {},
): Buffer {
  const mask = options.mask === undefined ? Uint8Array.from([0x37, 0xfa, 0x21, 0x3d]) : options.mask;
  const len = payload.length;
  const ext = len < 126 ? 0 : len < 65536 ? 2 : 8;
  const head = Buffer.alloc(2 + ext + (mask ? 4 : 0));
  head[0] = (options.fin === false ? 0 : 0x80) | (options.rsv ?? 0) | opcode;
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

/** Decodes `bytes` cut at `cuts`, joining data pieces per message: what a byte stream reader sees. */
function decode(bytes: Buffer, cuts: number[] = []): { messages: [string, string][]; controls: string[] } {
  const d = new FrameDecoder({ role: 'server', peer: 'test' });
  const events: FrameEvent[] = [];
  let at = 0;
  for (const c of [...cuts.filter((x) => x > 0 && x < bytes.length).sort((a, b) => a - b), bytes.length]) {
    // A copy: the decoder unmasks in place.
    events.push(...d.receive(Buffer.from(bytes.subarray(at, c))));
    at = c;
  }
  const messages: [string, string][] = [];
  const controls: string[] = [];
  let current: Buffer[] = [];
  for (const e of events) {
    if (e.type === 'data') {
      current.push(e.payload);
      if (e.last) {
        messages.push([e.kind, Buffer.concat(current).toString('latin1')]);
        current = [];
      }
    } else if (e.type === 'close') controls.push(`close ${e.code} ${e.reason}`);
    else controls.push(`${e.type} ${e.payload.toString()}`);
  }
  return { messages, controls };
}

const BIG = Buffer.alloc(70_001, 0);
for (let i = 0; i < BIG.length; i++) BIG[i] = (i * 7) & 0xff;

const STREAM = Buffer.concat([
  frame(OPCODES.binary, Buffer.from('one')),
  frame(OPCODES.text, Buffer.from('tw'), { fin: false }),
  frame(OPCODES.ping, Buffer.from('p')),
  frame(OPCODES.continuation, Buffer.from('o')),
  frame(OPCODES.binary, BIG),
  frame(OPCODES.binary, Buffer.alloc(0)),
  frame(OPCODES.pong, Buffer.alloc(0)),
  frame(OPCODES.close, closePayload(1000, 'bye')),
  frame(OPCODES.binary, Buffer.from('after close is never read')),
]);

const EXPECTED = {
  messages: [
    ['binary', 'one'],
    ['text', 'two'],
    ['binary', BIG.toString('latin1')],
    ['binary', ''],
  ] as [string, string][],
  controls: ['ping p', 'pong ', 'close 1000 bye'],
};

describe('FrameDecoder', () => {
  it('decodes a whole stream: messages, fragments, control frames between fragments, the close', () => {
    assert.deepEqual(decode(STREAM), EXPECTED);
  });

  it('gives the same messages fed byte by byte', () => {
    const cuts = Array.from({ length: STREAM.length }, (_, i) => i);
    assert.deepEqual(decode(STREAM, cuts), EXPECTED);
  });

  it('gives the same messages cut anywhere (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: STREAM.length }), { maxLength: 12 }), (cuts) => {
        assert.deepEqual(decode(STREAM, cuts), EXPECTED);
      }),
      { numRuns: 200 },
    );
  });

  it('hands on the payload of an unfinished frame as it arrives, without waiting for the frame to end', () => {
    const d = new FrameDecoder({ role: 'server', peer: 'test' });
    const head = frame(OPCODES.binary, Buffer.alloc(16 * 1024 * 1024)).subarray(0, 14);
    assert.deepEqual(d.receive(Buffer.from(head)), []);
    const piece = d.receive(Buffer.alloc(1000, 0));
    assert.equal(piece.length, 1);
    const e = piece[0];
    assert.ok(e?.type === 'data');
    assert.equal(e.payload.length, 1000);
    assert.equal(e.last, false);
  });

  it('unmasks with the mask offset carried across pieces', () => {
    const payload = Buffer.from('abcdefghijklmnopqrstuvwxyz0123456789'.repeat(4));
    const bytes = frame(OPCODES.binary, payload);
    for (const cut of [7, 8, 9, 10, 11, 33]) {
      assert.deepEqual(decode(bytes, [cut, cut + 1, cut + 5]).messages, [['binary', payload.toString()]]);
    }
  });

  it('refuses frames that break RFC 6455 §5 with a FrameError carrying 1002', () => {
    const broken: [string, Buffer][] = [
      ['unmasked', frame(OPCODES.binary, Buffer.from('x'), { mask: null })],
      ['rsv1', frame(OPCODES.binary, Buffer.from('x'), { rsv: 0x40 })],
      ['opcode 3', frame(3, Buffer.from('x'))],
      ['opcode 11', frame(11, Buffer.from('x'))],
      ['fragmented ping', frame(OPCODES.ping, Buffer.from('x'), { fin: false })],
      ['long ping', frame(OPCODES.ping, Buffer.alloc(126))],
      ['lone continuation', frame(OPCODES.continuation, Buffer.from('x'))],
      [
        'message in a message',
        Buffer.concat([
          frame(OPCODES.text, Buffer.from('a'), { fin: false }),
          frame(OPCODES.binary, Buffer.from('b')),
        ]),
      ],
      ['1-byte close', frame(OPCODES.close, Buffer.from([3]))],
      ['close 1006', frame(OPCODES.close, closePayload(1006))],
      ['close 999', frame(OPCODES.close, closePayload(999))],
      ['2^63 length', Buffer.from([0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0])],
    ];
    for (const [name, bytes] of broken) {
      const d = new FrameDecoder({ role: 'server', peer: 'test' });
      assert.throws(
        () => d.receive(bytes),
        (e: unknown) => e instanceof FrameError && e.closeCode === 1002 && isWsviaError(e),
        name,
      );
    }
  });

  it('as a client, refuses masked frames and reads unmasked ones', () => {
    const d = new FrameDecoder({ role: 'client', peer: 'test' });
    const ok = d.receive(frame(OPCODES.binary, Buffer.from('hi'), { mask: null }));
    assert.deepEqual(
      ok.map((e) => e.type === 'data' && e.payload.toString()),
      ['hi'],
    );
    assert.throws(() => d.receive(frame(OPCODES.binary, Buffer.from('x'))), FrameError);
  });

  it('reports a close without a code as 1005', () => {
    assert.deepEqual(decode(frame(OPCODES.close, Buffer.alloc(0))).controls, ['close 1005 ']);
  });

  it('throws nothing but FrameError on any input (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const d = new FrameDecoder({ role: 'server', peer: 'fuzz' });
        try {
          d.receive(Buffer.from(bytes));
        } catch (e) {
          assert.ok(e instanceof FrameError, String(e));
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('encodes server headers for every length class', () => {
    for (const n of [0, 125, 126, 65535, 65536]) {
      const h = encodeFrameHeader(OPCODES.binary, n);
      const d = new FrameDecoder({ role: 'client', peer: 'test' });
      const events = d.receive(Buffer.concat([h, Buffer.alloc(n, 1)]));
      assert.equal(
        events.reduce((s, e) => s + (e.type === 'data' ? e.payload.length : 0), 0),
        n,
      );
      const last = events.at(-1);
      assert.ok(last?.type === 'data' && last.last, `length ${n}: the message ends`);
    }
  });
});
