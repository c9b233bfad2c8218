import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isWsviaError } from '../../src/errors.js';
import {
  BodyExcerpt,
  BodyTracker,
  excerptText,
  framingForbidsReuse,
  requestFraming,
  responseFraming,
  type BodyFraming,
} from '../../src/protocol/body.js';
import type { HeaderList } from '../../src/protocol/headers.js';
import type { RequestHead, ResponseHead } from '../../src/protocol/head.js';
import { byteByByte, bytes, catchWsvia, concat, splitAt, text } from '../helpers/bytes.js';

const PEER = 'proxy http://p:3128';

function response(status: number, headers: HeaderList, version: '1.0' | '1.1' = '1.1'): ResponseHead {
  return { kind: 'response', version, status, reason: '', headers };
}
function request(headers: HeaderList, method = 'POST', version: '1.0' | '1.1' = '1.1'): RequestHead {
  return { kind: 'request', method, target: '/', version, headers };
}

/** Feeds pieces; returns the raw body, decoded payload, leftover (done step's + the rest) and whether it ended. */
function track(framing: BodyFraming, pieces: readonly Uint8Array[]) {
  const payload: Uint8Array[] = [];
  const raw: Uint8Array[] = [];
  const t = new BodyTracker(framing, {
    peer: PEER,
    hop: 'proxy',
    onPayload: (b) => payload.push(Uint8Array.from(b)),
  });
  for (let i = 0; i < pieces.length; i++) {
    const step = t.receive(pieces[i] as Uint8Array);
    raw.push(Uint8Array.from(step.body));
    if (step.done) {
      assert.ok(t.done);
      return {
        done: true,
        raw: concat(...raw),
        payload: concat(...payload),
        leftover: concat(step.leftover, ...pieces.slice(i + 1)),
        tracker: t,
      };
    }
    assert.equal(step.leftover.length, 0);
  }
  return {
    done: false,
    raw: concat(...raw),
    payload: concat(...payload),
    leftover: new Uint8Array(0),
    tracker: t,
  };
}

const NEXT = bytes('HTTP/1.1 200 OK\r\n\r\n\x00\xff');

describe('responseFraming (RFC 9112 §6.3)', () => {
  it('has no body for HEAD, 1xx, 204, 304 and a 2xx to CONNECT', () => {
    const cl = [['Content-Length', '10']] as const;
    assert.deepEqual(responseFraming(response(200, cl), 'HEAD', PEER, 'proxy'), { kind: 'none' });
    for (const s of [100, 101, 199, 204, 304])
      assert.deepEqual(responseFraming(response(s, cl), 'GET', PEER, 'proxy'), { kind: 'none' }, String(s));
    for (const s of [200, 201, 204, 299])
      assert.deepEqual(responseFraming(response(s, cl), 'CONNECT', PEER, 'proxy'), { kind: 'none' });
  });

  it('frames a refusal to CONNECT like any response', () => {
    assert.deepEqual(responseFraming(response(407, [['Content-Length', '7']]), 'CONNECT', PEER, 'proxy'), {
      kind: 'length',
      length: 7,
    });
    assert.deepEqual(responseFraming(response(502, []), 'CONNECT', PEER, 'proxy'), { kind: 'close' });
  });

  it('uses chunked when it is the final coding, close otherwise, and TE over CL', () => {
    const f = (h: HeaderList) => responseFraming(response(200, h), 'GET', PEER, 'proxy');
    assert.deepEqual(f([['Transfer-Encoding', 'chunked']]), { kind: 'chunked' });
    assert.deepEqual(f([['Transfer-Encoding', 'gzip, Chunked']]), { kind: 'chunked' });
    assert.deepEqual(
      f([
        ['Transfer-Encoding', 'gzip'],
        ['transfer-encoding', 'chunked'],
      ]),
      { kind: 'chunked' },
    );
    assert.deepEqual(f([['Transfer-Encoding', 'chunked, gzip']]), { kind: 'close' });
    assert.deepEqual(
      f([
        ['Content-Length', '5'],
        ['Transfer-Encoding', 'chunked'],
      ]),
      { kind: 'chunked' },
    );
    assert.deepEqual(f([]), { kind: 'close' });
  });

  it('reads Content-Length strictly; identical repeats are one value, differing ones an error (RFC 9110 §8.6)', () => {
    const f = (...values: string[]) =>
      responseFraming(
        response(
          200,
          values.map((v) => ['Content-Length', v] as const),
        ),
        'GET',
        PEER,
        'proxy',
      );
    assert.deepEqual(f('0'), { kind: 'length', length: 0 });
    assert.deepEqual(f('42'), { kind: 'length', length: 42 });
    assert.deepEqual(f('42', '42'), { kind: 'length', length: 42 });
    assert.deepEqual(f('42, 42'), { kind: 'length', length: 42 });
    assert.deepEqual(f('999999999999999'), { kind: 'length', length: 999999999999999 });
    for (const bad of [
      ['1', '2'],
      ['1, 2'],
      ['-1'],
      ['+1'],
      ['0x10'],
      ['1.0'],
      [''],
      ['1 2'],
      ['1e3'],
      ['9999999999999999'],
    ]) {
      const e = catchWsvia(() => f(...bad));
      assert.equal(e.code, 'PROTOCOL_ERROR', bad.join('|'));
      assert.equal(e.hop, 'proxy');
    }
  });
});

describe('requestFraming', () => {
  it('has no body without Content-Length or chunked, or with Content-Length 0', () => {
    assert.deepEqual(requestFraming(request([]), PEER), { kind: 'none' });
    assert.deepEqual(requestFraming(request([['Content-Length', '0']]), PEER), { kind: 'none' });
    assert.deepEqual(requestFraming(request([['Content-Length', '3']]), PEER), { kind: 'length', length: 3 });
    assert.deepEqual(requestFraming(request([['Transfer-Encoding', 'chunked']]), PEER), { kind: 'chunked' });
    assert.deepEqual(requestFraming(request([['Transfer-Encoding', 'gzip, chunked']]), PEER), {
      kind: 'chunked',
    });
  });

  it('refuses Transfer-Encoding with Content-Length (smuggling, RFC 9112 §6.1), in any order or case', () => {
    for (const h of [
      [
        ['Transfer-Encoding', 'chunked'],
        ['Content-Length', '5'],
      ],
      [
        ['content-length', '5'],
        ['TRANSFER-ENCODING', 'CHUNKED'],
      ],
      [
        ['Content-Length', '0'],
        ['Transfer-Encoding', 'chunked'],
      ],
    ] as const) {
      const e = catchWsvia(() => requestFraming(request(h), PEER));
      assert.equal(e.code, 'PROTOCOL_ERROR');
      assert.match(e.message, /Transfer-Encoding and Content-Length/);
    }
  });

  it('refuses a final coding other than chunked, chunked twice, and TE in HTTP/1.0 (RFC 9112 §6.1, §6.3)', () => {
    for (const [h, v] of [
      [[['Transfer-Encoding', 'gzip']], '1.1'],
      [[['Transfer-Encoding', 'chunked, gzip']], '1.1'],
      [[['Transfer-Encoding', 'chunked, chunked']], '1.1'],
      [
        [
          ['Transfer-Encoding', 'chunked'],
          ['Transfer-Encoding', 'chunked'],
        ],
        '1.1',
      ],
      [[['Transfer-Encoding', 'chunked']], '1.0'],
    ] as const) {
      const e = catchWsvia(() => requestFraming(request(h, 'POST', v), PEER));
      assert.equal(e.code, 'PROTOCOL_ERROR', JSON.stringify(h));
    }
  });

  it('refuses a Connection header that names Content-Length, Transfer-Encoding or Host (smuggling), in any case', () => {
    for (const conn of [
      'Content-Length',
      'close, transfer-encoding',
      'keep-alive,HOST',
      'Upgrade, Content-Length',
    ]) {
      const e = catchWsvia(() =>
        requestFraming(
          request([
            ['Connection', conn],
            ['Content-Length', '5'],
          ]),
          PEER,
        ),
      );
      assert.equal(e.code, 'PROTOCOL_ERROR', conn);
      assert.match(e.message, /Connection header naming/);
    }
    assert.deepEqual(requestFraming(request([['Connection', 'keep-alive, X-Hop']]), PEER), { kind: 'none' });
  });

  it('refuses differing Content-Length values', () => {
    const e = catchWsvia(() =>
      requestFraming(
        request([
          ['Content-Length', '5'],
          ['Content-Length', '6'],
        ]),
        PEER,
      ),
    );
    assert.equal(e.code, 'PROTOCOL_ERROR');
  });
});

describe('framingForbidsReuse', () => {
  it('is true for TE with CL, and for TE in HTTP/1.0 (RFC 9112 §6.1, §6.3)', () => {
    assert.equal(
      framingForbidsReuse(
        response(407, [
          ['Transfer-Encoding', 'chunked'],
          ['Content-Length', '3'],
        ]),
      ),
      true,
    );
    assert.equal(framingForbidsReuse(response(407, [['Transfer-Encoding', 'chunked']], '1.0')), true);
    assert.equal(framingForbidsReuse(response(407, [['Transfer-Encoding', 'chunked']])), false);
    assert.equal(framingForbidsReuse(response(407, [['Content-Length', '3']], '1.0')), false);
  });
});

describe('BodyTracker: content-length', () => {
  const body = bytes('0123456789');
  it('ends after exactly the length, whole, byte by byte and at every split, leftover intact', () => {
    const input = concat(body, NEXT);
    const cases = [
      [input],
      byteByByte(input),
      ...Array.from({ length: input.length + 1 }, (_, p) => splitAt(input, [p])),
    ];
    for (const pieces of cases) {
      const r = track({ kind: 'length', length: 10 }, pieces);
      assert.ok(r.done);
      assert.deepEqual(r.raw, body);
      assert.deepEqual(r.payload, body);
      assert.deepEqual(r.leftover, NEXT);
    }
  });

  it('is done at once for length 0 and for none, handing everything back', () => {
    for (const framing of [{ kind: 'length', length: 0 }, { kind: 'none' }] as const) {
      const t = new BodyTracker(framing, { peer: PEER, hop: 'proxy' });
      assert.ok(t.done);
      const step = t.receive(NEXT);
      assert.equal(step.body.length, 0);
      assert.deepEqual(step.leftover, NEXT);
      t.receiveEof();
    }
  });

  it('reports EOF before the end as CONNECTION_RESET', () => {
    const t = new BodyTracker({ kind: 'length', length: 10 }, { peer: PEER, hop: 'proxy' });
    t.receive(bytes('01234'));
    const e = catchWsvia(() => t.receiveEof());
    assert.equal(e.code, 'CONNECTION_RESET');
    assert.equal(e.hop, 'proxy');
  });
});

describe('BodyTracker: close-delimited', () => {
  it('takes everything until EOF', () => {
    const r = track({ kind: 'close' }, byteByByte(NEXT));
    assert.equal(r.done, false);
    assert.deepEqual(r.raw, NEXT);
    assert.deepEqual(r.payload, NEXT);
    r.tracker.receiveEof();
    assert.ok(r.tracker.done);
  });
});

const CHUNKED =
  '5;name=value;quoted="a;b"\r\nhello\r\n' +
  '1\r\n \r\n' +
  'A \t;ext\r\n0123456789\r\n' +
  '000\r\n' +
  'Trailer-One: 1\r\nTrailer-Two: 2\r\n\r\n';
const CHUNKED_PAYLOAD = 'hello 0123456789';

describe('BodyTracker: chunked (RFC 9112 §7.1)', () => {
  it('decodes chunks with extensions and trailers, whole, byte by byte, at every split pair', () => {
    const input = concat(bytes(CHUNKED), NEXT);
    const cases = [[input], byteByByte(input)];
    for (let a = 0; a <= input.length; a++)
      for (let b = a; b <= input.length; b += 7) cases.push(splitAt(input, [a, b]));
    for (const pieces of cases) {
      const r = track({ kind: 'chunked' }, pieces);
      assert.ok(r.done);
      assert.equal(text(r.raw), CHUNKED, 'raw bytes pass through untouched');
      assert.equal(text(r.payload), CHUNKED_PAYLOAD);
      assert.deepEqual(r.leftover, NEXT);
    }
  });

  it('accepts bare LF line ends and no trailers', () => {
    const r = track({ kind: 'chunked' }, [bytes('3\nabc\n0\n\nrest')]);
    assert.ok(r.done);
    assert.equal(text(r.payload), 'abc');
    assert.equal(text(r.leftover), 'rest');
  });

  it('accepts upper- and lowercase hex sizes', () => {
    const r = track({ kind: 'chunked' }, [
      bytes(`a\r\n${'x'.repeat(10)}\r\nB\r\n${'y'.repeat(11)}\r\n0\r\n\r\n`),
    ]);
    assert.ok(r.done);
    assert.equal(r.payload.length, 21);
  });

  it('rejects malformed chunked input', () => {
    for (const bad of [
      'x\r\n',
      '\r\n',
      ';ext\r\n',
      '-1\r\n',
      '0x5\r\nhello\r\n',
      '5\rhello\r\n',
      '5\r\nhelloX\r\n',
      '5\r\nhello\rX',
      '5 6\r\nhello\r\n',
      '5 x\r\nhello\r\n',
      '5\x00\r\nhello\r\n',
      '0\r\nTrailer: x\ry\r\n\r\n',
      '0\r\n\rX',
      '1000000000000000\r\n',
      '10000000000000\r\n',
      `5;${'e'.repeat(5000)}\r\n`,
      `0\r\nT: ${'v'.repeat(5000)}\r\n\r\n`,
    ]) {
      for (const pieces of [[bytes(bad)], byteByByte(bytes(bad))]) {
        const e = catchWsvia(() => track({ kind: 'chunked' }, pieces));
        assert.equal(e.code, 'PROTOCOL_ERROR', JSON.stringify(bad.slice(0, 30)));
        assert.equal(e.hop, 'proxy');
      }
    }
  });

  it('accepts the largest chunk size whose arithmetic stays exact', () => {
    const t = new BodyTracker({ kind: 'chunked' }, { peer: PEER, hop: 'proxy' });
    assert.equal(t.receive(bytes('fffffffffffff\r\nabc')).done, false);
  });

  it('reports EOF mid-body as CONNECTION_RESET', () => {
    const t = new BodyTracker({ kind: 'chunked' }, { peer: PEER, hop: 'proxy' });
    t.receive(bytes('5\r\nhel'));
    assert.equal(catchWsvia(() => t.receiveEof()).code, 'CONNECTION_RESET');
  });

  it('round-trips any chunking of any payload, split anywhere (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 40 }), { maxLength: 6 }),
        fc.array(fc.constantFrom('', ';a', ';a=b', ';a="x;y"', ' ;q'), { minLength: 7, maxLength: 7 }),
        fc.array(
          fc.tuple(
            fc.constantFrom('X', 'Y-Z'),
            fc.string({ maxLength: 10 }).map((s) => s.replace(/[^\x20-\x7e]/g, '')),
          ),
          {
            maxLength: 3,
          },
        ),
        fc.boolean(),
        fc.uint8Array({ maxLength: 20 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        (chunks, exts, trailers, upper, tail, points) => {
          const eol = '\r\n';
          const parts: Uint8Array[] = [];
          chunks.forEach((c, i) => {
            const size = upper ? c.length.toString(16).toUpperCase() : c.length.toString(16);
            parts.push(bytes(`${size}${exts[i] ?? ''}${eol}`), c, bytes(eol));
          });
          parts.push(
            bytes(`0${exts[6] ?? ''}${eol}${trailers.map(([k, v]) => `${k}: ${v}${eol}`).join('')}${eol}`),
          );
          const wire = concat(...parts);
          const r = track({ kind: 'chunked' }, splitAt(concat(wire, tail), points));
          assert.ok(r.done);
          assert.deepEqual(r.raw, wire);
          assert.deepEqual(r.payload, concat(...chunks));
          assert.deepEqual(r.leftover, tail);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('never throws anything but a WsviaError on arbitrary input (property)', () => {
    const alphabet = fc.constantFrom(
      '0',
      '1',
      'a',
      'F',
      ';',
      '=',
      '"',
      ' ',
      '\t',
      '\r',
      '\n',
      'x',
      ':',
      '\x00',
    );
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 200 }),
          fc.array(alphabet, { maxLength: 80 }).map((a) => bytes(a.join(''))),
        ),
        fc.array(fc.nat(), { maxLength: 4 }),
        (input, points) => {
          try {
            const r = track({ kind: 'chunked' }, splitAt(input, points));
            if (r.done) assert.deepEqual(concat(r.raw, r.leftover), input);
            else assert.deepEqual(r.raw, input);
          } catch (e) {
            if (!isWsviaError(e)) throw e;
          }
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe('BodyExcerpt and excerptText', () => {
  it('strips tags, scripts and styles, decodes basic entities, folds whitespace', () => {
    assert.equal(
      excerptText(
        '<html><head><style>p{}</style><script>alert(1)</script></head><body><h1>Access\n\n Denied</h1>&lt;x&gt; &amp;&nbsp;y</body>',
      ),
      'Access Denied <x> & y',
    );
  });

  it('keeps a bare "<" that starts no tag, and drops comments', () => {
    assert.equal(excerptText('Access denied: quota < limit, 3<4'), 'Access denied: quota < limit, 3<4');
    assert.equal(excerptText('a<b>c</b>d <!-- x > y --> e <br/>f<p class="x"'), 'a c d e f');
  });

  it('removes control characters (no terminal escapes reach the user)', () => {
    assert.equal(excerptText('a\x1b[31mb\x00c\x07d'), 'a[31mbcd');
  });

  it('cuts at max characters with an ellipsis', () => {
    assert.equal(excerptText('x'.repeat(50), 10), `${'x'.repeat(9)}…`);
    assert.equal(excerptText('x'.repeat(10), 10), 'x'.repeat(10));
  });

  it('keeps a bounded number of bytes whatever it is fed', () => {
    const e = new BodyExcerpt(10);
    for (let i = 0; i < 1000; i++) e.add(bytes('abcdefghij'));
    assert.equal(e.text(), `${'abcdefghij'.slice(0, 9)}…`);
    const e2 = new BodyExcerpt(10);
    e2.add(bytes('Forb'));
    e2.add(bytes('idden'));
    assert.equal(e2.text(), 'Forbidden');
  });

  it('decodes UTF-8 split across adds', () => {
    const e = new BodyExcerpt(50);
    const b = bytes(Buffer.from('café', 'utf8').toString('latin1'));
    e.add(b.subarray(0, 4));
    e.add(b.subarray(4));
    assert.equal(e.text(), 'café');
  });
});
