/**
 * The PROXY protocol (HAProxy's spec, versions 1 and 2), sans-I/O: a load balancer in front announces the real
 * client's address before the first byte of the connection. The reader takes bytes, returns the header and the
 * bytes after it (the client's own, never dropped), and rejects anything else at once.
 */
import { isIP } from 'node:net';
import { RemoteProtocolError } from '../errors.js';

export interface ProxyAddress {
  readonly address: string;
  readonly port: number;
}

export interface ProxyHeader {
  readonly version: 1 | 2;
  /** `local`: a health check from the balancer itself; use the connection's own addresses. */
  readonly command: 'proxy' | 'local';
  readonly family: 'tcp4' | 'tcp6' | 'unknown';
  readonly source?: ProxyAddress;
  readonly destination?: ProxyAddress;
}

const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_PREFIX = Buffer.from('PROXY ');
/** Spec: a v1 line is at most 107 bytes, CRLF included. */
const V1_MAX = 107;
/** v2 headers carry TLVs; bound them well above what balancers send. */
const V2_MAX_BODY = 2048;

function fail(what: string): never {
  throw new RemoteProtocolError(`the load balancer sent an invalid PROXY protocol header (${what})`, {
    hop: 'server',
    hint: 'is --proxy-protocol on, and does the balancer in front send PROXY protocol v1 or v2?',
  });
}

export class ProxyProtocolReader {
  #buf = Buffer.alloc(0);
  #done = false;

  /** Feed bytes; returns the header and what followed once complete. Throws RemoteProtocolError on bad input. */
  receive(chunk: Uint8Array): { header: ProxyHeader; leftover: Buffer } | undefined {
    if (this.#done) throw new Error('ProxyProtocolReader: header already read');
    // Bounded: the buffer never grows past the largest header.
    this.#buf = this.#buf.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.#buf, chunk]);
    const b = this.#buf;
    const n = Math.min(b.length, V2_SIGNATURE.length);
    const maybeV2 = b.subarray(0, n).equals(V2_SIGNATURE.subarray(0, n));
    const maybeV1 = b
      .subarray(0, Math.min(b.length, V1_PREFIX.length))
      .equals(V1_PREFIX.subarray(0, Math.min(b.length, V1_PREFIX.length)));
    if (!maybeV1 && !maybeV2) fail('no PROXY signature');
    const r = maybeV2 ? this.#v2(b) : this.#v1(b);
    if (r) this.#done = true;
    return r;
  }

  #v1(b: Buffer): { header: ProxyHeader; leftover: Buffer } | undefined {
    const lf = b.indexOf(0x0a);
    if (lf < 0) {
      if (b.length >= V1_MAX) fail('v1 line too long');
      return undefined;
    }
    if (lf + 1 > V1_MAX || b[lf - 1] !== 0x0d) fail('v1 line not ended by CRLF within 107 bytes');
    const line = b.subarray(0, lf - 1).toString('latin1');
    const leftover = b.subarray(lf + 1);
    const parts = line.split(' ');
    if (parts[1] === 'UNKNOWN')
      return { header: { version: 1, command: 'proxy', family: 'unknown' }, leftover };
    if (parts.length !== 6) fail('v1 line needs 6 fields');
    const [, proto, src, dst, sport, dport] = parts as [string, string, string, string, string, string];
    const want = proto === 'TCP4' ? 4 : proto === 'TCP6' ? 6 : fail(`unknown v1 protocol ${proto}`);
    if (isIP(src) !== want || isIP(dst) !== want) fail('v1 addresses do not match the protocol');
    const port = (p: string): number => {
      if (!/^(0|[1-9]\d{0,4})$/.test(p) || Number(p) > 65535) fail('v1 bad port');
      return Number(p);
    };
    return {
      header: {
        version: 1,
        command: 'proxy',
        family: want === 4 ? 'tcp4' : 'tcp6',
        source: { address: src, port: port(sport) },
        destination: { address: dst, port: port(dport) },
      },
      leftover,
    };
  }

  #v2(b: Buffer): { header: ProxyHeader; leftover: Buffer } | undefined {
    if (b.length < 16) return undefined;
    const verCmd = b[12] as number;
    if (verCmd >> 4 !== 2) fail('v2 version is not 2');
    const cmd = verCmd & 0x0f;
    if (cmd > 1) fail('v2 unknown command');
    const fam = b[13] as number;
    const len = b.readUInt16BE(14);
    if (len > V2_MAX_BODY) fail('v2 header too long');
    if (b.length < 16 + len) return undefined;
    const body = b.subarray(16, 16 + len);
    const leftover = b.subarray(16 + len);
    if (cmd === 0) return { header: { version: 2, command: 'local', family: 'unknown' }, leftover };
    if (fam === 0x11) {
      if (len < 12) fail('v2 TCP4 address block too short');
      const ip = (o: number): string => [...body.subarray(o, o + 4)].join('.');
      return {
        header: {
          version: 2,
          command: 'proxy',
          family: 'tcp4',
          source: { address: ip(0), port: body.readUInt16BE(8) },
          destination: { address: ip(4), port: body.readUInt16BE(10) },
        },
        leftover,
      };
    }
    if (fam === 0x21) {
      if (len < 36) fail('v2 TCP6 address block too short');
      const ip = (o: number): string => {
        const groups: string[] = [];
        for (let i = 0; i < 16; i += 2) groups.push(body.readUInt16BE(o + i).toString(16));
        return compressIpv6(groups);
      };
      return {
        header: {
          version: 2,
          command: 'proxy',
          family: 'tcp6',
          source: { address: ip(0), port: body.readUInt16BE(32) },
          destination: { address: ip(16), port: body.readUInt16BE(34) },
        },
        leftover,
      };
    }
    // UNSPEC, UDP or unix sockets: keep the connection's own addresses, as the spec allows.
    return { header: { version: 2, command: 'proxy', family: 'unknown' }, leftover };
  }
}

function compressIpv6(groups: string[]): string {
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

/** A v1 header line, for tests and for passing the client's address on to a backend. */
export function formatProxyV1(source: ProxyAddress, destination: ProxyAddress): Buffer {
  const fam = isIP(source.address) === 6 ? 'TCP6' : 'TCP4';
  return Buffer.from(
    `PROXY ${fam} ${source.address} ${destination.address} ${source.port} ${destination.port}\r\n`,
    'latin1',
  );
}

/** A v2 PROXY header for TCP over IPv4 or IPv6. */
export function formatProxyV2(source: ProxyAddress, destination: ProxyAddress): Buffer {
  const v6 = isIP(source.address) === 6;
  const addrLen = v6 ? 16 : 4;
  const body = Buffer.alloc(addrLen * 2 + 4);
  const put = (addr: string, off: number): void => {
    if (!v6) addr.split('.').forEach((o, i) => body.writeUInt8(Number(o), off + i));
    else {
      const [l = '', r] = addr.split('::');
      const left = l === '' ? [] : l.split(':');
      const right = r === undefined || r === '' ? [] : r.split(':');
      const groups = [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
      groups.forEach((g, i) => body.writeUInt16BE(parseInt(g, 16), off + i * 2));
    }
  };
  put(source.address, 0);
  put(destination.address, addrLen);
  body.writeUInt16BE(source.port, addrLen * 2);
  body.writeUInt16BE(destination.port, addrLen * 2 + 2);
  const head = Buffer.from([0x21, v6 ? 0x21 : 0x11, 0, 0]);
  head.writeUInt16BE(body.length, 2);
  return Buffer.concat([V2_SIGNATURE, head, body]);
}
