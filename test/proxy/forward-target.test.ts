import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isWsviaError } from '../../src/errors.js';
import { RequestHeadReader } from '../../src/protocol/head.js';
import { endToEnd } from '../../src/proxy/hop-by-hop.js';
import { parseForwardTarget } from '../../src/proxy/forward.js';

function head(text: string) {
  const r = new RequestHeadReader({ peer: 'test', hop: 'server' }).receive(Buffer.from(text, 'latin1'));
  assert.ok(r);
  return r.head;
}

describe('parseForwardTarget', () => {
  it('takes http:// and ws:// absolute-form targets apart', () => {
    const t = parseForwardTarget(head('GET http://Example.COM:8080/a/b?c=d HTTP/1.1\r\n\r\n'));
    assert.deepEqual(t, {
      authority: { host: 'example.com', port: 8080 },
      path: '/a/b?c=d',
      hostHeader: 'example.com:8080',
      upgrade: undefined,
    });
    const ws = parseForwardTarget(
      head('GET ws://[::1]/chat HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n'),
    );
    assert.deepEqual(ws.authority, { host: '::1', port: 80 });
    assert.equal(ws.hostHeader, '[::1]');
    assert.equal(ws.upgrade, 'websocket');
  });

  it('refuses origin-form, https:, other schemes and credentials in the URL with a 400-class error', () => {
    for (const target of ['/', '*', 'https://a/', 'ftp://a/', 'http://u:p@a/', 'a.example:80']) {
      assert.throws(
        () => parseForwardTarget(head(`GET ${target} HTTP/1.1\r\n\r\n`)),
        (e) => isWsviaError(e) && e.code === 'PROTOCOL_ERROR',
        target,
      );
    }
  });

  it('any request-target either parses or throws a WsviaError', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 80 }), (s) => {
        const target = s.replace(/[\s\0-\x20\x7f]/g, 'x');
        try {
          const t = parseForwardTarget({
            kind: 'request',
            method: 'GET',
            target,
            version: '1.1',
            headers: [],
          });
          assert.ok(t.authority.port >= 1 && t.authority.port <= 65535);
          assert.ok(t.path.startsWith('/'));
        } catch (e) {
          assert.ok(isWsviaError(e), String(e));
        }
      }),
    );
  });
});

describe('endToEnd (RFC 9110 §7.6.1)', () => {
  it('drops hop-by-hop fields and those Connection names, keeps the rest in order', () => {
    const out = endToEnd([
      ['Host', 'a'],
      ['Connection', 'close, X-Private'],
      ['Keep-Alive', '5'],
      ['Proxy-Authorization', 'Basic eDp5'],
      ['Proxy-Connection', 'keep-alive'],
      ['TE', 'trailers'],
      ['X-Private', 'secret'],
      ['Upgrade', 'websocket'],
      ['Transfer-Encoding', 'chunked'],
      ['X-Kept', '1'],
    ]);
    assert.deepEqual(out, [
      ['Host', 'a'],
      ['Transfer-Encoding', 'chunked'],
      ['X-Kept', '1'],
    ]);
  });
});
