/**
 * What the network fuzzers send: fast-check arbitraries for HTTP/1 request heads (valid-ish and broken),
 * WebSocket frames after a good upgrade, PROXY protocol v1/v2 headers, TLS ClientHello garbage and raw bytes.
 * Each produces the bytes to write; how they are written (split, delayed, half-closed, reset) is delivery.ts's.
 */
import fc from 'fast-check';

/** True about `inOf` times in `of`, drawn from the run's seed so a failure replays. */
function likely(inOf: number, of: number): fc.Arbitrary<boolean> {
  return fc.integer({ min: 1, max: of }).map((n) => n <= inOf);
}

const EOL = fc.constantFrom('\r\n', '\r\n', '\r\n', '\r\n', '\n', '\r', '\r\r\n');

/** A header value that a strict parser must refuse or a lenient one must not be fooled by. */
const nastyText = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.constantFrom(
    'a\rb',
    'a\nb',
    'a\0b',
    'a\r\n b',
    '\r\n\tfolded',
    ' \t ',
    '\u00ff\u00fe',
    '%00',
    '"',
    '\\',
  ),
  fc.integer({ min: 300, max: 20_000 }).map((n) => 'x'.repeat(n)),
);

const headerName = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('Host', 'User-Agent', 'Accept', 'X-A', 'Cookie', 'Origin') },
  {
    weight: 1,
    arbitrary: fc.constantFrom('Bad Name', 'Bad:Name', 'Bad\0Name', '', ' Host', 'Host ', 'X\r\nY', '\u00e9'),
  },
  { weight: 1, arbitrary: fc.stringMatching(/^[!-~]{1,30}$/) },
);

const contentLength = fc.constantFrom(
  '0',
  '5',
  '-1',
  '1e3',
  ' 5',
  '5, 5',
  '5,6',
  '0x10',
  '99999999999999999999',
  '',
);

const transferEncoding = fc.constantFrom(
  'chunked',
  'gzip, chunked',
  'chunked, gzip',
  'chunked, chunked',
  'identity',
  ' chunked',
  'xchunked',
  'CHUNKED',
  'chunked\0',
  '',
);

const wsKey = fc.oneof(
  fc.constant('dGhlIHNhbXBsZSBub25jZQ=='),
  fc.uint8Array({ minLength: 0, maxLength: 40 }).map((b) => Buffer.from(b).toString('base64')),
  fc.constantFrom(
    '',
    'not base64!',
    'dGhlIHNhbXBsZSBub25jZQ',
    'dGhlIHNhbXBsZSBub25jZQ==, dGhlIHNhbXBsZSBub25jZQ==',
  ),
);

/** A header line's name and value, from the ones that decide framing and upgrades to plain garbage. */
const header: fc.Arbitrary<[string, string]> = fc.oneof(
  fc.tuple(fc.constantFrom('Content-Length', 'content-length'), contentLength),
  fc.tuple(fc.constant('Transfer-Encoding'), transferEncoding),
  fc.tuple(
    fc.constant('Upgrade'),
    fc.constantFrom('websocket', 'WebSocket', 'h2c', 'websocket, h2c', '', 'tls/1.0'),
  ),
  fc.tuple(
    fc.constant('Connection'),
    fc.constantFrom('Upgrade', 'upgrade, keep-alive', 'close', 'keep-alive', ''),
  ),
  fc.tuple(fc.constant('Sec-WebSocket-Key'), wsKey),
  fc.tuple(fc.constant('Sec-WebSocket-Version'), fc.constantFrom('13', '8', '', '13, 8', '99999')),
  fc.tuple(
    fc.constant('Sec-WebSocket-Protocol'),
    fc.constantFrom('binary', 'base64', 'wsvia.tunnel.v1', 'wsvia.reverse.v1', 'a,,b', ''),
  ),
  fc.tuple(fc.constant('Sec-WebSocket-Extensions'), fc.constantFrom('permessage-deflate', 'x; y=', ';;')),
  fc.tuple(
    fc.constant('Proxy-Authorization'),
    fc.constantFrom('Basic Zm9vOmJhcg==', 'Basic', 'Digest a=', 'NTLM x'),
  ),
  fc.tuple(fc.constant('Authorization'), fc.constantFrom('Basic Zm9vOmJhcg==', 'Bearer x', 'Basic ???')),
  fc.tuple(fc.constant('Expect'), fc.constantFrom('100-continue', 'x')),
  fc.tuple(headerName, nastyText),
);

const method = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom('GET', 'CONNECT', 'POST', 'PUT', 'HEAD', 'OPTIONS', 'DELETE') },
  {
    weight: 1,
    arbitrary: fc.constantFrom('get', 'G ET', '', 'PRI', 'TRACE', 'GET\0', 'A'.repeat(9000), '\u00c9T'),
  },
);

const version = fc.constantFrom(
  'HTTP/1.1',
  'HTTP/1.1',
  'HTTP/1.1',
  'HTTP/1.0',
  'HTTP/2.0',
  'HTTP/1',
  'http/1.1',
  '',
);

/** Request targets: those the listener means (given), and broken ones. */
function target(meaningful: readonly string[]): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...meaningful) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        '*',
        '',
        ' ',
        '/a b',
        'http://',
        'http://[::1',
        'host:',
        ':80',
        'host:99999',
        'host:-1',
        '[::1]:80',
        '127.0.0.1:0',
        '/\0',
        `/${'a'.repeat(20_000)}`,
        '/%ZZ',
        '//x',
        'ftp://127.0.0.1/',
      ),
    },
    { weight: 1, arbitrary: fc.string({ maxLength: 60 }) },
  );
}

/** The body after a head: nothing, plain bytes, a chunked body that may be broken. */
const body = fc.oneof(
  { weight: 3, arbitrary: fc.constant('') },
  { weight: 1, arbitrary: fc.string({ maxLength: 100 }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '5\r\nhello\r\n0\r\n\r\n',
      '5\r\nhel',
      'zz\r\n',
      'FFFFFFFFFFFFFFFFFF\r\n',
      '0\r\nTrailer: x\r\n\r\n',
      '5;ext=1\r\nhello\r\n0\r\n\r\n',
      '-1\r\n',
    ),
  },
);

export interface HeadShape {
  readonly method: string;
  readonly target: string;
  readonly version: string;
  readonly headers: readonly [string, string][];
  readonly eol: string;
  /** False: the blank line that ends the head is missing. */
  readonly complete: boolean;
  readonly body: string;
}

export function headShape(targets: readonly string[]): fc.Arbitrary<HeadShape> {
  return fc.record({
    method,
    target: target(targets),
    version,
    headers: fc.oneof(
      { weight: 6, arbitrary: fc.array(header, { maxLength: 8 }) },
      { weight: 1, arbitrary: fc.array(header, { minLength: 90, maxLength: 130 }) },
    ),
    eol: EOL,
    complete: likely(9, 10),
    body,
  });
}

export function headBytes(h: HeadShape): Buffer {
  const lines = [
    `${h.method} ${h.target} ${h.version}`.trimEnd(),
    ...h.headers.map(([n, v]) => `${n}: ${v}`),
  ];
  const head = lines.join(h.eol) + h.eol + (h.complete ? h.eol : '');
  return Buffer.from(head + (h.complete ? h.body : ''), 'latin1');
}

/** Request heads, as bytes, aimed at `targets` (and elsewhere). */
export function requestHead(targets: readonly string[]): fc.Arbitrary<Buffer> {
  return headShape(targets).map(headBytes);
}

/** A well-formed WebSocket upgrade for `path`, offering `protocol` when given. */
export function upgradeRequest(path: string, protocol?: string, extra: readonly string[] = []): Buffer {
  const lines = [
    `GET ${path} HTTP/1.1`,
    'Host: 127.0.0.1',
    'Upgrade: websocket',
    'Connection: Upgrade',
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
    'Sec-WebSocket-Version: 13',
    ...(protocol === undefined ? [] : [`Sec-WebSocket-Protocol: ${protocol}`]),
    ...extra,
  ];
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
}

export interface FrameShape {
  readonly fin: boolean;
  readonly rsv: number;
  readonly opcode: number;
  readonly masked: boolean;
  readonly payload: Uint8Array;
  /** How the length is written: exactly, claiming more than is sent, or in a longer form than needed. */
  readonly length: 'exact' | 'short-by' | 'huge' | 'wide16' | 'wide64';
}

const CLOSE_CODES = [
  1000, 1001, 1002, 1003, 1005, 1006, 1007, 1011, 1015, 999, 2999, 3000, 4999, 5000, 0, 65535,
];

const payload = fc.oneof(
  fc.uint8Array({ maxLength: 200 }),
  fc.string({ maxLength: 100 }).map((s) => new Uint8Array(Buffer.from(s, 'utf8'))),
  // Invalid UTF-8: a lone continuation byte, an overlong form, a surrogate, a truncated sequence.
  fc
    .constantFrom([0x80], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0xff])
    .map((b) => new Uint8Array(b)),
  fc
    .tuple(fc.constantFrom(...CLOSE_CODES), fc.string({ maxLength: 140 }))
    .map(([code, reason]) => new Uint8Array(Buffer.concat([u16(code), Buffer.from(reason, 'utf8')]))),
  fc.constant(new Uint8Array([3])),
  fc.integer({ min: 126, max: 70_000 }).map((n) => new Uint8Array(n)),
);

export const frameShape: fc.Arbitrary<FrameShape> = fc.record({
  fin: likely(8, 10),
  rsv: fc.oneof(
    { weight: 5, arbitrary: fc.constant(0) },
    { weight: 1, arbitrary: fc.integer({ min: 1, max: 7 }) },
  ),
  opcode: fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(0, 1, 2, 8, 9, 10) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: 15 }) },
  ),
  masked: likely(9, 10),
  payload,
  length: fc.constantFrom('exact', 'exact', 'exact', 'exact', 'short-by', 'huge', 'wide16', 'wide64'),
});

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

export function frameBytes(f: FrameShape): Buffer {
  const declared =
    f.length === 'short-by'
      ? f.payload.length + 10
      : f.length === 'huge'
        ? Number.MAX_SAFE_INTEGER
        : f.payload.length;
  const first = (f.fin ? 0x80 : 0) | (f.rsv << 4) | f.opcode;
  let len: Buffer;
  const mask = f.masked ? 0x80 : 0;
  if (f.length === 'wide64' || declared > 0xffff) {
    len = Buffer.alloc(9);
    len[0] = mask | 127;
    len.writeBigUInt64BE(BigInt(declared), 1);
  } else if (f.length === 'wide16' || declared > 125) {
    len = Buffer.alloc(3);
    len[0] = mask | 126;
    len.writeUInt16BE(declared, 1);
  } else {
    len = Buffer.from([mask | declared]);
  }
  const key = Buffer.from([0x12, 0x34, 0x56, 0x78]);
  const data = Buffer.from(f.payload);
  if (f.masked) for (let i = 0; i < data.length; i++) data[i] = (data[i] as number) ^ (key[i % 4] as number);
  return Buffer.concat([Buffer.from([first]), len, f.masked ? key : Buffer.alloc(0), data]);
}

/** A good upgrade to `path`, then frames that may break every rule of RFC 6455 §5. */
export function framesAfterUpgrade(
  path: string,
  protocols: readonly (string | undefined)[],
): fc.Arbitrary<Buffer> {
  return fc
    .tuple(fc.constantFrom(...protocols), fc.array(frameShape, { minLength: 1, maxLength: 6 }))
    .map(([p, frames]) => Buffer.concat([upgradeRequest(path, p), ...frames.map(frameBytes)]));
}

const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

/** PROXY protocol v1 lines and v2 headers, good and broken (HAProxy's proxy-protocol.txt). */
export const proxyHeader: fc.Arbitrary<Buffer> = fc.oneof(
  fc
    .constantFrom(
      'PROXY TCP4 192.0.2.1 192.0.2.2 5000 80\r\n',
      'PROXY TCP6 2001:db8::1 2001:db8::2 5000 80\r\n',
      'PROXY UNKNOWN\r\n',
      'PROXY UNKNOWN ffff:f::1 ffff:f::2 1 2\r\n',
      'PROXY TCP4 300.1.1.1 1.1.1.1 1 2\r\n',
      'PROXY TCP4 1.1.1.1 1.1.1.1 99999 2\r\n',
      'PROXY TCP4 1.1.1.1\r\n',
      'PROXY TCP5 1.1.1.1 1.1.1.1 1 2\r\n',
      'PROXY  TCP4 1.1.1.1 1.1.1.1 1 2\r\n',
      'PROXY TCP4 1.1.1.1 1.1.1.1 1 2\n',
      `PROXY TCP4 ${'1'.repeat(200)}\r\n`,
      'PROXY',
      'PROX',
    )
    .map((s) => Buffer.from(s, 'latin1')),
  fc
    .record({
      verCmd: fc.constantFrom(0x20, 0x21, 0x22, 0x11, 0x2f),
      family: fc.constantFrom(0x00, 0x11, 0x12, 0x21, 0x22, 0x31, 0xff),
      body: fc.uint8Array({ maxLength: 260 }),
      lengthDelta: fc.constantFrom(0, 0, 0, 1, -1, 500, 65_000),
    })
    .map(({ verCmd, family, body, lengthDelta }) => {
      const len = Math.max(0, Math.min(0xffff, body.length + lengthDelta));
      return Buffer.concat([V2_SIGNATURE, Buffer.from([verCmd, family]), u16(len), Buffer.from(body)]);
    }),
);

/**
 * A ClientHello that was real (`sample`, captured from Node's TLS client), then cut, bit-flipped or followed by
 * junk; or a TLS record header followed by noise.
 */
export function clientHelloGarbage(sample: Buffer): fc.Arbitrary<Buffer> {
  return fc.oneof(
    fc.integer({ min: 1, max: sample.length }).map((n) => sample.subarray(0, n)),
    fc
      .array(fc.tuple(fc.nat(sample.length - 1), fc.integer({ min: 1, max: 255 })), {
        minLength: 1,
        maxLength: 8,
      })
      .map((flips) => {
        const b = Buffer.from(sample);
        for (const [i, x] of flips) b[i] = (b[i] as number) ^ x;
        return b;
      }),
    fc.uint8Array({ maxLength: 300 }).map((junk) => Buffer.concat([sample, Buffer.from(junk)])),
    fc
      .tuple(fc.integer({ min: 0, max: 5 }), fc.nat(0xffff), fc.uint8Array({ maxLength: 600 }))
      .map(([minor, len, noise]) =>
        Buffer.concat([Buffer.from([0x16, 3, minor]), u16(len), Buffer.from(noise)]),
      ),
  );
}

/** Bytes with no structure at all, sometimes many of them. */
export const rawBytes: fc.Arbitrary<Buffer> = fc
  .oneof(
    { weight: 4, arbitrary: fc.uint8Array({ maxLength: 600 }) },
    {
      weight: 1,
      arbitrary: fc.integer({ min: 10_000, max: 200_000 }).map((n) => new Uint8Array(n).fill(0x41)),
    },
  )
  .map((b) => Buffer.from(b));

/** Text frames a `wsvia.tunnel.v1` peer reads as control messages: good, unknown, broken and oversized. */
const controlFrame: fc.Arbitrary<FrameShape> = fc
  .oneof(
    fc.constantFrom(
      '{"type":"eof"}',
      '{"type":"listening","bind":"127.0.0.1","port":1}',
      '{"type":"connection","id":"x"}',
      '{"type":"nope"}',
      '{"type":"eof"',
      '[]',
      'null',
      '',
    ),
    fc.string({ maxLength: 60 }).map((t) => JSON.stringify({ type: t })),
    fc.integer({ min: 513, max: 2000 }).map((n) => JSON.stringify({ type: 'eof', pad: 'x'.repeat(n) })),
  )
  .map((text) => ({
    fin: true,
    rsv: 0,
    opcode: 1,
    masked: true,
    payload: new Uint8Array(Buffer.from(text, 'utf8')),
    length: 'exact' as const,
  }));

/** A good upgrade offering the tunnel protocol, then control messages, data and broken frames mixed. */
export function tunnelSession(path: string, protocol: string): fc.Arbitrary<Buffer> {
  return fc
    .array(fc.oneof(controlFrame, frameShape), { minLength: 1, maxLength: 6 })
    .map((frames) => Buffer.concat([upgradeRequest(path, protocol), ...frames.map(frameBytes)]));
}
