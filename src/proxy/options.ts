/** What `wsvia proxy` can be told: listener, users, destination rules, limits, observability. */
import type { RelayChoice } from '../serve/splice-relay.js';
import type { UserStore } from '../auth/server-auth.js';
import type { HeadLimits } from '../protocol/head.js';
import { DEFAULT_POLICY, type DestinationPolicy } from '../route/destination.js';
import type { ProxyUrl } from '../route/proxy-url.js';
import type { AccessLog } from '../observe/access-log.js';
import type { HostLookup } from '../serve/guarded-connect.js';

/** Limits, in milliseconds and counts. 0 disables a timeout. */
export interface ProxyLimits {
  /** Tunnels and forwarded requests at once (503 + Retry-After beyond). */
  readonly maxTunnels: number;
  /** Per client address (429 beyond). */
  readonly maxTunnelsPerClient: number;
  /** The whole request head must arrive within this (408, against slowloris). */
  readonly headerTimeout: number;
  /** Resolving, then TCP to the destination (and a parent's TLS and CONNECT), all together (504 beyond); 0: none. */
  readonly connectTimeout: number;
  /** A tunnel with no byte either way for this long is closed. */
  readonly idleTimeout: number;
  /** A tunnel is closed this long after it opened, busy or not; 0: no limit. */
  readonly maxLifetime: number;
  readonly head: HeadLimits;
  /** Failed logins per client address in any minute before it is answered 429 + Retry-After; 0: no limit. */
  readonly authFailuresPerMinute: number;
}

/** `wsvia proxy`'s limits when none are given. */
export const DEFAULT_LIMITS: ProxyLimits = {
  maxTunnels: 10_000,
  maxTunnelsPerClient: 500,
  headerTimeout: 10_000,
  connectTimeout: 10_000,
  idleTimeout: 300_000,
  maxLifetime: 0,
  head: { maxHeadBytes: 16 * 1024, maxHeaders: 100 },
  authFailuresPerMinute: 10,
};

/** What a ProxyServer is told: listener, users, destination rules, limits, upstream proxy and logging. */
export interface ProxyServerOptions {
  readonly host?: string;
  readonly port?: number;
  /** Users; without, the proxy is open (to the destinations its rules allow). */
  readonly users?: UserStore;
  /** Schemes offered in 407 (Digest only when the store knows plain passwords). */
  readonly authSchemes?: readonly ('basic' | 'digest')[];
  readonly realm?: string;
  readonly policy?: DestinationPolicy;
  readonly limits?: Partial<ProxyLimits>;
  /** Serve the proxy over TLS (clients use an https:// proxy URL). */
  readonly tls?: { readonly cert: string | Buffer; readonly key: string | Buffer };
  /** Chain every tunnel through this http:// or https:// parent proxy (with its credentials). */
  readonly upstream?: ProxyUrl;
  /** Trust these CAs for an https:// parent proxy. */
  readonly upstreamCa?: string | Buffer;
  /** Expect a PROXY protocol v1/v2 header first on every connection (behind HAProxy or a cloud LB). */
  readonly proxyProtocol?: boolean;
  /**
   * The relay for CONNECT tunnels (default `js`): `splice` and `auto` hand plain TCP tunnels to the native zero-copy
   * relay where it loads (serve/splice-relay.ts); TLS listeners and recorded tunnels stay in JavaScript.
   */
  readonly relay?: RelayChoice;
  /**
   * With the native relay, for a tunnel whose destination has a socket object (through `upstream`; one straight to
   * its destination is dialed natively and spliced from its first byte): bytes it carries in one direction in
   * JavaScript before it is handed over (default 64 KiB; 0: at once). A tunnel that opens, says a little and closes
   * costs less never handed over (the handover costs about what relaying a few reads does); a bulk transfer moves
   * over after its first read.
   */
  readonly spliceAfter?: number;
  readonly accessLog?: AccessLog;
  /** The name in Via and Proxy-Status (RFC 9209 §2: the intermediary's identity). */
  readonly name?: string;
  /** Resolves destination names (default: the system resolver, `dns.lookup`). */
  readonly lookup?: HostLookup;
}

/** What a tunnel carries in one direction before the native relay takes it: one full read (Node's read size). */
export const SPLICE_AFTER = 64 * 1024;

export function resolvedLimits(l: Partial<ProxyLimits> | undefined): ProxyLimits {
  return { ...DEFAULT_LIMITS, ...l };
}

export const DEFAULT_PROXY_POLICY: DestinationPolicy = DEFAULT_POLICY;
