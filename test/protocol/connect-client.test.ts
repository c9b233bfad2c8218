import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isWsviaError } from '../../src/errors.js';
import {
  buildConnectRequest,
  ConnectClient,
  isPersistent,
  retryAfterSeconds,
  selectedHeaders,
  USER_AGENT,
  type ConnectResult,
} from '../../src/protocol/connect-client.js';
import type { HeaderList } from '../../src/protocol/headers.js';
import type { ResponseHead } from '../../src/protocol/head.js';
import { byteByByte, bytes, catchWsvia, concat, splitAt, text } from '../helpers/bytes.js';

const PEER = 'proxy http://p:3128';

/** Feeds pieces as a driver would; the tunnel's first bytes are the result's leftover plus every later piece. */
function drive(pieces: readonly Uint8Array[], eof = false) {
  const client = new ConnectClient(PEER);
  for (let i = 0; i < pieces.length; i++) {
    const r = client.receive(pieces[i] as Uint8Array);
    if (r) {
      const rest = concat(...pieces.slice(i + 1));
      return { result: r, tunnel: r.kind === 'tunnel' ? concat(r.leftover, rest) : rest, client, at: i };
    }
  }
  if (eof) return { result: client.receiveEof(), tunnel: new Uint8Array(0), client, at: pieces.length };
  return { result: undefined, tunnel: new Uint8Array(0), client, at: pieces.length };
}

function allWays(input: Uint8Array): Uint8Array[][] {
  return [
    [input],
    byteByByte(input),
    ...Array.from({ length: input.length + 1 }, (_, p) => splitAt(input, [p])),
  ];
}

const TUNNEL = bytes('\x16\x03\x01\x00\x05hello\r\n\r\nHTTP/1.1 200 OK\r\n\r\n');

function tunnelOf(r: ConnectResult | undefined): Extract<ConnectResult, { kind: 'tunnel' }> {
  assert.equal(r?.kind, 'tunnel');
  return r;
}
function rejectedOf(r: ConnectResult | undefined): Extract<ConnectResult, { kind: 'rejected' }> {
  assert.equal(r?.kind, 'rejected');
  return r;
}

describe('buildConnectRequest', () => {
  it('writes the exact request for a name', () => {
    assert.equal(
      buildConnectRequest({ host: 'echo.example', port: 443 }).toString('latin1'),
      `CONNECT echo.example:443 HTTP/1.1\r\nHost: echo.example:443\r\nUser-Agent: ${USER_AGENT}\r\n\r\n`,
    );
  });

  it('brackets IPv6 literals in the request-target and Host (RFC 9112 §3.2.3, RFC 3986 §3.2.2)', () => {
    assert.equal(
      buildConnectRequest({ host: '::1', port: 443 }).toString('latin1'),
      `CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\nUser-Agent: ${USER_AGENT}\r\n\r\n`,
    );
    assert.match(
      buildConnectRequest({ host: '2001:db8::1', port: 8443 }).toString('latin1'),
      /^CONNECT \[2001:db8::1\]:8443 HTTP\/1\.1\r\nHost: \[2001:db8::1\]:8443\r\n/,
    );
    assert.match(
      buildConnectRequest({ host: '127.0.0.1', port: 80 }).toString('latin1'),
      /^CONNECT 127\.0\.0\.1:80 /,
    );
  });

  it('adds the caller’s headers after Host, keeps their User-Agent, and never a second Host', () => {
    const req = buildConnectRequest({ host: 'a', port: 1 }, [
      ['Proxy-Authorization', 'Basic eDp5'],
      ['host', 'evil'],
      ['User-Agent', 'me/1'],
      ['X-Trace', '1'],
    ]).toString('latin1');
    assert.equal(
      req,
      'CONNECT a:1 HTTP/1.1\r\nHost: a:1\r\nProxy-Authorization: Basic eDp5\r\nUser-Agent: me/1\r\nX-Trace: 1\r\n\r\n',
    );
  });

  it('refuses header names and values that would split the request (CRLF injection)', () => {
    for (const h of [
      ['X', 'a\r\nInjected: 1'],
      ['X', 'a\nb'],
      ['X', 'a\0b'],
      ['X', 'caf\u00e9 \u20ac'],
      ['X\r\nY', 'a'],
      ['Bad Name', 'a'],
      ['', 'a'],
    ] as const) {
      const e = catchWsvia(() => buildConnectRequest({ host: 'a', port: 1 }, [h]));
      assert.equal(e.code, 'INVALID_ARGUMENT', JSON.stringify(h));
    }
  });
});

describe('isPersistent (RFC 9112 §9.3)', () => {
  const head = (version: '1.0' | '1.1', headers: HeaderList): ResponseHead => ({
    kind: 'response',
    version,
    status: 407,
    reason: '',
    headers,
  });
  it('follows the version default and the Connection and Proxy-Connection tokens', () => {
    for (const [v, h, want] of [
      ['1.1', [], true],
      ['1.0', [], false],
      ['1.1', [['Connection', 'close']], false],
      ['1.1', [['Connection', 'Keep-Alive, CLOSE']], false],
      ['1.1', [['Proxy-Connection', 'close']], false],
      ['1.0', [['Connection', 'keep-alive']], true],
      ['1.0', [['Proxy-Connection', 'Keep-Alive']], true],
      ['1.0', [['Connection', 'keep-alive, close']], false],
    ] as const) {
      assert.equal(isPersistent(head(v, h)), want, `${v} ${JSON.stringify(h)}`);
    }
  });
});

describe('ConnectClient: the tunnel opens', () => {
  it('on any 2xx, HTTP/1.0 and 1.1, tunnel bytes back exactly, at every split', () => {
    for (const v of ['1.0', '1.1']) {
      for (const [status, reason] of [
        [200, 'Connection established'],
        [201, 'Created'],
        [204, 'No Content'],
        [299, ''],
      ] as const) {
        // Content-Length on a 2xx to CONNECT is ignored (RFC 9110 §9.3.6): what follows is tunnel.
        const head = `HTTP/${v} ${status}${reason ? ` ${reason}` : ''}\r\nContent-Length: 5\r\nVia: 1.1 p\r\n\r\n`;
        for (const pieces of allWays(concat(bytes(head), TUNNEL))) {
          const { result, tunnel } = drive(pieces);
          const t = tunnelOf(result);
          assert.equal(t.head.status, status);
          assert.equal(t.head.version, v);
          assert.deepEqual(tunnel, TUNNEL);
        }
      }
    }
  });

  it('takes empty reads anywhere in stride', () => {
    const input = concat(bytes('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n'), TUNNEL);
    for (let p = 0; p <= input.length; p += 3) {
      const pieces = [new Uint8Array(0), input.subarray(0, p), new Uint8Array(0), input.subarray(p)];
      const { result, tunnel } = drive(pieces);
      assert.equal(tunnelOf(result).head.status, 200);
      assert.deepEqual(tunnel, TUNNEL);
    }
    const c = new ConnectClient(PEER);
    assert.equal(c.receive(bytes('HTTP/1.1 407 X\r\nContent-Length: 2\r\n\r\n')), undefined);
    assert.equal(c.receive(new Uint8Array(0)), undefined);
    assert.equal(rejectedOf(c.receive(bytes('ab'))).reusable, true);
  });

  it('ignores Transfer-Encoding on a 2xx (RFC 9110 §9.3.6): what follows is tunnel, not chunks', () => {
    const { result, tunnel } = drive([
      concat(bytes('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'), TUNNEL),
    ]);
    assert.equal(tunnelOf(result).head.status, 200);
    assert.deepEqual(tunnel, TUNNEL);
  });

  it('with no tunnel bytes yet gives an empty leftover', () => {
    const t = tunnelOf(drive([bytes('HTTP/1.1 200 OK\r\n\r\n')]).result);
    assert.equal(t.leftover.length, 0);
  });

  it('skips 1xx interim responses, at every split', () => {
    const input = concat(
      bytes('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\nX: y\r\n\r\nHTTP/1.1 200 OK\r\n\r\n'),
      TUNNEL,
    );
    for (const pieces of allWays(input)) {
      const { result, tunnel } = drive(pieces);
      assert.equal(tunnelOf(result).head.status, 200);
      assert.deepEqual(tunnel, TUNNEL);
    }
  });

  it('returns a huge glued chunk of tunnel bytes whole', () => {
    const big = new Uint8Array(1024 * 1024).map((_, i) => i & 0xff);
    const t = tunnelOf(new ConnectClient(PEER).receive(concat(bytes('HTTP/1.1 200 OK\r\n\r\n'), big)));
    assert.equal(t.leftover.length, big.length);
    assert.ok(Buffer.from(t.leftover).equals(Buffer.from(big)));
  });
});

describe('ConnectClient: refusals', () => {
  const r407 =
    'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="r"\r\nContent-Length: 20\r\n\r\n<h1>auth needed</h1>';

  it('reads a 407 body to its end and keeps the connection reusable, at every split', () => {
    for (const pieces of allWays(bytes(r407))) {
      const { result, at } = drive(pieces);
      const r = rejectedOf(result);
      assert.equal(at, pieces.length - 1, 'not before the body ends');
      assert.equal(r.head.status, 407);
      assert.equal(r.reusable, true);
      assert.equal(r.bodyExcerpt, 'auth needed');
    }
  });

  it('is not reusable with Connection: close, Proxy-Connection: close, or HTTP/1.0 without keep-alive', () => {
    for (const head of [
      'HTTP/1.1 407 X\r\nConnection: close\r\nContent-Length: 2\r\n\r\nab',
      'HTTP/1.1 407 X\r\nProxy-Connection: close\r\nContent-Length: 2\r\n\r\nab',
      'HTTP/1.0 407 X\r\nContent-Length: 2\r\n\r\nab',
    ]) {
      assert.equal(rejectedOf(drive([bytes(head)]).result).reusable, false, head);
    }
    assert.equal(
      rejectedOf(
        drive([bytes('HTTP/1.0 407 X\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nab')]).result,
      ).reusable,
      true,
    );
  });

  it('reads a chunked 407 body and stays reusable', () => {
    const input = bytes('HTTP/1.1 407 X\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nDeny\r\n0\r\n\r\n');
    for (const pieces of allWays(input)) {
      const r = rejectedOf(drive(pieces).result);
      assert.equal(r.reusable, true);
      assert.equal(r.bodyExcerpt, 'Deny');
    }
  });

  it('is not reusable when the framing is doubtful (TE with CL, TE in HTTP/1.0)', () => {
    for (const head of [
      'HTTP/1.1 407 X\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n0\r\n\r\n',
      'HTTP/1.0 407 X\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    ]) {
      assert.equal(rejectedOf(drive([bytes(head)]).result).reusable, false, head);
    }
  });

  it('is not reusable when bytes follow the body, including after an empty one', () => {
    for (const head of [
      'HTTP/1.1 407 X\r\nContent-Length: 2\r\n\r\nabEXTRA',
      'HTTP/1.1 407 X\r\nContent-Length: 0\r\n\r\nEXTRA',
    ]) {
      const r = rejectedOf(drive([bytes(head)]).result);
      assert.equal(r.reusable, false, head);
    }
  });

  it('reads a close-delimited refusal until EOF, never reusable', () => {
    const { result, client } = drive([bytes('HTTP/1.1 502 Bad Gateway\r\n\r\nupstream'), bytes(' down')]);
    assert.equal(result, undefined);
    assert.equal(client.head?.status, 502);
    const r = rejectedOf(client.receiveEof());
    assert.equal(r.reusable, false);
    assert.equal(r.bodyExcerpt, 'upstream down');
  });

  it('still gives the rejection when EOF comes mid-body (403)', () => {
    const r = rejectedOf(
      drive([bytes('HTTP/1.1 403 Forbidden\r\nContent-Length: 100\r\n\r\nnot allowed'), bytes(' here')], true)
        .result,
    );
    assert.equal(r.head.status, 403);
    assert.equal(r.reusable, false);
    assert.equal(r.bodyExcerpt, 'not allowed here');
  });

  it('gives up on a refusal body over 64 KiB without waiting for its end', () => {
    const client = new ConnectClient(PEER);
    assert.equal(client.receive(bytes('HTTP/1.1 403 F\r\nContent-Length: 1000000\r\n\r\n')), undefined);
    let r: ConnectResult | undefined;
    let n = 0;
    while (!r && n < 100) {
      r = client.receive(new Uint8Array(8192).fill(0x61));
      n++;
    }
    assert.equal(rejectedOf(r).reusable, false);
    assert.ok(n <= 9, `read ${n} chunks`);
  });

  it('keeps the result: receiveEof after it returns it again, receive throws a local error', () => {
    const client = new ConnectClient(PEER);
    const r = client.receive(bytes('HTTP/1.1 403 F\r\nContent-Length: 0\r\n\r\n'));
    assert.equal(client.receiveEof(), r);
    assert.throws(
      () => client.receive(bytes('x')),
      (e) => !isWsviaError(e),
    );
  });
});

describe('ConnectClient: failures', () => {
  it('EOF before any byte is CONNECTION_RESET', () => {
    const e = catchWsvia(() => new ConnectClient(PEER).receiveEof());
    assert.equal(e.code, 'CONNECTION_RESET');
    assert.equal(e.hop, 'proxy');
    assert.match(e.message, /without answering CONNECT/);
  });

  it('EOF mid-head is CONNECTION_RESET, saying so', () => {
    const c = new ConnectClient(PEER);
    assert.equal(c.receive(bytes('HTTP/1.1 200 Conn')), undefined);
    const e = catchWsvia(() => c.receiveEof());
    assert.equal(e.code, 'CONNECTION_RESET');
    assert.match(e.message, /middle of its answer/);
    assert.equal(e.details?.receivedBytes, 17);
  });

  it('EOF after an interim response only is CONNECTION_RESET', () => {
    const c = new ConnectClient(PEER);
    assert.equal(c.receive(bytes('HTTP/1.1 100 Continue\r\n\r\n')), undefined);
    assert.equal(catchWsvia(() => c.receiveEof()).code, 'CONNECTION_RESET');
  });

  it('non-HTTP bytes are a PROTOCOL_ERROR at the first byte', () => {
    const e = catchWsvia(() => new ConnectClient(PEER).receive(new Uint8Array([0x16])));
    assert.equal(e.code, 'PROTOCOL_ERROR');
    assert.equal(e.hop, 'proxy');
  });

  it('a head over 16 KiB is HEAD_TOO_LARGE', () => {
    const c = new ConnectClient(PEER);
    const e = catchWsvia(() => c.receive(bytes(`HTTP/1.1 200 OK\r\nX: ${'a'.repeat(20000)}\r\n\r\n`)));
    assert.equal(e.code, 'HEAD_TOO_LARGE');
  });

  it('a malformed refusal body is a PROTOCOL_ERROR', () => {
    const e = catchWsvia(() =>
      new ConnectClient(PEER).receive(bytes('HTTP/1.1 407 X\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n')),
    );
    assert.equal(e.code, 'PROTOCOL_ERROR');
  });
});

describe('selectedHeaders and retryAfterSeconds', () => {
  it('keeps the fields that identify the refusing box, in order', () => {
    const head: ResponseHead = {
      kind: 'response',
      version: '1.1',
      status: 503,
      reason: '',
      headers: [
        ['Date', 'x'],
        ['Server', 'squid'],
        ['Via', '1.1 p'],
        ['Proxy-Authenticate', 'Basic'],
        ['Proxy-Status', 'p; error=dns_error'],
        ['X-Squid-Error', 'ERR_DNS_FAIL 0'],
        ['Retry-After', '30'],
        ['Set-Cookie', 'secret'],
      ],
    };
    assert.deepEqual(
      selectedHeaders(head).map(([k]) => k),
      ['Server', 'Via', 'Proxy-Authenticate', 'Proxy-Status', 'X-Squid-Error', 'Retry-After'],
    );
    assert.equal(retryAfterSeconds(head), 30);
    assert.equal(
      retryAfterSeconds({ ...head, headers: [['Retry-After', 'Fri, 31 Dec 1999 23:59:59 GMT']] }),
      undefined,
    );
  });
});

describe('ConnectClient (properties)', () => {
  it('any 2xx with any tunnel bytes, split anywhere: the tunnel bytes come back exactly', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 200, max: 299 }),
        fc.constantFrom('1.0', '1.1'),
        fc.boolean(),
        fc.uint8Array({ maxLength: 100 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        (status, v, interim, tunnel, points) => {
          const head = `${interim ? `HTTP/${v} 100 Continue\r\n\r\n` : ''}HTTP/${v} ${status} OK\r\n\r\n`;
          const { result, tunnel: got } = drive(splitAt(concat(bytes(head), tunnel), points));
          assert.equal(tunnelOf(result).head.status, status);
          assert.deepEqual(got, tunnel);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('any refusal with a Content-Length body: rejected after the body, reusable unless bytes follow', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 300, max: 599 }).filter((s) => s !== 304),
        fc.string({ maxLength: 40 }).map((s) => s.replace(/[^\x20-\x7e]/g, '')),
        fc.uint8Array({ maxLength: 5 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        (status, body, extra, points) => {
          const input = bytes(`HTTP/1.1 ${status} No\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
          const { result } = drive(splitAt(concat(input, extra), points));
          const r = rejectedOf(result);
          assert.equal(r.head.status, status);
          // Extra bytes fed in the same read as the body's end make the connection unusable; in a later read
          // they were never seen (the driver stops at the result).
          if (extra.length === 0) assert.equal(r.reusable, true);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('any bytes, then EOF: a result, undefined, or a WsviaError, never another error (property)', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 200 }),
          fc
            .array(
              fc.constantFrom(
                'HTTP/1.1 ',
                'HTTP/1.0 ',
                '100',
                '200',
                '407',
                ' OK',
                '\r\n',
                'Content-Length: 3',
                'Transfer-Encoding: chunked',
                'Connection: close',
                '0',
                'abc',
              ),
              { maxLength: 20 },
            )
            .map((a) => bytes(a.join(''))),
        ),
        fc.array(fc.nat(), { maxLength: 4 }),
        (input, points) => {
          try {
            drive(splitAt(input, points), true);
          } catch (e) {
            if (!isWsviaError(e)) throw e;
          }
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe('text helper sanity', () => {
  it('round-trips latin1', () => assert.equal(text(bytes('\xff\x00a')), '\xff\x00a'));
});
