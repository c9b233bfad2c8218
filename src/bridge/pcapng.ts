/**
 * A recorded session (recorder.ts) as a pcapng file Wireshark and tshark open (`wsvia bridge --replay FILE
 * --pcap OUT.pcapng`). The bytes are those the bridge carried, laid out as one synthetic TCP connection between the
 * client and the target over raw IPv4 (LINKTYPE_RAW): a three-way handshake, each recorded chunk as segments in its
 * direction at its recorded time, and a FIN from the side that closed first. Addresses that are not IPv4 (IPv6,
 * reverse tunnels) become 192.0.2.1 / 192.0.2.2 (TEST-NET-1, RFC 5737). Pure: bytes in, bytes out.
 *
 * Format: pcapng (draft-ietf-opsawg-pcapng): a Section Header Block, one Interface Description Block, then one
 * Enhanced Packet Block per packet, little-endian, timestamps in microseconds (the default if_tsresol).
 */
import { isIPv4 } from 'node:net';
import type { RecordedChunk } from './replay.js';

const LINKTYPE_RAW = 101;
/** IPv4 total length is 16 bits: 65535 minus 20 bytes of IP and 20 of TCP. */
const MAX_SEGMENT = 65535 - 40;

function block(type: number, body: Buffer): Buffer {
  const padded = Buffer.alloc(Math.ceil(body.length / 4) * 4);
  body.copy(padded);
  const total = 12 + padded.length;
  const out = Buffer.alloc(total);
  out.writeUInt32LE(type, 0);
  out.writeUInt32LE(total, 4);
  padded.copy(out, 8);
  out.writeUInt32LE(total, total - 4);
  return out;
}

function sectionHeader(): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt32LE(0x1a2b3c4d, 0); // byte-order magic
  b.writeUInt16LE(1, 4);
  b.writeUInt16LE(0, 6);
  b.writeBigInt64LE(-1n, 8); // section length unknown
  return block(0x0a0d0d0a, b);
}

function interfaceDescription(): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt16LE(LINKTYPE_RAW, 0);
  b.writeUInt32LE(0, 4); // snaplen: no limit
  return block(1, b);
}

function enhancedPacket(micros: bigint, packet: Buffer): Buffer {
  const head = Buffer.alloc(20);
  head.writeUInt32LE(0, 0); // interface 0
  head.writeUInt32LE(Number(micros >> 32n), 4);
  head.writeUInt32LE(Number(micros & 0xffffffffn), 8);
  head.writeUInt32LE(packet.length, 12);
  head.writeUInt32LE(packet.length, 16);
  return block(6, Buffer.concat([head, packet]));
}

/** RFC 1071 ones' complement sum. */
function checksum(...parts: Buffer[]): number {
  let sum = 0;
  for (const p of parts) {
    for (let i = 0; i + 1 < p.length; i += 2) sum += p.readUInt16BE(i);
    if (p.length % 2 === 1) sum += (p[p.length - 1] as number) << 8;
  }
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

interface Endpoint {
  readonly ip: Buffer;
  readonly port: number;
}

const FLAGS = { fin: 0x01, syn: 0x02, psh: 0x08, ack: 0x10 } as const;

function segment(
  src: Endpoint,
  dst: Endpoint,
  seq: number,
  ack: number,
  flags: number,
  payload: Buffer,
): Buffer {
  const tcp = Buffer.alloc(20);
  tcp.writeUInt16BE(src.port, 0);
  tcp.writeUInt16BE(dst.port, 2);
  tcp.writeUInt32BE(seq >>> 0, 4);
  tcp.writeUInt32BE(ack >>> 0, 8);
  tcp[12] = 5 << 4; // data offset: 5 words
  tcp[13] = flags;
  tcp.writeUInt16BE(65535, 14); // window
  const pseudo = Buffer.alloc(12);
  src.ip.copy(pseudo, 0);
  dst.ip.copy(pseudo, 4);
  pseudo[9] = 6;
  pseudo.writeUInt16BE(20 + payload.length, 10);
  tcp.writeUInt16BE(checksum(pseudo, tcp, payload), 16);
  const ip = Buffer.alloc(20);
  ip[0] = 0x45;
  ip.writeUInt16BE(20 + 20 + payload.length, 2);
  ip[8] = 64; // TTL
  ip[9] = 6; // TCP
  src.ip.copy(ip, 12);
  dst.ip.copy(ip, 16);
  ip.writeUInt16BE(checksum(ip), 10);
  return Buffer.concat([ip, tcp, payload]);
}

function endpoint(text: unknown, fallback: string, fallbackPort: number): Endpoint {
  const s = typeof text === 'string' ? text : '';
  const colon = s.lastIndexOf(':');
  const host = colon > 0 ? s.slice(0, colon) : '';
  const port = Number(s.slice(colon + 1));
  const ok = isIPv4(host) && Number.isInteger(port) && port > 0 && port < 65536;
  const ip = (ok ? host : fallback).split('.').map(Number);
  return { ip: Buffer.from(ip), port: ok ? port : fallbackPort };
}

export interface PcapSession {
  readonly header: Readonly<Record<string, unknown>>;
  readonly chunks: readonly RecordedChunk[];
  readonly end?: Readonly<Record<string, unknown>>;
}

/** The session as pcapng bytes. */
export function sessionToPcapng(session: PcapSession): Buffer {
  const client = endpoint(session.header['client'], '192.0.2.1', 40000);
  const target = endpoint(session.header['target'], '192.0.2.2', 1);
  const start = session.header['start'];
  const startMs = typeof start === 'string' ? Date.parse(start) : NaN;
  const epochMicros = BigInt(Math.round((Number.isFinite(startMs) ? startMs : 0) * 1000));
  const at = (ms: number): bigint => epochMicros + BigInt(Math.round(ms * 1000));
  const seq = { up: 1000, down: 5000 };
  const out: Buffer[] = [sectionHeader(), interfaceDescription()];
  const push = (ms: number, dir: 'up' | 'down', flags: number, payload: Buffer = Buffer.alloc(0)): void => {
    const [src, dst] = dir === 'up' ? [client, target] : [target, client];
    const mine = dir === 'up' ? seq.up : seq.down;
    const theirs = dir === 'up' ? seq.down : seq.up;
    out.push(enhancedPacket(at(ms), segment(src, dst, mine, theirs, flags, payload)));
    const advance = payload.length + (flags & (FLAGS.syn | FLAGS.fin) ? 1 : 0);
    if (dir === 'up') seq.up += advance;
    else seq.down += advance;
  };
  // The handshake, as the bridge's TCP connection made it (before the first byte).
  push(0, 'up', FLAGS.syn);
  seq.down -= 0;
  out.push(
    enhancedPacket(at(0), segment(target, client, seq.down, seq.up, FLAGS.syn | FLAGS.ack, Buffer.alloc(0))),
  );
  seq.down += 1;
  push(0, 'up', FLAGS.ack);
  for (const c of session.chunks) {
    for (let i = 0; i < c.data.length; i += MAX_SEGMENT)
      push(c.t, c.dir, FLAGS.psh | FLAGS.ack, c.data.subarray(i, i + MAX_SEGMENT));
  }
  if (session.end) {
    const t = Number(session.end['t']) || 0;
    const first = session.end['closed_by'] === 'target' ? 'down' : 'up';
    push(t, first, FLAGS.fin | FLAGS.ack);
    push(t, first === 'up' ? 'down' : 'up', FLAGS.fin | FLAGS.ack);
  }
  return Buffer.concat(out);
}
