/**
 * NTLM (NTLMv2 responses) for proxies, per [MS-NLMP]: the NEGOTIATE message (§2.2.1.1), the CHALLENGE message
 * parsed with every length and offset checked against the buffer (§2.2.1.2), and the AUTHENTICATE message with
 * NTLMv2 and LMv2 responses (§2.2.1.3, §3.3.2). NTLM authenticates a connection, not a request: the three legs
 * must run on one connection, which the CONNECT driver keeps. MD4 (for the NT hash) is gone from OpenSSL 3, so
 * it comes from hash-wasm, a maintained implementation; HMAC-MD5 is Node's.
 */
import crypto from 'node:crypto';
import { md4 } from 'hash-wasm';
import { RemoteProtocolError } from '../errors.js';
import type { Credentials } from './credentials.js';

const SIGNATURE = Buffer.from('NTLMSSP\0', 'latin1');

/** [MS-NLMP] §2.2.2.5 flags wsvia asks for. */
const FLAGS = {
  UNICODE: 0x00000001,
  OEM: 0x00000002,
  REQUEST_TARGET: 0x00000004,
  NTLM: 0x00000200,
  ALWAYS_SIGN: 0x00008000,
  EXTENDED_SESSIONSECURITY: 0x00080000,
  TARGET_INFO: 0x00800000,
  N128: 0x20000000,
  N56: 0x80000000,
} as const;

const NEGOTIATE_FLAGS =
  (FLAGS.UNICODE |
    FLAGS.OEM |
    FLAGS.REQUEST_TARGET |
    FLAGS.NTLM |
    FLAGS.ALWAYS_SIGN |
    FLAGS.EXTENDED_SESSIONSECURITY |
    FLAGS.N128 |
    FLAGS.N56) >>>
  0;

export interface NtlmChallenge {
  readonly flags: number;
  readonly serverChallenge: Uint8Array;
  readonly targetName: string;
  /** The AV pairs, as sent: they go into the NTLMv2 response unchanged. */
  readonly targetInfo: Uint8Array;
}

/** `NTLM <base64>` of the NEGOTIATE message: the first leg. */
export function ntlmNegotiate(): string {
  const msg = Buffer.alloc(32);
  SIGNATURE.copy(msg, 0);
  msg.writeUInt32LE(1, 8);
  msg.writeUInt32LE(NEGOTIATE_FLAGS, 12);
  // Domain and workstation fields empty (length 0, offset 32): wsvia names neither.
  msg.writeUInt32LE(32, 20);
  msg.writeUInt32LE(32, 28);
  return `NTLM ${msg.toString('base64')}`;
}

function bad(peer: string, why: string): RemoteProtocolError {
  return new RemoteProtocolError(`${peer} sent an NTLM challenge that does not parse: ${why}`, {
    hop: 'proxy',
    proxy: peer,
    statusHint: 502,
  });
}

function field(buf: Buffer, at: number, peer: string, name: string): Buffer {
  const len = buf.readUInt16LE(at);
  const offset = buf.readUInt32LE(at + 4);
  if (offset > buf.length || len > buf.length - offset) {
    throw bad(peer, `${name} (${len} bytes at ${offset}) lies outside the ${buf.length}-byte message`);
  }
  return buf.subarray(offset, offset + len);
}

/** Parses the CHALLENGE message from a `Proxy-Authenticate: NTLM <token>` value. Throws PROTOCOL_ERROR. */
export function parseNtlmChallenge(token68: string, peer = 'the proxy'): NtlmChallenge {
  if (!/^[A-Za-z0-9+/]+=*$/.test(token68)) throw bad(peer, 'the token is not base64');
  const buf = Buffer.from(token68, 'base64');
  if (buf.length < 32) throw bad(peer, `${buf.length} bytes, shorter than the 32-byte header`);
  if (!buf.subarray(0, 8).equals(SIGNATURE)) throw bad(peer, 'no NTLMSSP signature');
  const type = buf.readUInt32LE(8);
  if (type !== 2) throw bad(peer, `message type ${type}, expected 2 (CHALLENGE)`);
  const flags = buf.readUInt32LE(20);
  // The target name is only shown; like curl, a name field that points nowhere is ignored (squid's
  // ntlm_fake_auth sends one). The target info goes into the response, so it must be sound when announced.
  let name: Buffer;
  try {
    name = field(buf, 12, peer, 'the target name');
  } catch {
    name = Buffer.alloc(0);
  }
  const hasInfo = (flags & FLAGS.TARGET_INFO) !== 0;
  if (hasInfo && buf.length < 48)
    throw bad(peer, 'target info announced but the message has no field for it');
  const targetInfo = hasInfo ? field(buf, 40, peer, 'the target info') : Buffer.alloc(0);
  return {
    flags,
    serverChallenge: Uint8Array.from(buf.subarray(24, 32)),
    targetName: flags & FLAGS.UNICODE ? name.toString('utf16le') : name.toString('latin1'),
    targetInfo: Uint8Array.from(targetInfo),
  };
}

/** NTOWFv1: MD4 of the UTF-16LE password ([MS-NLMP] §3.3.1). */
export async function ntHash(password: string): Promise<Buffer> {
  return Buffer.from(await md4(Buffer.from(password, 'utf16le')), 'hex');
}

function hmacMd5(key: Uint8Array, ...data: Uint8Array[]): Buffer {
  const h = crypto.createHmac('md5', key);
  for (const d of data) h.update(d);
  return h.digest();
}

/** `DOMAIN\user` or `user@domain` as [user, domain]; a bare name has an empty domain. */
export function splitNtlmUser(name: string): [string, string] {
  const slash = name.indexOf('\\');
  if (slash >= 0) return [name.slice(slash + 1), name.slice(0, slash)];
  const at = name.lastIndexOf('@');
  if (at > 0) return [name.slice(0, at), name.slice(at + 1)];
  return [name, ''];
}

export interface NtlmV2Inputs {
  readonly user: string;
  readonly domain: string;
  readonly ntHash: Uint8Array;
  readonly serverChallenge: Uint8Array;
  readonly clientChallenge: Uint8Array;
  /** FILETIME: 100 ns ticks since 1601-01-01. */
  readonly timestamp: bigint;
  readonly targetInfo: Uint8Array;
}

/** The NTLMv2 and LMv2 responses ([MS-NLMP] §3.3.2), and the response key, for known-answer tests. */
export function ntlmV2Responses(i: NtlmV2Inputs): { key: Buffer; nt: Buffer; lm: Buffer } {
  const key = hmacMd5(i.ntHash, Buffer.from(i.user.toUpperCase() + i.domain, 'utf16le'));
  const time = Buffer.alloc(8);
  time.writeBigUInt64LE(i.timestamp);
  const temp = Buffer.concat([
    Buffer.from([1, 1, 0, 0, 0, 0, 0, 0]),
    time,
    i.clientChallenge,
    Buffer.alloc(4),
    i.targetInfo,
    Buffer.alloc(4),
  ]);
  const proof = hmacMd5(key, i.serverChallenge, temp);
  const lm = Buffer.concat([hmacMd5(key, i.serverChallenge, i.clientChallenge), i.clientChallenge]);
  return { key, nt: Buffer.concat([proof, temp]), lm };
}

/** Milliseconds since the Unix epoch as a FILETIME. */
export function fileTime(ms: number): bigint {
  return (BigInt(Math.floor(ms)) + 11_644_473_600_000n) * 10_000n;
}

/**
 * `NTLM <base64>` of the AUTHENTICATE message answering `challenge`: the third leg. `random` and `now` are
 * given by the caller (crypto.randomBytes and Date.now in use; fixed values in known-answer tests).
 */
export async function ntlmAuthenticate(
  challenge: NtlmChallenge,
  credentials: Credentials,
  env: {
    readonly random: (n: number) => Uint8Array;
    readonly now: () => number;
    readonly workstation?: string;
  },
): Promise<string> {
  const [user, domain] = splitNtlmUser(credentials.user);
  const { nt, lm } = ntlmV2Responses({
    user,
    domain,
    ntHash: await ntHash(credentials.reveal()),
    serverChallenge: challenge.serverChallenge,
    clientChallenge: env.random(8),
    timestamp: fileTime(env.now()),
    targetInfo: challenge.targetInfo,
  });
  const unicode = (challenge.flags & FLAGS.UNICODE) !== 0;
  const enc = (s: string): Buffer => Buffer.from(s, unicode ? 'utf16le' : 'latin1');
  const payload: Buffer[] = [lm, nt, enc(domain), enc(user), enc(env.workstation ?? ''), Buffer.alloc(0)];
  const header = Buffer.alloc(64);
  SIGNATURE.copy(header, 0);
  header.writeUInt32LE(3, 8);
  let offset = 64;
  payload.forEach((p, k) => {
    const at = 12 + k * 8;
    header.writeUInt16LE(p.length, at);
    header.writeUInt16LE(p.length, at + 2);
    header.writeUInt32LE(offset, at + 4);
    offset += p.length;
  });
  const flags = (NEGOTIATE_FLAGS & ~(unicode ? FLAGS.OEM : FLAGS.UNICODE)) >>> 0;
  header.writeUInt32LE(flags, 60);
  return `NTLM ${Buffer.concat([header, ...payload]).toString('base64')}`;
}
