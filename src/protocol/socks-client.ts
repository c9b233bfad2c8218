/**
 * The client side of a SOCKS handshake, without sockets: SOCKS4 and SOCKS4a (the 1992 protocol note and its 4a
 * extension), SOCKS5 (RFC 1928) with no authentication or username/password (RFC 1929). Bytes in, bytes to send
 * and one result out; the bytes after the proxy's final reply (the destination speaking first) are the result's
 * leftover, never dropped. Refusals are classified by their reply code ({@link ./socks-reply.ts}).
 */
import net from 'node:net';
import type { Authority } from './authority.js';
import { socks4Refusal, socks5Refusal, socksAuthRefusal, type SocksRefusal } from './socks-reply.js';

export interface SocksRequest {
  readonly version: 4 | 5;
  /** An IP address, or a name the proxy resolves (SOCKS4a, SOCKS5 domain name). */
  readonly host: string;
  readonly port: number;
  /** SOCKS4 user id; SOCKS5 user name (with `password`, RFC 1929). */
  readonly user?: string;
  readonly password?: string;
}

export type SocksResult =
  | { readonly kind: 'granted'; readonly bound: Authority | undefined; readonly leftover: Uint8Array }
  | { readonly kind: 'refused'; readonly refusal: SocksRefusal }
  /** The proxy answered something that is not this protocol. */
  | { readonly kind: 'malformed'; readonly why: string };

type Phase = 'method' | 'password' | 'reply' | 'done';

const EMPTY = Buffer.alloc(0);

/** RFC 4291 §2.2 text to its 16 bytes (with `::` and a trailing dotted IPv4). */
function ipv6Bytes(text: string): Buffer {
  let t = text;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(t);
  if (v4) {
    const [a, b, c, d] = (v4[1] as string).split('.').map(Number) as [number, number, number, number];
    t = `${t.slice(0, -(v4[1] as string).length)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = t.includes('::') ? (t.split('::') as [string, string]) : [t, undefined];
  const h = head === '' ? [] : head.split(':');
  const tl = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - tl.length).fill('0'), ...tl];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

function portBytes(port: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(port);
  return b;
}

function ipv4Bytes(text: string): Buffer {
  return Buffer.from(text.split('.').map(Number));
}

export class SocksHandshake {
  readonly #r: SocksRequest;
  #phase: Phase;
  #buf: Buffer = EMPTY;
  #out: Buffer[] = [];

  constructor(request: SocksRequest) {
    if (request.port < 1 || request.port > 65535 || !Number.isInteger(request.port))
      throw new RangeError(`invalid port ${request.port}`);
    this.#r = request;
    if (request.version === 4) {
      this.#out.push(this.#socks4Request());
      this.#phase = 'reply';
    } else {
      // RFC 1928 §3: offer no-authentication, and username/password when there is a user.
      const methods = request.user === undefined ? [0x00] : [0x00, 0x02];
      this.#out.push(Buffer.from([0x05, methods.length, ...methods]));
      this.#phase = 'method';
    }
  }

  /** Bytes to write to the proxy now (drains). */
  dataToSend(): Buffer[] {
    return this.#out.splice(0);
  }

  /** Feeds bytes from the proxy; returns the result once the handshake ended (later calls are an error). */
  receiveData(chunk: Uint8Array): SocksResult | undefined {
    if (this.#phase === 'done') throw new Error('the SOCKS handshake is over');
    this.#buf = this.#buf.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.#buf, chunk]);
    for (;;) {
      const before: Phase = this.#phase;
      const r = this.#step();
      if (r) {
        this.#phase = 'done';
        return r;
      }
      if (this.#phase === before) return undefined;
    }
  }

  #step(): SocksResult | undefined {
    switch (this.#phase) {
      case 'method':
        return this.#method();
      case 'password':
        return this.#password();
      case 'reply':
        return this.#r.version === 4 ? this.#socks4Reply() : this.#socks5Reply();
      case 'done':
        return undefined;
    }
  }

  #take(n: number): Buffer {
    const b = this.#buf.subarray(0, n);
    this.#buf = this.#buf.subarray(n);
    return b;
  }

  #socks4Request(): Buffer {
    const { host, port, user } = this.#r;
    const id = Buffer.concat([Buffer.from(user ?? '', 'utf8'), Buffer.from([0])]);
    const head = Buffer.concat([Buffer.from([0x04, 0x01]), portBytes(port)]);
    if (net.isIPv4(host)) return Buffer.concat([head, ipv4Bytes(host), id]);
    if (net.isIPv6(host)) throw new RangeError('SOCKS4 carries IPv4 addresses only');
    // SOCKS4a: address 0.0.0.x (x non-zero) means "the name follows the user id".
    return Buffer.concat([head, Buffer.from([0, 0, 0, 1]), id, Buffer.from(host, 'utf8'), Buffer.from([0])]);
  }

  #socks5Request(): Buffer {
    const { host, port } = this.#r;
    let address: Buffer;
    if (net.isIPv4(host)) address = Buffer.concat([Buffer.from([0x01]), ipv4Bytes(host)]);
    else if (net.isIPv6(host)) address = Buffer.concat([Buffer.from([0x04]), ipv6Bytes(host)]);
    else {
      const name = Buffer.from(host, 'utf8');
      if (name.length > 255) throw new RangeError('a SOCKS5 host name is at most 255 bytes');
      address = Buffer.concat([Buffer.from([0x03, name.length]), name]);
    }
    return Buffer.concat([Buffer.from([0x05, 0x01, 0x00]), address, portBytes(port)]);
  }

  #method(): SocksResult | undefined {
    if (this.#buf.length < 2) return undefined;
    const [version, method] = this.#take(2);
    if (version !== 0x05) return { kind: 'malformed', why: `the method reply has version ${version}, not 5` };
    if (method === 0xff)
      return { kind: 'refused', refusal: socksAuthRefusal('method', this.#r.user !== undefined) };
    if (method === 0x00) {
      this.#out.push(this.#socks5Request());
      this.#phase = 'reply';
      return undefined;
    }
    if (method === 0x02 && this.#r.user !== undefined) {
      // RFC 1929 §2: version 1, then the user name and the password, each with its length.
      const user = Buffer.from(this.#r.user, 'utf8');
      const pass = Buffer.from(this.#r.password ?? '', 'utf8');
      if (user.length > 255 || pass.length > 255)
        throw new RangeError('a SOCKS5 user name and password are at most 255 bytes each');
      this.#out.push(
        Buffer.concat([Buffer.from([0x01, user.length]), user, Buffer.from([pass.length]), pass]),
      );
      this.#phase = 'password';
      return undefined;
    }
    return {
      kind: 'malformed',
      why: `the proxy chose authentication method ${method}, which was not offered`,
    };
  }

  #password(): SocksResult | undefined {
    if (this.#buf.length < 2) return undefined;
    const [, status] = this.#take(2);
    if (status !== 0x00) return { kind: 'refused', refusal: socksAuthRefusal('password', true) };
    this.#out.push(this.#socks5Request());
    this.#phase = 'reply';
    return undefined;
  }

  #socks4Reply(): SocksResult | undefined {
    if (this.#buf.length < 8) return undefined;
    const reply = this.#take(8);
    const [version, code] = reply as unknown as [number, number];
    // The note says the reply's version is 0; some servers answer 4.
    if (version !== 0x00 && version !== 0x04)
      return { kind: 'malformed', why: `the reply has version ${version}, not 0 (SOCKS4)` };
    if (code !== 90) return { kind: 'refused', refusal: socks4Refusal(code) };
    return { kind: 'granted', bound: undefined, leftover: this.#take(this.#buf.length) };
  }

  #socks5Reply(): SocksResult | undefined {
    if (this.#buf.length < 5) return undefined;
    const [version, code, , atyp, first] = this.#buf as unknown as [number, number, number, number, number];
    if (version !== 0x05) return { kind: 'malformed', why: `the reply has version ${version}, not 5` };
    const addressLength = atyp === 0x01 ? 4 : atyp === 0x04 ? 16 : atyp === 0x03 ? 1 + first : -1;
    if (addressLength < 0) return { kind: 'malformed', why: `the reply has address type ${atyp}` };
    const total = 4 + addressLength + 2;
    if (this.#buf.length < total) return undefined;
    const reply = this.#take(total);
    if (code !== 0x00) return { kind: 'refused', refusal: socks5Refusal(code) };
    const a = reply.subarray(4, 4 + addressLength);
    const host =
      atyp === 0x01
        ? [...a].join('.')
        : atyp === 0x04
          ? Array.from({ length: 8 }, (_, i) => a.readUInt16BE(i * 2).toString(16)).join(':')
          : a.subarray(1).toString('utf8');
    const bound = { host, port: reply.readUInt16BE(4 + addressLength) };
    return { kind: 'granted', bound, leftover: this.#take(this.#buf.length) };
  }
}
