/**
 * A DNS query parser and answer builder for the test DNS server (RFC 1035 §4.1), sans-I/O: bytes in, a question
 * or bytes out. Only what a stub resolver sends is read: the header and the first question; additional records
 * (an EDNS OPT, RFC 6891) are left unread. Compression pointers in a query's name are refused (stubs never send
 * them, and refusing them keeps the parser free of loops).
 */
import { RemoteProtocolError } from '../../src/errors.js';

export interface DnsQuestion {
  readonly id: number;
  /** The header's flags as sent (RD is copied into the answer). */
  readonly flags: number;
  /** The name asked, lowercased, without the root's trailing dot. */
  readonly name: string;
  readonly type: number;
  readonly qclass: number;
  /** Bytes of the question section, copied into the answer. */
  readonly questionBytes: Uint8Array;
}

export const DNS_TYPE_A = 1;
export const DNS_CLASS_IN = 1;
export const RCODE = { noError: 0, formErr: 1, nxDomain: 3, notImp: 4 } as const;
const HEADER = 12;

function bad(why: string): RemoteProtocolError {
  return new RemoteProtocolError(`malformed DNS query: ${why}`, { hop: 'dns' });
}

/** Parses one query message (a whole UDP datagram). Throws a WsviaError for anything else. */
export function parseDnsQuery(bytes: Uint8Array): DnsQuestion {
  if (bytes.length < HEADER) throw bad(`${bytes.length} bytes, shorter than the 12-byte header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const id = view.getUint16(0);
  const flags = view.getUint16(2);
  if (flags & 0x8000) throw bad('QR is set: this is a response');
  const qdcount = view.getUint16(4);
  if (qdcount !== 1) throw bad(`${qdcount} questions (a query asks one)`);
  const labels: string[] = [];
  let at = HEADER;
  // Bounded: each turn consumes at least one byte of a finite message.
  for (;;) {
    if (at >= bytes.length) throw bad('the name runs past the end');
    const len = bytes[at] as number;
    at += 1;
    if (len === 0) break;
    if (len > 63) throw bad(`label length byte ${len} (compression is not accepted in a query)`);
    if (at + len > bytes.length) throw bad('a label runs past the end');
    labels.push(
      Buffer.from(bytes.subarray(at, at + len))
        .toString('latin1')
        .toLowerCase(),
    );
    at += len;
    if (at - HEADER > 255) throw bad('the name is longer than 255 bytes');
  }
  if (at + 4 > bytes.length) throw bad('the question has no type and class');
  const type = view.getUint16(at);
  const qclass = view.getUint16(at + 2);
  at += 4;
  return { id, flags, name: labels.join('.'), type, qclass, questionBytes: bytes.slice(HEADER, at) };
}

/** The answer to `q`: the given IPv4 addresses as A records (TTL 60), or just `rcode` when there are none. */
export function buildDnsAnswer(q: DnsQuestion, rcode: number, addresses: readonly string[] = []): Uint8Array {
  const answers = addresses.map((a) => {
    const rr = Buffer.alloc(16);
    rr.writeUInt16BE(0xc00c, 0); // the name: a pointer to the question's (RFC 1035 §4.1.4)
    rr.writeUInt16BE(DNS_TYPE_A, 2);
    rr.writeUInt16BE(DNS_CLASS_IN, 4);
    rr.writeUInt32BE(60, 6);
    rr.writeUInt16BE(4, 10);
    a.split('.').forEach((o, i) => rr.writeUInt8(Number(o), 12 + i));
    return rr;
  });
  const header = Buffer.alloc(HEADER);
  header.writeUInt16BE(q.id, 0);
  // QR, the opcode and RD copied, AA (we are the authority), RA, then the rcode.
  header.writeUInt16BE(0x8000 | (q.flags & 0x7900) | 0x0400 | 0x0080 | (rcode & 0xf), 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(answers.length, 6);
  return Buffer.concat([header, q.questionBytes, ...answers]);
}
