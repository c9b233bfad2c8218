import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isWsviaError, RemoteProtocolError } from '../../src/errors.js';
import {
  formatHead,
  printable,
  RequestHeadReader,
  ResponseHeadReader,
  serializeHead,
  type Head,
  type HeadResult,
} from '../../src/protocol/head.js';
import { byteByByte, bytes, catchWsvia, concat, splitAt, text } from '../helpers/bytes.js';

const CTX = { peer: 'proxy http://p:3128', hop: 'proxy' } as const;

/** Feeds pieces until the head is complete; the leftover is what a driver would hand on (the rest of the input). */
function drive<H extends Head>(
  reader: { receive(c: Uint8Array): HeadResult<H> | undefined },
  pieces: readonly Uint8Array[],
): { result: HeadResult<H>; leftover: Uint8Array; completedAt: number } | undefined {
  for (let i = 0; i < pieces.length; i++) {
    const r = reader.receive(pieces[i] as Uint8Array);
    if (r) return { result: r, leftover: concat(r.leftover, ...pieces.slice(i + 1)), completedAt: i };
  }
  return undefined;
}

function readResponse(input: Uint8Array | Uint8Array[]) {
  return drive(new ResponseHeadReader(CTX), Array.isArray(input) ? input : [input]);
}

function readRequest(input: Uint8Array | Uint8Array[]) {
  return drive(
    new RequestHeadReader({ peer: 'the client', hop: 'server' }),
    Array.isArray(input) ? input : [input],
  );
}

const RESPONSE =
  'HTTP/1.1 407 Proxy Authentication Required\r\n' +
  'Proxy-Authenticate: Basic realm="r"\r\n' +
  'Content-Length: 0\r\n' +
  '\r\n';
const TAIL = bytes('\x00\x01TUNNEL\r\n\r\nHTTP/1.1 200 OK\r\n\r\n');

describe('ResponseHeadReader', () => {
  const expected = {
    kind: 'response',
    version: '1.1',
    status: 407,
    reason: 'Proxy Authentication Required',
    headers: [
      ['Proxy-Authenticate', 'Basic realm="r"'],
      ['Content-Length', '0'],
    ],
  };

  it('parses a whole head', () => {
    const r = readResponse(bytes(RESPONSE));
    assert.ok(r);
    assert.deepEqual(r.result.head, expected);
    assert.equal(r.result.leftover.length, 0);
    assert.equal(r.result.headBytes, RESPONSE.length);
  });

  it('parses byte by byte, completing on the last byte', () => {
    const input = bytes(RESPONSE);
    const r = readResponse(byteByByte(input));
    assert.ok(r);
    assert.equal(r.completedAt, input.length - 1);
    assert.deepEqual(r.result.head, expected);
    assert.equal(r.leftover.length, 0);
  });

  it('returns trailing bytes as leftover, whole and byte by byte', () => {
    const input = concat(bytes(RESPONSE), TAIL);
    const whole = readResponse(input);
    assert.ok(whole);
    assert.deepEqual(whole.result.head, expected);
    assert.deepEqual(whole.leftover, TAIL);
    assert.equal(whole.result.headBytes, RESPONSE.length);
    const bbb = readResponse(byteByByte(input));
    assert.ok(bbb);
    assert.deepEqual(bbb.result.head, expected);
    assert.deepEqual(bbb.leftover, TAIL);
  });

  it('gives the same head and leftover at every split point across two reads', () => {
    const input = concat(bytes(RESPONSE), TAIL);
    for (let p = 0; p <= input.length; p++) {
      const r = readResponse(splitAt(input, [p]));
      assert.ok(r, `split at ${p}`);
      assert.deepEqual(r.result.head, expected, `split at ${p}`);
      assert.deepEqual(r.leftover, TAIL, `split at ${p}`);
    }
  });

  it('gives the same head and leftover at every pair of split points', () => {
    const input = concat(bytes('HTTP/1.0 200 OK\r\nVia: 1.1 p\r\n\r\n'), TAIL);
    for (let a = 1; a < input.length; a++) {
      for (let b = a; b < input.length; b++) {
        const r = readResponse(splitAt(input, [a, b]));
        assert.ok(r);
        assert.equal(r.result.head.status, 200);
        assert.deepEqual(r.leftover, TAIL, `split at ${a}, ${b}`);
      }
    }
  });

  it('returns leftover worth several reads from a single chunk', () => {
    const tunnel = new Uint8Array(3 * 65536).map((_, i) => i % 251);
    const r = readResponse(concat(bytes('HTTP/1.1 200 Connection established\r\n\r\n'), tunnel));
    assert.ok(r);
    assert.equal(r.result.leftover.length, tunnel.length);
    assert.deepEqual(r.result.leftover, tunnel);
  });

  it('returns 1 MiB of tunnel bytes glued to the head, without touching the head limit', () => {
    const tunnel = new Uint8Array(1024 * 1024).map((_, i) => (i * 7) % 256);
    const head = bytes('HTTP/1.1 200 OK\r\nX-Pad: ' + 'a'.repeat(16 * 1024 - 40) + '\r\n\r\n');
    assert.ok(head.length <= 16 * 1024);
    const r = readResponse(concat(head, tunnel));
    assert.ok(r);
    assert.equal(r.result.headBytes, head.length);
    assert.equal(r.result.leftover.length, tunnel.length);
    assert.ok(Buffer.from(r.result.leftover).equals(Buffer.from(tunnel)));
  });

  it('accepts bare LF line ends, and a mix of LF and CRLF', () => {
    for (const raw of [
      'HTTP/1.1 200 OK\nA: 1\nB: 2\n\n',
      'HTTP/1.1 200 OK\r\nA: 1\nB: 2\r\n\n',
      'HTTP/1.1 200 OK\nA: 1\r\nB: 2\n\r\n',
    ]) {
      const input = concat(bytes(raw), TAIL);
      for (const pieces of [[input], byteByByte(input)]) {
        const r = readResponse(pieces);
        assert.ok(r, JSON.stringify(raw));
        assert.deepEqual(r.result.head.headers, [
          ['A', '1'],
          ['B', '2'],
        ]);
        assert.deepEqual(r.leftover, TAIL, JSON.stringify(raw));
        assert.equal(r.result.headBytes, raw.length);
      }
    }
  });

  it('unfolds obs-fold continuation lines into one value (RFC 9112 §5.2)', () => {
    const r = readResponse(bytes('HTTP/1.1 200 OK\r\nX-Long: a\r\n  b\r\n\tc\r\nY: z\r\n\r\n'));
    assert.ok(r);
    assert.deepEqual(r.result.head.headers, [
      ['X-Long', 'a b c'],
      ['Y', 'z'],
    ]);
  });

  it('keeps obs-text bytes 0x85 and 0xA0 at the edges of folded lines (UTF-8 "à" ends in 0xA0)', () => {
    const utf8 = Buffer.from('voilà', 'utf8');
    const input = concat(bytes('HTTP/1.1 200 OK\r\nX: \xa0a\r\n '), utf8, bytes('\x85\r\n\r\n'));
    const r = readResponse(input);
    assert.equal(r?.result.head.headers[0]?.[1], `\xa0a ${utf8.toString('latin1')}\x85`);
  });

  it('rejects a continuation line before any field', () => {
    const e = catchWsvia(() => readResponse(bytes('HTTP/1.1 200 OK\r\n folded\r\n\r\n')));
    assert.equal(e.code, 'PROTOCOL_ERROR');
  });

  it('reads HTTP/1.0 and HTTP/1.1, and rejects other versions', () => {
    assert.equal(readResponse(bytes('HTTP/1.0 200 OK\r\n\r\n'))?.result.head.version, '1.0');
    assert.equal(readResponse(bytes('HTTP/1.1 200 OK\r\n\r\n'))?.result.head.version, '1.1');
    for (const v of ['HTTP/2.0', 'HTTP/0.9', 'HTTP/1.x', 'HTTP/11', 'HTTP/1.1.1']) {
      const e = catchWsvia(() => readResponse(bytes(`${v} 200 OK\r\n\r\n`)));
      assert.equal(e.code, 'PROTOCOL_ERROR', v);
    }
  });

  it('reads 1xx interim heads as heads (the CONNECT client skips them)', () => {
    const r = readResponse(bytes('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n'));
    assert.ok(r);
    assert.equal(r.result.head.status, 100);
    assert.equal(text(r.leftover), 'HTTP/1.1 200 OK\r\n\r\n');
  });

  it('accepts a status line without a reason phrase', () => {
    for (const line of ['HTTP/1.1 200', 'HTTP/1.1 200 ']) {
      const r = readResponse(bytes(`${line}\r\n\r\n`));
      assert.ok(r);
      assert.equal(r.result.head.status, 200);
      assert.equal(r.result.head.reason, '');
    }
  });

  it('rejects invalid status lines', () => {
    for (const line of [
      'HTTP/1.1',
      'HTTP/1.1 ',
      'HTTP/1.1 20 OK',
      'HTTP/1.1 2000 OK',
      'HTTP/1.1  200 OK',
      'HTTP/1.1 abc OK',
      'HTTP/1.1\t200 OK',
      'HTTP/1.1 200\tOK',
      'HTTP/1.1 -20 OK',
    ]) {
      const e = catchWsvia(() => readResponse(bytes(`${line}\r\n\r\n`)));
      assert.ok(e instanceof RemoteProtocolError, line);
      assert.equal(e.code, 'PROTOCOL_ERROR', line);
      assert.equal(e.statusHint, 400);
      assert.equal(e.hop, 'proxy');
      assert.match(e.message, /proxy http:\/\/p:3128 sent/);
    }
  });

  it('rejects whitespace between a field name and its colon (RFC 9112 §5.1)', () => {
    for (const line of ['Host : a', 'Host\t: a']) {
      const e = catchWsvia(() => readResponse(bytes(`HTTP/1.1 200 OK\r\nX: 1\r\n${line}\r\n\r\n`)));
      assert.equal(e.code, 'PROTOCOL_ERROR', line);
    }
  });

  it('rejects header lines without a name or colon, and names that are not tokens', () => {
    for (const line of [': v', 'NoColon', 'Bad Name: v', 'Bad"Name: v', 'Na\x01me: v', 'Ñame: v']) {
      const e = catchWsvia(() => readResponse(bytes(`HTTP/1.1 200 OK\r\n${line}\r\n\r\n`)));
      assert.equal(e.code, 'PROTOCOL_ERROR', JSON.stringify(line));
    }
  });

  it('trims optional whitespace around field values and keeps inner whitespace', () => {
    const r = readResponse(bytes('HTTP/1.1 200 OK\r\nA:   x  y \t\r\nB:\r\nC:v\r\n\r\n'));
    assert.ok(r);
    assert.deepEqual(r.result.head.headers, [
      ['A', 'x  y'],
      ['B', ''],
      ['C', 'v'],
    ]);
  });

  it('keeps obs-text (bytes 0x80-0xFF) in values as latin1 code units', () => {
    const r = readResponse(
      new Uint8Array([...bytes('HTTP/1.1 200 OK\r\nA: '), 0xe9, 0xff, ...bytes('\r\n\r\n')]),
    );
    assert.equal(r?.result.head.headers[0]?.[1], '\u00e9\u00ff');
  });

  it('rejects control characters in field values and the reason phrase (RFC 9110 §5.5, RFC 9112 §4)', () => {
    for (const raw of [
      'HTTP/1.1 200 OK\r\nA: x\x00y\r\n\r\n',
      'HTTP/1.1 200 OK\r\nA: x\ry\r\n\r\n',
      'HTTP/1.1 200 OK\r\nA: x\x1b[31my\r\n\r\n',
      'HTTP/1.1 200 OK\r\nA: x\x7fy\r\n\r\n',
      'HTTP/1.1 200 OK\r\nA: x\r\n y\x00z\r\n\r\n',
      'HTTP/1.1 200 OK\r\nA: x\r\n y\rz\r\n\r\n',
      'HTTP/1.1 200 O\x1b[2JK\r\n\r\n',
      'HTTP/1.1 200 O\x00K\r\n\r\n',
      'HTTP/1.1 200 O\rK\r\n\r\n',
    ]) {
      const e = catchWsvia(() => readResponse(bytes(raw)));
      assert.equal(e.code, 'PROTOCOL_ERROR', JSON.stringify(raw));
    }
    // HTAB is allowed inside values and reason phrases.
    const ok = readResponse(bytes('HTTP/1.1 200 O\tK\r\nA: x\ty\r\n\r\n'));
    assert.equal(ok?.result.head.reason, 'O\tK');
    assert.equal(ok?.result.head.headers[0]?.[1], 'x\ty');
  });

  it('rejects a head over 16 KiB with HEAD_TOO_LARGE (statusHint 431), whole and byte by byte', () => {
    const big = bytes('HTTP/1.1 200 OK\r\nX: ' + 'a'.repeat(17 * 1024) + '\r\n\r\n');
    const e = catchWsvia(() => readResponse(big));
    assert.ok(e instanceof RemoteProtocolError);
    assert.equal(e.code, 'HEAD_TOO_LARGE');
    assert.equal(e.statusHint, 431);
    // Byte by byte, the error comes as soon as the limit is passed, not later.
    const reader = new ResponseHeadReader(CTX);
    let fed = 0;
    const e2 = catchWsvia(() => {
      for (const b of byteByByte(big)) {
        reader.receive(b);
        fed++;
      }
    });
    assert.equal(e2.code, 'HEAD_TOO_LARGE');
    assert.ok(fed <= 16 * 1024, `threw after ${fed} bytes`);
  });

  it('accepts a head of exactly the limit, and rejects one byte more', () => {
    const limits = { maxHeadBytes: 64, maxHeaders: 10 };
    const make = (n: number) => {
      const start = 'HTTP/1.1 200 OK\r\nX: ';
      return bytes(start + 'a'.repeat(n - start.length - 4) + '\r\n\r\n');
    };
    const exact = make(64);
    assert.equal(exact.length, 64);
    for (const pieces of [[exact], byteByByte(exact), [concat(exact, TAIL)]]) {
      const r = drive(new ResponseHeadReader(CTX, limits), pieces);
      assert.ok(r);
      assert.equal(r.result.headBytes, 64);
    }
    const e = catchWsvia(() => drive(new ResponseHeadReader(CTX, limits), [make(65)]));
    assert.equal(e.code, 'HEAD_TOO_LARGE');
  });

  it('rejects more than maxHeaders fields with HEAD_TOO_LARGE (431)', () => {
    const head = (n: number) =>
      bytes('HTTP/1.1 200 OK\r\n' + Array.from({ length: n }, (_, i) => `X-${i}: v\r\n`).join('') + '\r\n');
    assert.equal(readResponse(head(100))?.result.head.headers.length, 100);
    const e = catchWsvia(() => readResponse(head(101)));
    assert.ok(e instanceof RemoteProtocolError);
    assert.equal(e.code, 'HEAD_TOO_LARGE');
    assert.equal(e.statusHint, 431);
  });

  it('rejects a TLS record after its first byte, with a hint about TLS', () => {
    const reader = new ResponseHeadReader(CTX);
    const e = catchWsvia(() => reader.receive(new Uint8Array([0x16])));
    assert.equal(e.code, 'PROTOCOL_ERROR');
    assert.match(e.hint ?? '', /TLS/);
    const e2 = catchWsvia(() => readResponse(new Uint8Array([0x16, 0x03, 0x01, 0x02, 0x00, 0x01])));
    assert.match(e2.message, /\\x16\\x03\\x01/);
  });

  it('rejects other bytes at the first one that cannot begin "HTTP/1.x NNN"', () => {
    for (const [input, at] of [
      ['SSH-2.0-OpenSSH_9.6\r\n', 0],
      ['<html>', 0],
      ['HTTX/1.1 200 OK', 3],
      ['http/1.1 200 OK', 0],
      ['\r\nHTTP/1.1 200 OK', 0],
      ['HTTP/', -1],
      ['HTTP/2 200 OK', 5],
      ['HTTP/1.2 200 OK', 7],
      ['HTTP/1.1  200 OK', 9],
      ['HTTP/1.1 2x0 OK', 10],
      ['HTTP/1.1 200 OK', -1],
    ] as const) {
      const reader = new ResponseHeadReader(CTX);
      const input8 = bytes(input);
      let thrownAt = -1;
      for (let i = 0; i < input8.length; i++) {
        try {
          reader.receive(input8.subarray(i, i + 1));
        } catch (e) {
          assert.ok(isWsviaError(e));
          thrownAt = i;
          break;
        }
      }
      assert.equal(thrownAt, at, input);
    }
  });

  it('shows what was received in the error details, printable', () => {
    const e = catchWsvia(() => readResponse(bytes('HTTP/1.1 200 OK\r\nBad Name: v\r\n\r\n')));
    assert.match(String(e.details?.received), /^HTTP\/1\.1 200 OK\\r\\nBad Name/);
  });

  it('refuses to be fed after the head is complete (a local error, not the peer’s)', () => {
    const reader = new ResponseHeadReader(CTX);
    assert.ok(reader.receive(bytes('HTTP/1.1 200 OK\r\n\r\n')));
    assert.throws(
      () => reader.receive(bytes('x')),
      (e) => !isWsviaError(e),
    );
  });

  it('keeps what it received for diagnostics', () => {
    const reader = new ResponseHeadReader(CTX);
    reader.receive(bytes('HTTP/1.1 2'));
    reader.receive(bytes('00 O'));
    assert.equal(text(reader.received), 'HTTP/1.1 200 O');
  });

  it('never throws anything but a WsviaError, whatever the bytes and the splits (property)', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 300 }),
          fc
            .tuple(
              fc.constantFrom('HTTP/1.1 ', 'HTTP/1.0 2', 'HTTP/1.1 200 OK\r\n'),
              fc.uint8Array({ maxLength: 200 }),
            )
            .map(([p, b]) => concat(bytes(p), b)),
          fc
            .array(
              fc.constantFrom('HTTP/1.1', ' ', '200', 'OK', '\r', '\n', ':', 'A', '\t', '\x00', '\x80'),
              {
                maxLength: 60,
              },
            )
            .map((a) => bytes(a.join(''))),
        ),
        fc.array(fc.nat(), { maxLength: 4 }),
        (input, points) => {
          const limits = { maxHeadBytes: 256, maxHeaders: 8 };
          for (const make of [
            (): ResponseHeadReader | RequestHeadReader => new ResponseHeadReader(CTX, limits),
            (): ResponseHeadReader | RequestHeadReader => new RequestHeadReader(CTX, limits),
          ]) {
            try {
              const r = drive<Head>(make(), splitAt(input, points));
              if (r) {
                assert.ok(r.result.headBytes <= input.length);
                assert.deepEqual(r.leftover, input.subarray(r.result.headBytes));
              }
            } catch (e) {
              if (!isWsviaError(e)) throw e;
            }
          }
        },
      ),
      { numRuns: 1000 },
    );
  });
});

// Generators for valid heads.
const tokenChar = fc.constantFrom(
  ..."!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
);
const token = fc.array(tokenChar, { minLength: 1, maxLength: 12 }).map((a) => a.join(''));
const vchar = fc
  .integer({ min: 0x21, max: 0xff })
  .filter((c) => c !== 0x7f)
  .map((c) => String.fromCharCode(c));
const fieldValue = fc
  .array(fc.oneof({ weight: 5, arbitrary: vchar }, { weight: 1, arbitrary: fc.constantFrom(' ', '\t') }), {
    maxLength: 30,
  })
  .map((a) => a.join('').replace(/^[ \t]+|[ \t]+$/g, ''));
const headers = fc.array(fc.tuple(token, fieldValue), { maxLength: 12 });
const version = fc.constantFrom('1.0', '1.1' as const);

describe('head round trip (property)', () => {
  it('parse(serialize(response)) is the response, split anywhere, leftover intact', () => {
    const reason = fc
      .array(fc.oneof(vchar, fc.constant(' ')), { maxLength: 20 })
      .map((a) => a.join('').trim());
    fc.assert(
      fc.property(
        version,
        fc.integer({ min: 100, max: 599 }),
        reason,
        headers,
        fc.uint8Array({ maxLength: 40 }),
        fc.array(fc.nat(), { maxLength: 5 }),
        (v, status, why, hs, tail, points) => {
          const wire = serializeHead(`HTTP/${v} ${status}${why ? ` ${why}` : ''}`, hs);
          const input = concat(wire, tail);
          const r = drive(new ResponseHeadReader(CTX), splitAt(input, points));
          assert.ok(r);
          assert.deepEqual(r.result.head, { kind: 'response', version: v, status, reason: why, headers: hs });
          assert.equal(r.result.headBytes, wire.length);
          assert.deepEqual(r.leftover, tail);
          assert.equal(
            formatHead(r.result.head),
            [`HTTP/${v} ${status}${why ? ` ${why}` : ''}`, ...hs.map(([k, x]) => `${k}: ${x}`)].join('\n'),
          );
        },
      ),
      { numRuns: 500 },
    );
  });

  it('parse(serialize(request)) is the request, split anywhere, leftover intact', () => {
    const target = fc.oneof(
      fc.webPath().map((p) => (p.startsWith('/') ? p : `/${p}`)),
      fc.webUrl(),
      fc.tuple(fc.domain(), fc.integer({ min: 1, max: 65535 })).map(([h, p]) => `${h}:${p}`),
      fc.constant('*'),
    );
    fc.assert(
      fc.property(
        token,
        target,
        version,
        headers,
        fc.uint8Array({ maxLength: 40 }),
        fc.array(fc.nat(), { maxLength: 5 }),
        (method, t, v, hs, tail, points) => {
          const wire = serializeHead(`${method} ${t} HTTP/${v}`, hs);
          const r = drive(new RequestHeadReader(CTX), splitAt(concat(wire, tail), points));
          assert.ok(r);
          assert.deepEqual(r.result.head, { kind: 'request', method, target: t, version: v, headers: hs });
          assert.deepEqual(r.leftover, tail);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('RequestHeadReader', () => {
  it('parses a head that came whole in one read where it lies: leftover and received are views of that read', () => {
    const chunk = concat(bytes('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n'), TAIL);
    const reader = new RequestHeadReader({ peer: 'the client', hop: 'server' });
    const r = reader.receive(chunk);
    assert.ok(r);
    assert.equal(r.head.target, 'example.com:443');
    assert.deepEqual(r.leftover, TAIL);
    assert.equal(r.leftover.buffer, chunk.buffer);
    assert.equal(reader.received.buffer, chunk.buffer);
    assert.equal(reader.received.length, r.headBytes);
  });

  it('reads the origin, absolute, authority and asterisk forms (RFC 9112 §3.2)', () => {
    for (const [line, method, target] of [
      ['GET /chat?x=1 HTTP/1.1', 'GET', '/chat?x=1'],
      ['GET http://example.com:8080/a/b HTTP/1.1', 'GET', 'http://example.com:8080/a/b'],
      ['CONNECT example.com:443 HTTP/1.1', 'CONNECT', 'example.com:443'],
      ['CONNECT [::1]:443 HTTP/1.1', 'CONNECT', '[::1]:443'],
      ['CONNECT 127.0.0.1:80 HTTP/1.0', 'CONNECT', '127.0.0.1:80'],
      ['OPTIONS * HTTP/1.1', 'OPTIONS', '*'],
    ] as const) {
      const input = concat(bytes(`${line}\r\nHost: h\r\n\r\n`), TAIL);
      for (const pieces of [[input], byteByByte(input)]) {
        const r = readRequest(pieces);
        assert.ok(r, line);
        assert.equal(r.result.head.method, method);
        assert.equal(r.result.head.target, target);
        assert.deepEqual(r.result.head.headers, [['Host', 'h']]);
        assert.deepEqual(r.leftover, TAIL);
      }
    }
  });

  it('rejects malformed request lines', () => {
    for (const line of [
      'GET  / HTTP/1.1',
      'GET / HTTP/1.1 extra',
      'GET /',
      'GET / http/1.1',
      'GET / HTTP/2',
      'G(T / HTTP/1.1',
      'GET /a\x01b HTTP/1.1',
      'GET /a\x7fb HTTP/1.1',
      'GET\t/ HTTP/1.1',
      ' GET / HTTP/1.1',
    ]) {
      const e = catchWsvia(() => readRequest(bytes(`${line}\r\n\r\n`)));
      assert.equal(e.code, 'PROTOCOL_ERROR', JSON.stringify(line));
      assert.equal(e.hop, 'server');
    }
  });

  it('rejects a TLS ClientHello after its first byte, with a hint', () => {
    const reader = new RequestHeadReader({ peer: 'the client', hop: 'server' });
    const e = catchWsvia(() => reader.receive(new Uint8Array([0x16])));
    assert.match(e.hint ?? '', /TLS/);
  });

  it('rejects a method longer than the first 16 bytes only when a bad byte shows up', () => {
    const r = readRequest(bytes('VERYLONGMETHODNAMEXYZ / HTTP/1.1\r\n\r\n'));
    assert.equal(r?.result.head.method, 'VERYLONGMETHODNAMEXYZ');
  });
});

describe('printable', () => {
  it('shows printable ASCII, escapes the rest and cuts at max', () => {
    assert.equal(printable(bytes('a\r\n\x00\xff'), 10), 'a\\r\\n\\x00\\xff');
    assert.equal(printable(bytes('abcdef'), 3), 'abc...');
  });
});
