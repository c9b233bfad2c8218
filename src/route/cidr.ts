/**
 * Strict IP address and CIDR matching on normalized bytes (STYLE trap 9: `0x7f.0.0.1` and `1e2.0.0.1` are not
 * addresses). IPv4-mapped IPv6 addresses (`::ffff:127.0.0.1`) match their IPv4 rules.
 */
import { isIP } from 'node:net';

/** The address as 4 or 16 bytes, or undefined when `text` is not a canonical IP literal. */
export function ipBytes(text: string): Uint8Array | undefined {
  const kind = isIP(text);
  if (kind === 4) {
    const parts = text.split('.');
    // node's isIP already rejects hex and octal forms; leading zeros are refused here too.
    if (parts.some((p) => p.length > 1 && p.startsWith('0'))) return undefined;
    return Uint8Array.from(parts.map(Number));
  }
  if (kind === 6) return ipv6Bytes(text.split('%')[0] as string);
  return undefined;
}

function ipv6Bytes(text: string): Uint8Array | undefined {
  let head = text;
  let v4: number[] = [];
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    const b = ipBytes(tail);
    if (!b || b.length !== 4) return undefined;
    v4 = [...b];
    head = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const [left, right] = head.split('::') as [string, string | undefined];
  const l = left === '' ? [] : left.split(':');
  const r = right === undefined ? [] : right === '' ? [] : right.split(':');
  const missing = 8 - l.length - r.length;
  if (right === undefined ? missing !== 0 : missing < 1) return undefined;
  const groups = [...l, ...Array<string>(right === undefined ? 0 : missing).fill('0'), ...r];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const n = parseInt(g, 16);
    out[i * 2] = n >> 8;
    out[i * 2 + 1] = n & 0xff;
  });
  if (v4.length === 4) out.set(v4, 12);
  return out;
}

/** `::ffff:a.b.c.d` as its 4 IPv4 bytes; other addresses unchanged. */
export function unmapIpv4(bytes: Uint8Array): Uint8Array {
  if (
    bytes.length === 16 &&
    bytes.subarray(0, 10).every((b) => b === 0) &&
    bytes[10] === 0xff &&
    bytes[11] === 0xff
  ) {
    return bytes.slice(12);
  }
  return bytes;
}

/**
 * The IPv4 address an IPv6 address carries, by the form that carries it: IPv4-mapped `::ffff:a.b.c.d`,
 * IPv4-compatible `::a.b.c.d` (RFC 4291 §2.5.5.1, deprecated but still parsed), IPv4-translated
 * `::ffff:0:a.b.c.d` (RFC 2765), the NAT64 well-known prefix `64:ff9b::a.b.c.d` (RFC 6052), 6to4 `2002:AABB:CCDD::`
 * (RFC 3056, the IPv4 in bytes 2-5) and Teredo `2001:0::` (RFC 4380, the client's IPv4 inverted in bytes 12-15).
 * A translator, a tunnel or the kernel delivers such an address to that IPv4, so a destination check classifies it
 * by it (STYLE.md trap 20). Undefined for an IPv4 address and for IPv6 that carries none (`::` and `::1` included).
 */
export function embeddedIpv4(bytes: Uint8Array): Uint8Array | undefined {
  if (bytes.length !== 16) return undefined;
  const b = (i: number): number => bytes[i] as number;
  const zero = (from: number, to: number): boolean => bytes.subarray(from, to).every((x) => x === 0);
  const last4 = bytes.slice(12);
  if (zero(0, 10) && b(10) === 0xff && b(11) === 0xff) return last4; // ::ffff:0:0/96
  if (zero(0, 8) && b(8) === 0xff && b(9) === 0xff && zero(10, 12)) return last4; // ::ffff:0:0:0/96
  // ::/96, less :: and ::1, which are addresses of their own (unspecified, loopback).
  if (zero(0, 12) && !(zero(12, 15) && b(15) <= 1)) return last4;
  if (b(0) === 0x00 && b(1) === 0x64 && b(2) === 0xff && b(3) === 0x9b && zero(4, 12)) return last4; // 64:ff9b::/96
  if (b(0) === 0x20 && b(1) === 0x02) return bytes.slice(2, 6); // 2002::/16
  if (b(0) === 0x20 && b(1) === 0x01 && b(2) === 0 && b(3) === 0) return last4.map((x) => x ^ 0xff); // 2001::/32
  return undefined;
}

export interface Cidr {
  readonly bytes: Uint8Array;
  readonly prefix: number;
  readonly text: string;
}

/** Parses `10.0.0.0/8`, `fe80::/10`, or a bare address (a /32 or /128). */
export function parseCidr(text: string): Cidr | undefined {
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  const bytes = ipBytes(addr.startsWith('[') && addr.endsWith(']') ? addr.slice(1, -1) : addr);
  if (!bytes) return undefined;
  const max = bytes.length * 8;
  const prefixText = slash < 0 ? String(max) : text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  if (prefix > max) return undefined;
  return {
    bytes: unmapIpv4(bytes),
    prefix: bytes.length === 16 && unmapIpv4(bytes).length === 4 ? Math.max(0, prefix - 96) : prefix,
    text,
  };
}

export function cidrContains(cidr: Cidr, address: Uint8Array): boolean {
  const a = unmapIpv4(address);
  if (a.length !== cidr.bytes.length) return false;
  let bits = cidr.prefix;
  for (let i = 0; i < a.length && bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if (((a[i] as number) & mask) !== ((cidr.bytes[i] as number) & mask)) return false;
  }
  return true;
}
