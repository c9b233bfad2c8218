/**
 * Where a session goes: a token, a client's choice within `--allow-target` and the SSRF defaults, a path route, or
 * the default target; then the TCP connection to it, whose failure is a refusal too (502, 504).
 */
import dns from 'node:dns/promises';
import net from 'node:net';
import { formatAuthority, parseAuthority, type Authority } from '../protocol/authority.js';
import { Refusal, cookieValue } from './admission.js';
import { checkTarget, type TargetRule } from './allow-target.js';
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
  /** The checked address to connect to (client-chosen targets). */
  readonly address?: string;
}

export function makeTargetChooser(
  options: TargetSources,
): (url: URL, cookie: string | undefined) => Promise<TargetChoice | Refusal> {
  const tokens = options.tokens;
  async function checkClientTarget(a: Authority): Promise<TargetChoice | Refusal> {
    const rules = options.allowTargets ?? [];
    let addresses: string[];
    if (net.isIP(a.host)) addresses = [a.host];
    else if (rules.length === 0) addresses = ['0.0.0.0'];
    else {
      try {
        addresses = (await dns.lookup(a.host, { all: true })).map((r) => r.address);
      } catch {
        return new Refusal(502, `cannot resolve ${a.host}`, 'dns');
      }
    }
    let last = '';
    for (const address of addresses) {
      const v = checkTarget(rules, { allowPrivate: options.allowPrivate ?? false }, a.host, a.port, address);
      // Connect to the very address that was checked: no second lookup, no DNS-rebinding gap.
      if (v.allowed) return { target: a, kind: 'client', address };
      last = v.reason;
    }
    return new Refusal(403, last, 'target-denied');
  }

  return async function chooseTarget(url: URL, cookie: string | undefined): Promise<TargetChoice | Refusal> {
    const q = url.searchParams;
    // websockify's token plugins read ?token= first, then a `token` cookie (noVNC can set either).
    const token = q.get('token') ?? cookieValue(cookie, 'token');
    if (token !== null) {
      if (!tokens) return new Refusal(404, 'this bridge has no token file (--token-file)', 'token');
      const t = await tokens.lookup(token);
      if (!t) return new Refusal(404, 'unknown token', 'token');
      return { target: t, kind: 'token' };
    }
    const asked = q.get('target');
    if (asked !== null) {
      let a: Authority;
      try {
        a = parseAuthority(asked, 'the client');
      } catch {
        return new Refusal(
          400,
          `invalid target ${JSON.stringify(asked.slice(0, 100))} (expected host:port)`,
          'target',
        );
      }
      return checkClientTarget(a);
    }
    const routed = options.routes?.get(url.pathname);
    if (routed) return { target: routed, kind: 'route' };
    if (options.target) return { target: options.target, kind: 'target' };
    return new Refusal(404, `no target for path ${url.pathname.slice(0, 100)}`, 'no-route');
  };
}

/** Connects to the target (to `address` when one was checked); a failure is a 502 or 504 refusal. */
export function connectTarget(
  target: Authority,
  address: string | undefined,
  timeout: number,
): Promise<net.Socket | Refusal> {
  return new Promise((resolve) => {
    const s = net.connect({ host: address ?? target.host, port: target.port, allowHalfOpen: true });
    s.setNoDelay(true);
    const where = formatAuthority(target);
    const timer = setTimeout(() => {
      s.destroy();
      resolve(
        new Refusal(
          504,
          `target ${where} did not accept the connection within ${timeout} ms`,
          'target-timeout',
        ),
      );
    }, timeout);
    s.once('connect', () => {
      clearTimeout(timer);
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(
        new Refusal(
          502,
          `target ${where} ${e.code === 'ECONNREFUSED' ? 'refused the connection' : `failed (${e.code ?? e.message})`}`,
          'target-failed',
        ),
      );
    });
  });
}
