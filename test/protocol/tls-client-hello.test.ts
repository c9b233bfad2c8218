import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { before, describe, it } from 'node:test';
import fc from 'fast-check';
import { isWsviaError } from '../../src/errors.js';
import { ClientHelloReader, serverNameMatches } from '../../src/protocol/tls-client-hello.js';

/** The first bytes a real TLS client (node's OpenSSL) sends, captured on loopback. */
function captureHello(options: tls.ConnectionOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const server = net.createServer((s) => {
      let got = Buffer.alloc(0);
      s.on('data', (d: Buffer) => {
        got = Buffer.concat([got, d]);
        const len = got.length >= 5 ? got.readUInt16BE(3) : Infinity;
        if (got.length >= 5 + len) {
          resolve(got);
          s.destroy();
          server.close();
        }
      });
    });
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      const c = tls.connect({ host: '127.0.0.1', port, ...options });
      c.on('error', () => {});
    });
    server.on('error', reject);
  });
}

/** Splits one handshake record into two records (RFC 8446 §5.1 allows fragmenting handshake messages). */
function fragment(hello: Buffer, at: number): Buffer {
  const body = hello.subarray(5);
  const rec = (b: Buffer): Buffer =>
    Buffer.concat([Buffer.from([0x16, 0x03, 0x01, b.length >> 8, b.length & 0xff]), b]);
  return Buffer.concat([rec(body.subarray(0, at)), rec(body.subarray(at))]);
}

const TAIL = Buffer.from([0x17, 0x03, 0x03, 0x00, 0x01, 0xaa]);

describe('ClientHelloReader', () => {
  let hello: Buffer;
  let bare: Buffer;
  before(async () => {
    hello = await captureHello({ servername: 'Backend.Example.test', ALPNProtocols: ['h2', 'http/1.1'] });
    bare = await captureHello({}); // no servername for an IP literal
  });

  it('reads the server name and ALPN from a whole ClientHello', () => {
    const r = new ClientHelloReader().receive(hello);
    assert.ok(r);
    assert.equal(r.hello.serverName, 'backend.example.test');
    assert.deepEqual(r.hello.alpn, ['h2', 'http/1.1']);
    assert.equal(r.records.length, hello.length);
    assert.equal(r.leftover.length, 0);
  });

  it('gives the same result byte by byte', () => {
    const reader = new ClientHelloReader();
    let r;
    for (let i = 0; i < hello.length; i++) {
      r = reader.receive(hello.subarray(i, i + 1));
      if (i < hello.length - 1) assert.equal(r, undefined);
    }
    assert.equal(r?.hello.serverName, 'backend.example.test');
  });

  it('keeps trailing bytes as leftover', () => {
    const r = new ClientHelloReader().receive(Buffer.concat([hello, TAIL]));
    assert.deepEqual(Buffer.from(r?.leftover ?? []), TAIL);
  });

  it('reassembles a hello fragmented over two records', () => {
    const r = new ClientHelloReader().receive(fragment(hello, 20));
    assert.equal(r?.hello.serverName, 'backend.example.test');
  });

  it('has no server name when the client sent none', () => {
    const r = new ClientHelloReader().receive(bare);
    assert.ok(r);
    assert.equal(r.hello.serverName, undefined);
  });

  it('rejects plain HTTP at the first byte', () => {
    assert.throws(() => new ClientHelloReader().receive(Buffer.from('G')), isWsviaError);
  });

  it('property: any bytes, and any corruption of a real hello, parse or throw a WsviaError', () => {
    const check = (bytes: Uint8Array): void => {
      try {
        new ClientHelloReader().receive(bytes);
      } catch (e) {
        assert.ok(isWsviaError(e), String(e));
      }
    };
    fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), check));
    fc.assert(
      fc.property(fc.nat(), fc.integer({ min: 0, max: 255 }), (pos, value) => {
        const copy = Buffer.from(hello);
        copy[pos % copy.length] = value;
        check(copy);
        check(copy.subarray(0, pos % copy.length));
      }),
    );
  });
});

describe('serverNameMatches', () => {
  it('matches exact names and one-label wildcards only', () => {
    assert.ok(serverNameMatches('a.example.com', 'a.example.com'));
    assert.ok(serverNameMatches('*.example.com', 'a.example.com'));
    assert.ok(!serverNameMatches('*.example.com', 'example.com'));
    assert.ok(!serverNameMatches('*.example.com', 'a.b.example.com'));
    assert.ok(!serverNameMatches('*.example.com', 'aexample.com'));
  });
});
