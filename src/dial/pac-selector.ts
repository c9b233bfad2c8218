/**
 * The PAC ProxySelector: loads the PAC file (cached), answers its DNS functions from one lookup of the target's
 * name, runs `FindProxyForURL`, and turns each entry of its result into a route, in order, each saying which PAC
 * entry it came from.
 */
import dns from 'node:dns';
import net from 'node:net';
import os from 'node:os';
import type { PacHost } from '../route/pac.js';
import type { RouteDecision } from '../route/choose.js';
import type { ProxySelector, SelectorTarget } from '../route/selector.js';
import { loadPac, type PacLoadOptions } from './pac-source.js';

/** The first non-internal IPv4 address of this machine (browsers use the default route's), else loopback. */
function myIpAddress(): string {
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

async function lookupV4(host: string): Promise<string | null> {
  if (net.isIPv4(host)) return host;
  if (net.isIP(host) !== 0) return null;
  try {
    return (await dns.promises.lookup(host, { family: 4 })).address;
  } catch {
    return null;
  }
}

/** Answers the PAC's DNS functions: the target's name from one lookup made beforehand, others as unresolvable. */
async function hostFor(target: SelectorTarget): Promise<PacHost> {
  const address = await lookupV4(target.host);
  const me = myIpAddress();
  return {
    dnsResolve: (name) =>
      name.toLowerCase() === target.host.toLowerCase() ? address : net.isIPv4(name) ? name : null,
    myIpAddress: () => me,
  };
}

/** Routes from `FindProxyForURL` of the PAC file at `source` (a path, file:, http: or https: URL). */
export function pacSelector(source: string, options: PacLoadOptions = {}): ProxySelector {
  return async (target) => {
    const script = await loadPac(source, options);
    const r = await script.resolve(target.url, target.host, await hostFor(target));
    const n = r.entries.length;
    const skipped =
      r.skipped.length > 0 ? `; skipped unusable ${r.skipped.map((s) => JSON.stringify(s)).join(', ')}` : '';
    return r.entries.map((e, i): RouteDecision => {
      const why = `PAC ${source} returned ${JSON.stringify(r.raw)}: entry ${i + 1} of ${n}, ${e.text}${skipped}`;
      return e.kind === 'direct'
        ? { proxy: null, reason: `direct: ${why}`, source: 'pac' }
        : { proxy: e.proxy, reason: `proxy ${e.proxy.display}: ${why}`, source: 'pac' };
    });
  };
}
