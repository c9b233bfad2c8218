/**
 * Reads a TLS ClientHello (RFC 8446 §4.1.2, and TLS 1.2's RFC 5246 §7.4.1.2, same layout) from the first bytes of
 * a connection, sans-I/O, for routing by server name without decrypting (nginx's `ssl_preread`). The hello may
 * span several records (§5.1 lets a handshake message be fragmented); the reader reassembles it within a bound.
 * It extracts the `server_name` (RFC 6066 §3) and ALPN (RFC 7301 §3.1) extensions and nothing else.
 */
import { RemoteProtocolError } from '../errors.js';

export interface ClientHello {
  /** The host_name from server_name, lowercased; undefined when the client sent none (an IP literal URL). */
  readonly serverName: string | undefined;
  /** Protocols offered by ALPN, in the client's order. */
  readonly alpn: readonly string[];
}

export interface ClientHelloResult {
  readonly hello: ClientHello;
  /** The records that carried the hello, as received (to replay to a backend or a TLS stack). */
  readonly records: Uint8Array;
  /** Bytes after the last record of the hello. */
  readonly leftover: Uint8Array;
}

/** Handshake bytes accepted before giving up: a ClientHello with post-quantum key shares is ~2 KB. */
export const MAX_CLIENT_HELLO = 16 * 1024;
const RECORD_HANDSHAKE = 0x16;
const HANDSHAKE_CLIENT_HELLO = 0x01;
const EXT_SERVER_NAME = 0x0000;
const EXT_ALPN = 0x0010;

function fail(what: string): never {
  throw new RemoteProtocolError(`the client sent ${what}`, {
    hop: 'tls',
    hint: 'the client does not speak TLS to this port, or its ClientHello is malformed',
  });
}

export class ClientHelloReader {
  /** Every byte received, bounded by the record sizes checked below. */
  #buf: Buffer = Buffer.alloc(0);
  #done = false;

  receive(chunk: Uint8Array): ClientHelloResult | undefined {
    if (this.#done) throw new Error('ClientHelloReader: hello already read');
    this.#buf = this.#buf.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.#buf, chunk]);
    const b = this.#buf;
    // Walk the records received so far, collecting handshake bytes.
    const parts: Buffer[] = [];
    let handshakeLen = 0;
    let off = 0;
    for (;;) {
      if (b.length - off < 5) break;
      if (b[off] !== RECORD_HANDSHAKE)
        fail(
          off === 0 ? 'bytes that are not a TLS handshake' : 'a non-handshake record inside its ClientHello',
        );
      if (b[off + 1] !== 0x03) fail('a TLS record with an unknown version');
      const len = b.readUInt16BE(off + 3);
      if (len === 0 || len > 16384) fail('a TLS record with an invalid length');
      if (b.length - off - 5 < len) break;
      parts.push(b.subarray(off + 5, off + 5 + len));
      handshakeLen += len;
      off += 5 + len;
      const hs = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
      if (hs.length >= 4) {
        if (hs[0] !== HANDSHAKE_CLIENT_HELLO) fail('a handshake message that is not a ClientHello');
        const msgLen = hs.readUIntBE(1, 3);
        if (msgLen > MAX_CLIENT_HELLO) fail(`a ClientHello over ${MAX_CLIENT_HELLO} bytes`);
        if (hs.length >= 4 + msgLen) {
          this.#done = true;
          const hello = parseHello(hs.subarray(4, 4 + msgLen));
          return { hello, records: b.subarray(0, off), leftover: b.subarray(off) };
        }
      }
    }
    if (handshakeLen > MAX_CLIENT_HELLO || b.length > MAX_CLIENT_HELLO + 5 * 8 + 16384) {
      fail(`a ClientHello over ${MAX_CLIENT_HELLO} bytes`);
    }
    // The first byte alone proves garbage.
    if (b.length > 0 && b[0] !== RECORD_HANDSHAKE) fail('bytes that are not a TLS handshake');
    return undefined;
  }
}

/** A bounds-checked cursor over the hello body. */
class Cursor {
  #off = 0;
  constructor(readonly bytes: Buffer) {}
  get left(): number {
    return this.bytes.length - this.#off;
  }
  take(n: number, what: string): Buffer {
    if (n > this.left) fail(`a truncated ClientHello (${what})`);
    const out = this.bytes.subarray(this.#off, this.#off + n);
    this.#off += n;
    return out;
  }
  u8(what: string): number {
    return this.take(1, what)[0] as number;
  }
  u16(what: string): number {
    return this.take(2, what).readUInt16BE(0);
  }
}

function parseHello(body: Buffer): ClientHello {
  const c = new Cursor(body);
  c.take(2, 'legacy_version');
  c.take(32, 'random');
  c.take(c.u8('session_id length'), 'session_id');
  const suites = c.u16('cipher_suites length');
  if (suites === 0 || suites % 2 !== 0) fail('a ClientHello with an invalid cipher suite list');
  c.take(suites, 'cipher_suites');
  c.take(c.u8('compression_methods length'), 'compression_methods');
  let serverName: string | undefined;
  const alpn: string[] = [];
  if (c.left === 0) return { serverName, alpn }; // no extensions (old clients)
  const ext = new Cursor(c.take(c.u16('extensions length'), 'extensions'));
  const seen = new Set<number>();
  while (ext.left > 0) {
    const type = ext.u16('extension type');
    const data = new Cursor(ext.take(ext.u16('extension length'), 'extension data'));
    // RFC 8446 §4.2: no extension type may appear twice.
    if (seen.has(type)) fail('a ClientHello with a repeated extension');
    seen.add(type);
    if (type === EXT_SERVER_NAME) {
      const list = new Cursor(data.take(data.u16('server_name_list length'), 'server_name_list'));
      while (list.left > 0) {
        const nameType = list.u8('name_type');
        const name = list.take(list.u16('host_name length'), 'host_name');
        if (nameType === 0 && serverName === undefined) {
          const text = name.toString('latin1');
          if (!/^[A-Za-z0-9._-]{1,253}$/.test(text)) fail('a server name with invalid characters');
          serverName = text.toLowerCase();
        }
      }
    } else if (type === EXT_ALPN) {
      const list = new Cursor(data.take(data.u16('ALPN list length'), 'ALPN list'));
      while (list.left > 0) {
        const len = list.u8('protocol length');
        if (len === 0) fail('an empty ALPN protocol name');
        alpn.push(list.take(len, 'protocol').toString('latin1'));
      }
    }
  }
  return { serverName, alpn };
}

/** Whether `name` matches a passthrough pattern: exact, or `*.example.com` for exactly one more label. */
export function serverNameMatches(pattern: string, name: string): boolean {
  if (!pattern.startsWith('*.')) return pattern === name;
  const suffix = pattern.slice(1); // ".example.com"
  return name.endsWith(suffix) && name.length > suffix.length && !name.slice(0, -suffix.length).includes('.');
}
