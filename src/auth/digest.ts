/**
 * HTTP Digest access authentication (RFC 7616) for a client: MD5 and SHA-256, with and without `-sess`, qop=auth
 * (and the RFC 2069 form when the server offers no qop). `userhash` is honoured.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Challenge } from './challenge.js';
import type { Credentials } from './credentials.js';

const ALGORITHMS = { md5: 'md5', 'sha-256': 'sha256', 'sha-512-256': 'sha512-256' } as const;
type DigestAlgorithm = keyof typeof ALGORITHMS;

function parseAlgorithm(value: string | undefined): { algo: DigestAlgorithm; sess: boolean } | undefined {
  const v = (value ?? 'MD5').toLowerCase();
  const sess = v.endsWith('-sess');
  const base = sess ? v.slice(0, -5) : v;
  return base in ALGORITHMS ? { algo: base as DigestAlgorithm, sess } : undefined;
}

/** Whether wsvia can answer this Digest challenge (a known algorithm, and qop absent or including `auth`). */
export function canAnswerDigest(challenge: Challenge): boolean {
  if (challenge.params.nonce === undefined || challenge.params.realm === undefined) return false;
  const alg = parseAlgorithm(challenge.params.algorithm);
  if (!alg) return false;
  const qop = challenge.params.qop;
  // A -sess key hashes in the client nonce, but without qop the cnonce may not be sent (RFC 2617 §3.2.2): the
  // server could never check the answer, so such a challenge is not answerable.
  if (qop === undefined) return !alg.sess;
  return qop.split(',').some((q) => q.trim().toLowerCase() === 'auth');
}

/** Relative strength among Digest challenges: SHA-256 over MD5. */
export function digestStrength(challenge: Challenge): number {
  const a = parseAlgorithm(challenge.params.algorithm);
  return a === undefined ? 0 : a.algo === 'md5' ? 1 : 2;
}

export interface DigestRequest {
  readonly method: string;
  /** The request-target; for CONNECT the authority, `host:port`. */
  readonly uri: string;
  /** Nonce count for this nonce (1 for the first use). */
  readonly nc?: number;
  /** For tests: a fixed client nonce. */
  readonly cnonce?: string;
}

/** RFC 8187 §3.2.1 ext-value: attr-char kept, every other UTF-8 byte percent-encoded. */
function encodeRfc8187(s: string): string {
  return encodeURIComponent(s).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function quote(s: string): string {
  return `"${s.replace(/(["\\])/g, '\\$1')}"`;
}

export function digestAuthorization(
  challenge: Challenge,
  credentials: Credentials,
  request: DigestRequest,
): string {
  const alg = parseAlgorithm(challenge.params.algorithm);
  if (!alg) throw new Error(`unsupported Digest algorithm ${challenge.params.algorithm ?? ''}`);
  const H = (s: string): string => createHash(ALGORITHMS[alg.algo]).update(s, 'utf8').digest('hex');
  const realm = challenge.params.realm ?? '';
  const nonce = challenge.params.nonce ?? '';
  const qopOffered = challenge.params.qop;
  const qop = qopOffered === undefined ? undefined : 'auth';
  const cnonce = request.cnonce ?? randomBytes(16).toString('hex');
  const nc = (request.nc ?? 1).toString(16).padStart(8, '0');
  let a1 = H(`${credentials.user}:${realm}:${credentials.reveal()}`);
  if (alg.sess) a1 = H(`${a1}:${nonce}:${cnonce}`);
  const a2 = H(`${request.method}:${request.uri}`);
  const response =
    qop === undefined ? H(`${a1}:${nonce}:${a2}`) : H(`${a1}:${nonce}:${nc}:${cnonce}:${qop}:${a2}`);
  // RFC 7616 §3.4.4: with userhash=true the username field carries H(user:realm).
  const userhash = challenge.params.userhash?.toLowerCase() === 'true';
  const username = userhash ? H(`${credentials.user}:${realm}`) : credentials.user;
  const parts = [
    // RFC 7616 §3.4.4: a name that a quoted-string cannot carry (non-ASCII) goes in username*, RFC 8187 encoded.
    !userhash && /[^\x20-\x7e]/.test(username)
      ? `username*=UTF-8''${encodeRfc8187(username)}`
      : `username=${quote(username)}`,
    `realm=${quote(realm)}`,
    `nonce=${quote(nonce)}`,
    `uri=${quote(request.uri)}`,
    `response=${quote(response)}`,
  ];
  if (challenge.params.algorithm !== undefined) parts.push(`algorithm=${challenge.params.algorithm}`);
  if (challenge.params.opaque !== undefined) parts.push(`opaque=${quote(challenge.params.opaque)}`);
  if (qop !== undefined) parts.push(`qop=${qop}`, `nc=${nc}`, `cnonce=${quote(cnonce)}`);
  if (userhash) parts.push('userhash=true');
  return `Digest ${parts.join(', ')}`;
}
