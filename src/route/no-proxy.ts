/**
 * NO_PROXY, with curl's conventions (curl's `--noproxy` and CURLOPT_NOPROXY): entries separated by commas or
 * spaces; `*` as the whole value matches every host; a name matches itself and its subdomains, with or without a leading dot;
 * IP addresses and CIDR ranges match addresses (never names: no DNS is done); `host:port` limits an entry to a
 * port; everything is case-insensitive.
 */
import { cidrContains, ipBytes, parseCidr, type Cidr } from './cidr.js';

/** One NO_PROXY entry, parsed: everything, a name and its subdomains, or an address range; optionally one port. */
export type NoProxyRule =
  | { readonly kind: 'all'; readonly text: string }
  | { readonly kind: 'name'; readonly name: string; readonly port?: number; readonly text: string }
  | { readonly kind: 'cidr'; readonly cidr: Cidr; readonly port?: number; readonly text: string };

function splitPort(entry: string): { host: string; port?: number } {
  // [v6]:port, v4:port, name:port. A bare IPv6 address has several colons and no port.
  const bracket = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(entry);
  if (bracket)
    return bracket[2] === undefined
      ? { host: bracket[1] as string }
      : { host: bracket[1] as string, port: Number(bracket[2]) };
  const colons = entry.split(':').length - 1;
  if (colons === 1) {
    const [h, p] = entry.split(':') as [string, string];
    if (/^\d{1,5}$/.test(p)) return { host: h, port: Number(p) };
  }
  return { host: entry };
}

/** Parses a NO_PROXY value (or `--noproxy`) into rules, with curl's conventions. */
export function parseNoProxy(value: string): NoProxyRule[] {
  // curl: "The only wildcard available is a single * character" -- the whole value, not one entry of a list
  // (curl 7.88 sends `localhost,*` through the proxy for other hosts). A `*` entry in a list matches nothing.
  if (value.trim() === '*') return [{ kind: 'all', text: '*' }];
  const rules: NoProxyRule[] = [];
  for (const raw of value.split(/[\s,]+/)) {
    const text = raw.trim();
    if (text === '' || text === '*') continue;
    const { host, port } = splitPort(text.toLowerCase());
    const withPort = port === undefined ? {} : { port };
    const cidr = parseCidr(host);
    if (cidr) {
      rules.push({ kind: 'cidr', cidr, text, ...withPort });
      continue;
    }
    const name = host.replace(/^\*?\./, '').replace(/\.$/, '');
    if (name !== '') rules.push({ kind: 'name', name, text, ...withPort });
  }
  return rules;
}

/** The first rule that matches `host` (IPv6 unbracketed) and `port`, or undefined. */
export function matchNoProxy(
  rules: readonly NoProxyRule[],
  host: string,
  port: number,
): NoProxyRule | undefined {
  const h = host.toLowerCase().replace(/\.$/, '');
  const addr = ipBytes(h);
  for (const rule of rules) {
    if (rule.kind === 'all') return rule;
    if (rule.port !== undefined && rule.port !== port) continue;
    if (rule.kind === 'cidr') {
      if (addr && cidrContains(rule.cidr, addr)) return rule;
    } else if (!addr && (h === rule.name || h.endsWith(`.${rule.name}`))) {
      return rule;
    }
  }
  return undefined;
}
