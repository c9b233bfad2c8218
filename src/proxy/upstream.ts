/**
 * From a requested `host:port` to a connected socket: resolve, check every resolved address against the
 * destination rules, and connect to an address that passed (never re-resolving, so DNS rebinding cannot slip a
 * denied address in between the check and the connect). Directly, or through the parent proxy with CONNECT to
 * that same address. Failures come back as the answer the proxy will give (RFC 9209 error types).
 */
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { isWsviaError, WsviaError } from '../errors.js';
import { formatAuthority, type Authority } from '../protocol/authority.js';
import {
  destinationRules,
  type AddressRules,
  type DestinationPolicy,
  type DestinationVerdict,
} from '../route/destination.js';
import type { ProxyUrl } from '../route/proxy-url.js';
import { Tracer } from '../observe/trace.js';
import { openHttpTunnel } from '../dial/http-tunnel.js';
import { openTcp } from '../dial/tcp.js';
import { startTls } from '../dial/tls.js';
import {
  DestinationDeniedError,
  guardedConnect,
  guardedDial,
  type CheckedDialer,
  type HostLookup,
} from '../serve/guarded-connect.js';
import type { NativeDialer } from '../serve/splice-relay.js';
import type { ProxyFailure } from './error-response.js';

export type UpstreamResult =
  | { readonly ok: true; readonly socket: net.Socket; readonly address: string }
  | { readonly ok: false; readonly failure: ProxyFailure };

export interface UpstreamOptions {
  readonly policy: DestinationPolicy;
  /** For the whole connect (lookup, TCP, and a parent's TLS and CONNECT together); 0: no limit. */
  readonly connectTimeout: number;
  readonly parent: ProxyUrl | undefined;
  readonly parentCa: string | Buffer | undefined;
  /** For a CONNECT tunnel: the destination socket reads straight into the relay's reused buffer. */
  readonly onread?: net.OnReadOpts | undefined;
  /** Name resolution (default: the system's). */
  readonly lookup?: HostLookup | undefined;
}

/** Verdicts remembered per policy: beyond this many, the memory starts again (a client cannot grow it for ever). */
const MAX_VERDICTS = 4096;
/** A DNS name is at most 253 characters; with a port and an address a key stays under this. */
const MAX_KEY = 320;

/**
 * A policy's rules with their verdicts remembered: a verdict depends on the policy (fixed for a server's life) and
 * the name, port and address only, and a proxy sees the same few destinations again and again; checking one anew
 * parses the address into bytes three times over.
 */
class RememberedRules implements AddressRules {
  readonly #rules: AddressRules;
  readonly #names = new Map<string, DestinationVerdict>();
  readonly #addresses = new Map<string, DestinationVerdict>();

  constructor(policy: DestinationPolicy) {
    this.#rules = destinationRules(policy);
  }

  checkName(host: string, port: number): DestinationVerdict {
    return remembered(this.#names, `${host} ${port}`, () => this.#rules.checkName(host, port));
  }

  checkAddress(host: string, port: number, address: string): DestinationVerdict {
    const key = `${host} ${port} ${address}`;
    return remembered(this.#addresses, key, () => this.#rules.checkAddress(host, port, address));
  }
}

function remembered(
  verdicts: Map<string, DestinationVerdict>,
  key: string,
  check: () => DestinationVerdict,
): DestinationVerdict {
  // A name as long as a request head allows is checked, not kept: the memory stays a few hundred KiB at most.
  if (key.length > MAX_KEY) return check();
  let v = verdicts.get(key);
  if (v === undefined) {
    if (verdicts.size >= MAX_VERDICTS) verdicts.clear();
    verdicts.set(key, (v = check()));
  }
  return v;
}

/** The rules of a policy, made once per policy rather than once per connect. */
const rulesByPolicy = new WeakMap<DestinationPolicy, AddressRules>();

function rulesOf(policy: DestinationPolicy): AddressRules {
  let rules = rulesByPolicy.get(policy);
  if (!rules) rulesByPolicy.set(policy, (rules = new RememberedRules(policy)));
  return rules;
}

/**
 * Resolves, checks and connects, within one deadline (serve/guarded-connect.ts; a direct connect to an IP literal
 * on one plain timer). The socket is paused, allowHalfOpen, and has no listeners left.
 */
export async function openUpstream(target: Authority, o: UpstreamOptions): Promise<UpstreamResult> {
  try {
    const c = await guardedConnect(target, {
      rules: rulesOf(o.policy),
      signal: undefined,
      timeout: o.connectTimeout,
      lookup: o.lookup,
      dial: o.parent ? parentDialer(o.parent, o.parentCa) : undefined,
      onread: o.onread,
    });
    return { ok: true, socket: c.socket, address: c.address };
  } catch (e) {
    return { ok: false, failure: failureFor(e) };
  }
}

export type DialedUpstream =
  | { readonly ok: true; readonly fd: number; readonly address: string }
  | { readonly ok: false; readonly failure: ProxyFailure };

/**
 * {@link openUpstream} for a CONNECT tunnel the native relay will carry, straight to the destination (no parent):
 * the same rules, deadline and answers, and a connected fd from the native dialer instead of a socket.
 */
export async function dialUpstream(
  target: Authority,
  o: Pick<UpstreamOptions, 'policy' | 'connectTimeout' | 'lookup'>,
  dialer: NativeDialer,
): Promise<DialedUpstream> {
  try {
    const c = await guardedDial(
      target,
      { rules: rulesOf(o.policy), signal: undefined, timeout: o.connectTimeout, lookup: o.lookup },
      dialer,
    );
    return { ok: true, fd: c.fd, address: c.address };
  } catch (e) {
    return { ok: false, failure: failureFor(e) };
  }
}

/** The answer the proxy gives for a failed connect (RFC 9209 error types). */
function failureFor(e: unknown): ProxyFailure {
  if (e instanceof DestinationDeniedError)
    return {
      status: 403,
      error: 'destination_ip_prohibited',
      details: e.summary,
      rule: e.rule,
      reason: 'denied',
    };
  if (!isWsviaError(e))
    return {
      status: 502,
      error: 'proxy_internal_error',
      details: `internal error: ${e instanceof Error ? e.message : String(e)}`,
      reason: 'upstream',
    };
  const details = e.summary;
  switch (e.code) {
    case 'DNS_FAILED':
      return { status: 502, error: 'dns_error', details, reason: 'dns' };
    case 'TCP_TIMEOUT':
    case 'TLS_TIMEOUT':
    case 'TUNNEL_TIMEOUT':
      return { status: 504, error: 'connection_timeout', details, reason: 'timeout' };
    default:
      break;
  }
  if (e.proxy !== undefined)
    return { status: 502, error: 'proxy_internal_error', details, reason: 'upstream' };
  const errno = e.details?.['errno'];
  const error =
    errno === 'ECONNREFUSED'
      ? 'connection_refused'
      : e.code === 'CONNECTION_REFUSED'
        ? 'destination_ip_unroutable'
        : 'destination_unavailable';
  return { status: 502, error, details, reason: 'refused' };
}

/** Every dial step is bounded by the connect's one signal, not by a timer of its own. */
const NO_STEP_TIMER = 2 ** 31 - 1;

/**
 * Through the parent proxy: TCP (and TLS for an https:// parent), then CONNECT to the address that was checked,
 * all within the connect's one deadline.
 */
function parentDialer(parent: ProxyUrl, parentCa: string | Buffer | undefined): CheckedDialer {
  return async (address, port, signal) => {
    const tracer = new Tracer();
    const peer = `proxy ${parent.display}`;
    const connectToProxy = async (): Promise<Duplex> => {
      const tcp = await openTcp({
        host: parent.host,
        port: parent.port,
        to: 'proxy',
        peer,
        timeout: NO_STEP_TIMER,
        signal,
        tracer,
      });
      if (parent.scheme === 'http') return tcp;
      const r = await startTls(tcp, {
        host: parent.host,
        to: 'proxy',
        peer,
        ca: parentCa,
        rejectUnauthorized: true,
        alpn: ['http/1.1'],
        timeout: NO_STEP_TIMER,
        signal,
        tracer,
      });
      return r.socket;
    };
    const target = { host: address, port };
    try {
      const t = await openHttpTunnel(await connectToProxy(), {
        proxy: parent,
        target,
        connectToProxy,
        headers: [],
        credentials: parent.credentials,
        schemes: undefined,
        timeout: NO_STEP_TIMER,
        signal,
        tracer,
        limits: undefined,
      });
      const socket = t.socket as net.Socket;
      // Half-close is passed through the parent too.
      socket.allowHalfOpen = true;
      // Bytes glued to the parent's 2xx are already back at the socket's front; the relay starts the flow.
      socket.pause();
      return socket;
    } catch (e) {
      const summary = isWsviaError(e) ? e.summary : String(e);
      throw new WsviaError(
        isWsviaError(e) ? e.code : 'PROXY_CONNECT_FAILED',
        `parent ${peer} could not open ${formatAuthority(target)}: ${summary}`,
        { hop: 'proxy', proxy: parent.display, cause: e },
      );
    }
  };
}
