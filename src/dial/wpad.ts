/**
 * WPAD discovery by DNS: the search domains (from resolv.conf, or given), the candidate URLs route/wpad.ts derives
 * from them, each name looked up (a failure means: try the next), and the first that serves a PAC file wins. The
 * URL found is remembered for a while (browsers re-run discovery on a network change; a process has no such
 * signal, so a time). Opt-in only: a network's DNS decides where traffic goes, which is why browsers ask.
 */
import dns from 'node:dns';
import fs from 'node:fs/promises';
import os from 'node:os';
import { WsviaError } from '../errors.js';
import type { RouteDecision } from '../route/choose.js';
import type { ProxySelector } from '../route/selector.js';
import {
  normalizeDomain,
  resolvConfDomains,
  wpadCandidates,
  type WpadCandidate,
  type WpadDomainSource,
} from '../route/wpad.js';
import { loadPac } from './pac-source.js';
import { pacSelector } from './pac-selector.js';

/** Looks a name up to IPv4 addresses; `dns.promises.Resolver` is one (real DNS to the servers it was given). */
export interface WpadResolver {
  /** The IPv4 addresses of `name`; rejects when it does not resolve. */
  resolve4(name: string): Promise<string[]>;
}

/** How WPAD discovery searches: the domains, the resolver, time limits and caching. */
export interface WpadOptions {
  /** Search domains to use instead of resolv.conf's (in order). */
  readonly domains?: readonly string[];
  /** The resolv.conf to read the `search`/`domain` line from (default `/etc/resolv.conf`). */
  readonly resolvConf?: string;
  /** This machine's name; its domain is searched when resolv.conf names none (default `os.hostname()`). */
  readonly hostname?: string;
  /** How candidate names are looked up (default the system's resolver, /etc/hosts included, as browsers do). */
  readonly resolver?: WpadResolver;
  /** Limit for fetching each candidate's PAC file, in ms (default 10 s). */
  readonly timeoutMs?: number;
  /** How long a discovered URL is reused before discovery runs again, in ms (default 5 minutes). */
  readonly cacheMs?: number;
  /** The clock for the cache, in ms (default `Date.now`; tests pass their own). */
  readonly now?: () => number;
}

/** One candidate that did not give a PAC file, and why. */
export interface WpadAttempt {
  readonly url: string;
  readonly why: string;
}

/** What WPAD discovery found, and every candidate it tried, for `wsvia route` and the doctor. */
export interface WpadDiscovery {
  /** The PAC file found, the address its name resolved to, and the sentence that says where it came from. */
  readonly found?: { readonly candidate: WpadCandidate; readonly address: string; readonly reason: string };
  /** Candidates tried before (or instead of) the one found. */
  readonly attempts: readonly WpadAttempt[];
  /** Where the search domains came from, or why there were none to try. */
  readonly domainsFrom: string;
}

export const DEFAULT_RESOLV_CONF = '/etc/resolv.conf';
const DEFAULT_CACHE_MS = 5 * 60_000;

const systemResolver: WpadResolver = {
  resolve4: async (name) => [(await dns.promises.lookup(name, { family: 4 })).address],
};

const cache = new Map<string, { readonly discovery: WpadDiscovery; readonly until: number }>();

/** Forgets discovered WPAD URLs (tests, and processes told the network changed). */
export function clearWpadCache(): void {
  cache.clear();
}

async function searchDomains(options: WpadOptions): Promise<{ sources: WpadDomainSource[]; from: string }> {
  if (options.domains !== undefined) {
    const origin = 'given with --wpad-domain (the wpad domains option)';
    return {
      sources: options.domains.map((domain) => ({ domain, origin })),
      from: `the search domains given (${options.domains.join(' ')})`,
    };
  }
  const path = options.resolvConf ?? DEFAULT_RESOLV_CONF;
  let conf: ReturnType<typeof resolvConfDomains> = null;
  let unread = '';
  try {
    conf = resolvConfDomains(await fs.readFile(path, 'utf8'));
  } catch (e) {
    unread = `cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? String(e)})`;
  }
  if (conf !== null) {
    const origin = `in ${path}`;
    return {
      sources: conf.domains.map((domain) => ({ domain, origin })),
      from: `the ${conf.keyword} line of ${path} (${conf.domains.join(' ')})`,
    };
  }
  // As the resolver does (resolv.conf(5)): without search or domain, the host name's domain is the search list.
  const hostname = options.hostname ?? os.hostname();
  const dot = hostname.indexOf('.');
  const domain = dot > 0 ? normalizeDomain(hostname.slice(dot + 1)) : null;
  const none = unread !== '' ? unread : `${path} has no search or domain line`;
  if (domain === null) return { sources: [], from: `${none}, and the host name '${hostname}' has no domain` };
  return {
    sources: [{ domain, origin: `of the host name ${hostname}` }],
    from: `${none}; the domain of the host name ${hostname}`,
  };
}

function dnsWhy(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOTFOUND') return 'DNS: no such name (NXDOMAIN)';
  if (code === 'ENODATA') return 'DNS: the name has no IPv4 address';
  return `DNS: ${code ?? String(e)}`;
}

/**
 * Runs WPAD discovery: each candidate in order until one resolves and serves a PAC file that compiles. The
 * result (found or not) says every candidate tried and why it failed. A found URL is reused for `cacheMs`.
 */
export async function discoverWpad(options: WpadOptions = {}): Promise<WpadDiscovery> {
  const now = options.now ?? Date.now;
  const { sources, from } = await searchDomains(options);
  const candidates = wpadCandidates(sources);
  const key = candidates.map((c) => c.url).join(' ');
  const hit = cache.get(key);
  if (hit && hit.until > now()) return hit.discovery;
  // Dials that start together share one discovery.
  const pending = inflight.get(key);
  if (pending) return pending;
  const p = discover(candidates, from, key, options).finally(() => inflight.delete(key));
  inflight.set(key, p);
  return p;
}

const inflight = new Map<string, Promise<WpadDiscovery>>();

async function discover(
  candidates: readonly WpadCandidate[],
  from: string,
  key: string,
  options: WpadOptions,
): Promise<WpadDiscovery> {
  const now = options.now ?? Date.now;
  const resolver = options.resolver ?? systemResolver;
  const attempts: WpadAttempt[] = [];
  // Bounded by the candidate list (a few names per search domain).
  for (const candidate of candidates) {
    let address: string;
    try {
      const addresses = await resolver.resolve4(candidate.name);
      if (addresses.length === 0) throw Object.assign(new Error('no address'), { code: 'ENODATA' });
      address = addresses[0] as string;
    } catch (e) {
      attempts.push({ url: candidate.url, why: dnsWhy(e) });
      continue;
    }
    try {
      await loadPac(candidate.url, {
        address,
        ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
      });
    } catch (e) {
      const why = e instanceof WsviaError ? e.summary.replace(` ${candidate.url}`, '') : String(e);
      attempts.push({ url: candidate.url, why: `${candidate.name} is ${address}, but ${why}` });
      continue;
    }
    const before =
      attempts.length === 0 ? '' : `; tried first: ${attempts.map((a) => `${a.url} (${a.why})`).join(', ')}`;
    const discovery: WpadDiscovery = {
      found: {
        candidate,
        address,
        reason: `WPAD: ${candidate.url} (from the search domain ${candidate.searchDomain} ${candidate.origin})${before}`,
      },
      attempts,
      domainsFrom: from,
    };
    cache.set(key, { discovery, until: now() + (options.cacheMs ?? DEFAULT_CACHE_MS) });
    return discovery;
  }
  return { attempts, domainsFrom: from };
}

/** The sentence for "no WPAD found": every candidate and why it failed, or why there was none. */
export function noWpadReason(d: WpadDiscovery): string {
  if (d.attempts.length === 0) {
    return `no WPAD candidate to try from ${d.domainsFrom}: WPAD stops before a single label or a public suffix such as co.uk`;
  }
  const list = d.attempts.map((a) => `${a.url}: ${a.why}`).join('; ');
  return `no WPAD found from ${d.domainsFrom}: ${list}`;
}

/**
 * The WPAD ProxySelector: the routes of the PAC file discovery finds, each reason saying where it was found; no
 * PAC file anywhere means direct, the reason listing every candidate tried.
 *
 * @example
 * await connect('wss://echo.example/', { wpad: true });
 */
export function wpadSelector(options: WpadOptions = {}): ProxySelector {
  return async (target) => {
    const d = await discoverWpad(options);
    if (!d.found) {
      const direct: RouteDecision = { proxy: null, reason: `direct: ${noWpadReason(d)}`, source: 'wpad' };
      return [direct];
    }
    const pac = pacSelector(
      d.found.candidate.url,
      {
        address: d.found.address,
        ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
      },
      `${d.found.reason}; its PAC`,
    );
    return (await pac(target)).map((r): RouteDecision => ({ ...r, source: 'wpad' }));
  };
}
