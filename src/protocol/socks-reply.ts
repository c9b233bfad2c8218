/**
 * What a SOCKS proxy's refusal means, as wsvia error codes. The reply codes are those of SOCKS4 (the 1992 protocol
 * note, "SOCKS: A protocol for TCP proxy across firewalls") and SOCKS5 (RFC 1928 §6, RFC 1929 §2 for the
 * username/password sub-negotiation), classified by the reply code the proxy sent (see socks-client.ts).
 */
import type { ErrorCode } from '../errors.js';

export interface SocksRefusal {
  readonly code: ErrorCode;
  /** The reply as the RFC names it, with its number: `connection not allowed by ruleset (reply 2)`. */
  readonly reply: string;
  readonly hint: string;
}

type Reply = { n: number; text: string; code: ErrorCode; hint: string };

/** RFC 1928 §6 replies (the names are those of the `socks` package's `Socks5Response`, for reading). */
const SOCKS5_REPLIES = {
  Failure: {
    n: 1,
    text: 'general SOCKS server failure',
    code: 'PROXY_UNAVAILABLE',
    hint: 'the proxy failed internally; its log says why',
  },
  NotAllowed: {
    n: 2,
    text: 'connection not allowed by ruleset',
    code: 'PROXY_REFUSED',
    hint: "the proxy's rules deny this destination; ask its administrator, or use another route",
  },
  NetworkUnreachable: {
    n: 3,
    text: 'network unreachable',
    code: 'PROXY_UNAVAILABLE',
    hint: 'the proxy has no route to the destination network',
  },
  HostUnreachable: {
    n: 4,
    text: 'host unreachable',
    code: 'PROXY_UNAVAILABLE',
    hint: 'the proxy could not reach the host (or, with socks5h/socks4a, could not resolve its name): check the host name',
  },
  ConnectionRefused: {
    n: 5,
    text: 'connection refused',
    code: 'PROXY_UNAVAILABLE',
    hint: 'nothing listens at the destination port, as seen from the proxy: check the port',
  },
  TTLExpired: {
    n: 6,
    text: 'TTL expired',
    code: 'PROXY_UNAVAILABLE',
    hint: 'the destination did not answer the proxy in time: is the host up?',
  },
  CommandNotSupported: {
    n: 7,
    text: 'command not supported',
    code: 'PROXY_REFUSED',
    hint: 'the proxy does not allow CONNECT; use another proxy',
  },
  AddressNotSupported: {
    n: 8,
    text: 'address type not supported',
    code: 'PROXY_REFUSED',
    hint: 'the proxy does not accept this kind of address: try socks5:// (names resolved locally) instead of socks5h://, or the other way round',
  },
} as const satisfies Record<string, Reply>;

/** SOCKS4 replies (91-93). */
const SOCKS4_REPLIES = {
  Failed: {
    n: 91,
    text: 'request rejected or failed',
    code: 'PROXY_REFUSED',
    hint: 'the proxy refused (its rules) or could not reach the destination; SOCKS4 does not say which',
  },
  Rejected: {
    n: 92,
    text: 'rejected: the proxy cannot reach identd on the client',
    code: 'PROXY_AUTH_REQUIRED',
    hint: 'this SOCKS4 proxy identifies users by identd (RFC 1413); run one, or use socks5:// with a user name and password',
  },
  RejectedIdent: {
    n: 93,
    text: 'rejected: identd and the client report different user ids',
    code: 'PROXY_AUTH_REQUIRED',
    hint: 'put the user id identd reports in the proxy URL (socks4://USER@host:port)',
  },
} as const satisfies Record<string, Reply>;

function byCode(table: Record<string, Reply>, n: number, version: 4 | 5): SocksRefusal {
  const r = Object.values(table).find((x) => x.n === n);
  if (!r) {
    return {
      code: 'PROXY_REFUSED',
      reply: `unassigned SOCKS${version} reply ${n}`,
      hint: 'the proxy refused the connection with a reply code the RFC does not assign',
    };
  }
  return { code: r.code, reply: `${r.text} (reply ${r.n})`, hint: r.hint };
}

/** A SOCKS5 reply other than 0 (succeeded), RFC 1928 §6. */
export function socks5Refusal(reply: number): SocksRefusal {
  return byCode(SOCKS5_REPLIES, reply, 5);
}

/** A SOCKS4 reply other than 90 (granted). */
export function socks4Refusal(reply: number): SocksRefusal {
  return byCode(SOCKS4_REPLIES, reply, 4);
}

/**
 * A SOCKS5 refusal before the request: no acceptable method (RFC 1928 §3, method 0xFF), or a username/password
 * status other than 0 (RFC 1929 §2).
 */
export function socksAuthRefusal(stage: 'method' | 'password', hasCredentials: boolean): SocksRefusal {
  if (stage === 'password') {
    return {
      code: 'PROXY_AUTH_REQUIRED',
      reply: 'username/password authentication failed (RFC 1929 status not 0)',
      hint: 'check the user name and password (--proxy-user user:pass, or user:pass@ in the proxy URL)',
    };
  }
  return {
    code: 'PROXY_AUTH_REQUIRED',
    reply: 'no acceptable authentication method (method 0xFF)',
    hint: hasCredentials
      ? 'the proxy accepts neither no-authentication nor username/password (it may want GSSAPI, which wsvia does not speak over SOCKS)'
      : 'the proxy requires authentication: pass --proxy-user user:pass or put user:pass@ in the proxy URL',
  };
}
