/**
 * Where a session goes: a token, a client's choice within `--allow-target` and the SSRF defaults, a path route, or
 * the default target; then the TCP connection to it, whose failure is a refusal too (502, 504).
 */
import type net from 'node:net';
import { parseAuthority, type Authority } from '../protocol/authority.js';
import { ANY_DESTINATION, type AddressRules } from '../route/destination.js';
import {
  ConnectDeadline,
  DestinationDeniedError,
  guardedConnect,
  type HostLookup,
} from '../serve/guarded-connect.js';
import { isWsviaError } from '../errors.js';
import { Refusal, cookieValue } from './admission.js';
import { targetRules, type TargetRule } from './allow-target.js';
import type { TokenFile } from './token-file.js';

export interface TargetSources {
  readonly target?: Authority;
  readonly routes?: ReadonlyMap<string, Authority>;
  readonly tokens?: TokenFile;
  readonly allowTargets?: readonly TargetRule[];
  readonly allowPrivate?: boolean;
}

export interface TargetChoice {
  readonly target: Authority;
  readonly kind: string;
  /**
   * What its addresses must pass: the `--allow-target` rules for a client's choice; any address for the
   * operator's own (`--target`, `--route`, a token file).
   */
  readonly rules: AddressRules;
}

export function makeTargetChooser(
  options: TargetSources,
): (url: URL, cookie: string | undefined) => Promise<TargetChoice | Refusal> {
  const tokens = options.tokens;
  const clientRules = targetRules(options.allowTargets ?? [], {
    allowPrivate: options.allowPrivate ?? false,
  });
  const operators = (target: Authority, kind: string): TargetChoice => ({
    target,
    kind,
    rules: ANY_DESTINATION,
  });

  return async function chooseTarget(url: URL, cookie: string | undefined): Promise<TargetChoice | Refusal> {
    const q = url.searchParams;
    // websockify's token plugins read ?token= first, then a `token` cookie (noVNC can set either).
    const token = q.get('token') ?? cookieValue(cookie, 'token');
    if (token !== null) {
      if (!tokens) return new Refusal(404, 'this bridge has no token file (--token-file)', 'token');
      const t = await tokens.lookup(token);
      if (!t) return new Refusal(404, 'unknown token', 'token');
      return operators(t, 'token');
    }
    const asked = q.get('target');
    if (asked !== null) {
      try {
        return { target: parseAuthority(asked, 'the client'), kind: 'client', rules: clientRules };
      } catch {
        return new Refusal(
          400,
          `invalid target ${JSON.stringify(asked.slice(0, 100))} (expected host:port)`,
          'target',
        );
      }
    }
    const routed = options.routes?.get(url.pathname);
    if (routed) return operators(routed, 'route');
    if (options.target) return operators(options.target, 'target');
    return new Refusal(404, `no target for path ${url.pathname.slice(0, 100)}`, 'no-route');
  };
}

export interface TargetConnectOptions {
  /** For resolving and connecting together, ms; 0: no limit. */
  readonly timeout: number;
  readonly lookup?: HostLookup | undefined;
}

/**
 * Resolves the chosen target once, checks every address, and connects to a checked one, all within the connect
 * timeout (serve/guarded-connect.ts); a failure is a refusal: 403 denied, 502 unresolvable or refused, 504 late.
 */
export async function connectTarget(
  choice: TargetChoice,
  o: TargetConnectOptions,
): Promise<net.Socket | Refusal> {
  const deadline = new ConnectDeadline(o.timeout);
  try {
    const c = await guardedConnect(choice.target, {
      rules: choice.rules,
      signal: deadline.signal,
      lookup: o.lookup,
    });
    return c.socket;
  } catch (e) {
    return refusalFor(e);
  } finally {
    deadline.clear();
  }
}

function refusalFor(e: unknown): Refusal {
  if (e instanceof DestinationDeniedError) return new Refusal(403, e.rule, 'target-denied');
  if (!isWsviaError(e)) return new Refusal(502, 'target failed (internal error)', 'target-failed');
  switch (e.code) {
    case 'DNS_FAILED':
      return new Refusal(502, e.summary, 'dns');
    case 'TCP_TIMEOUT':
      return new Refusal(504, `target: ${e.summary}`, 'target-timeout');
    default:
      return new Refusal(502, `target ${e.summary}`, 'target-failed');
  }
}
