import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { SocksHandshake, type SocksRequest, type SocksResult } from '../../src/protocol/socks-client.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/**
 * Runs a handshake against a scripted proxy: each reply is fed after the client's bytes for that round were
 * taken; `split` feeds every reply one byte at a time. Returns what the client sent and the result.
 */
function run(
  request: SocksRequest,
  replies: Buffer[],
  split = false,
): { sent: string[]; result: SocksResult | undefined } {
  const h = new SocksHandshake(request);
  const sent: string[] = [];
  let result: SocksResult | undefined;
  for (const reply of replies) {
    sent.push(...h.dataToSend().map((b) => b.toString('hex')));
    const pieces = split ? [...reply].map((b) => Buffer.from([b])) : [reply];
    for (const p of pieces) {
      if (result) break;
      result = h.receiveData(p);
    }
  }
  return { sent, result };
}

const SOCKS5_OK_V4 = hex('05 00 00 01 7f000001 1f90');
const TAIL = Buffer.from('SSH-2.0-greeting\r\n');

describe('SocksHandshake (SOCKS5, RFC 1928 and 1929)', () => {
  it('no authentication, a name sent to the proxy (socks5h): byte-exact, whole and byte by byte', () => {
    for (const split of [false, true]) {
      const { sent, result } = run(
        { version: 5, host: 'echo.example', port: 443 },
        [hex('0500'), SOCKS5_OK_V4],
        split,
      );
      // Method offer (no authentication), then CONNECT, address type 3: length 12, the name, port 443.
      assert.deepEqual(sent, ['050100', `050100030c${Buffer.from('echo.example').toString('hex')}01bb`]);
      assert.deepEqual(result, {
        kind: 'granted',
        bound: { host: '127.0.0.1', port: 8080 },
        leftover: Buffer.alloc(0),
      });
    }
  });

  it('username/password: offers both methods, then RFC 1929 version 1', () => {
    const { sent, result } = run({ version: 5, host: '10.0.0.1', port: 80, user: 'al', password: 'pw' }, [
      hex('0502'),
      hex('0100'),
      SOCKS5_OK_V4,
    ]);
    assert.deepEqual(sent, ['05020002', '0102616c027077', '050100010a0000010050']);
    assert.equal(result?.kind, 'granted');
  });

  it('an IPv6 destination is address type 4', () => {
    const { sent } = run({ version: 5, host: '::1', port: 80 }, [hex('0500'), SOCKS5_OK_V4]);
    assert.equal(sent[1], `05010004${'00'.repeat(15)}010050`);
  });

  it('bytes after the final reply are the leftover (a destination that speaks first)', () => {
    for (const split of [false, true]) {
      const { result } = run(
        { version: 5, host: 'h', port: 22 },
        [hex('0500'), Buffer.concat([SOCKS5_OK_V4, TAIL])],
        split,
      );
      assert.ok(result?.kind === 'granted');
      if (!split) assert.deepEqual(Buffer.from(result.leftover), TAIL);
    }
    // Split byte by byte the reply completes before the tail arrives: the tail is then the socket's, not ours.
  });

  it('a bound address given as a name is read to its length', () => {
    const { result } = run({ version: 5, host: 'h', port: 1 }, [
      hex('0500'),
      hex('05 00 00 03 04 70726f78 0050'),
    ]);
    assert.deepEqual(result, {
      kind: 'granted',
      bound: { host: 'prox', port: 80 },
      leftover: Buffer.alloc(0),
    });
  });

  it('refusals are classified by reply code', () => {
    const r = run({ version: 5, host: 'h', port: 1 }, [hex('0500'), hex('05 02 00 01 00000000 0000')]).result;
    assert.ok(r?.kind === 'refused');
    assert.equal(r.refusal.code, 'PROXY_REFUSED');
    assert.match(r.refusal.reply, /reply 2/);
    const none = run({ version: 5, host: 'h', port: 1 }, [hex('05ff')]).result;
    assert.ok(none?.kind === 'refused' && /method 0xFF/.test(none.refusal.reply));
    const bad = run({ version: 5, host: 'h', port: 1, user: 'u', password: 'x' }, [
      hex('0502'),
      hex('0101'),
    ]).result;
    assert.ok(bad?.kind === 'refused' && /RFC 1929/.test(bad.refusal.reply));
  });

  it('what is not SOCKS5 is malformed, named', () => {
    assert.deepEqual(run({ version: 5, host: 'h', port: 1 }, [Buffer.from('HTTP/1.1 400 Bad')]).result, {
      kind: 'malformed',
      why: 'the method reply has version 72, not 5',
    });
    assert.equal(run({ version: 5, host: 'h', port: 1 }, [hex('0502')]).result?.kind, 'malformed');
  });
});

describe('SocksHandshake (SOCKS4 and 4a)', () => {
  it('SOCKS4 sends the address and the user id; 90 is granted, with the leftover', () => {
    const { sent, result } = run({ version: 4, host: '127.0.0.1', port: 80, user: 'alice' }, [
      Buffer.concat([hex('005a 0000 00000000'), TAIL]),
    ]);
    assert.deepEqual(sent, [`040100507f000001${Buffer.from('alice').toString('hex')}00`]);
    assert.ok(result?.kind === 'granted');
    assert.deepEqual(Buffer.from(result.leftover), TAIL);
  });

  it('SOCKS4a sends 0.0.0.1 and the name after the user id', () => {
    const { sent } = run({ version: 4, host: 'localhost', port: 80 }, [hex('005a000000000000')]);
    assert.deepEqual(sent, [`0401005000000001${'00'}${Buffer.from('localhost').toString('hex')}00`]);
  });

  it('91-93 are refusals by code; a SOCKS5 answer is malformed', () => {
    for (const code of [91, 92, 93]) {
      const r = run({ version: 4, host: '1.2.3.4', port: 80 }, [
        Buffer.from([0, code, 0, 0, 0, 0, 0, 0]),
      ]).result;
      assert.ok(r?.kind === 'refused' && r.refusal.reply.includes(`reply ${code}`));
    }
    assert.equal(
      run({ version: 4, host: '1.2.3.4', port: 80 }, [hex('05ff000000000000')]).result?.kind,
      'malformed',
    );
  });
});

describe('SocksHandshake, any bytes from the proxy', () => {
  it('end in a result, or wait for more; never throw', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.boolean(), (bytes, v4) => {
        const h = new SocksHandshake({
          version: v4 ? 4 : 5,
          host: 'h.example',
          port: 443,
          user: 'u',
          password: 'p',
        });
        const r = h.receiveData(bytes);
        assert.ok(r === undefined || ['granted', 'refused', 'malformed'].includes(r.kind));
      }),
    );
  });
});
