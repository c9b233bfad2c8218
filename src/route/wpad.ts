/**
 * WPAD by DNS (Web Proxy Auto-Discovery, draft-ietf-wrec-wpad-01 §4.4.1): the PAC file is looked for at
 * `http://wpad.<domain>/wpad.dat`, for the search domain and then each parent domain ("devolution"), as Windows
 * and browsers do. Pure: the domains come in, the candidate URLs go out; dial/ resolves and fetches them.
 *
 * The stop rule, against the known WPAD hijack (whoever registers `wpad.com` or `wpad.co.uk` receives the
 * traffic of every machine that walks that far up): a candidate's domain keeps **at least two labels**, and
 * **three** when it ends in a country-code top-level domain (two letters) whose second label is one of the
 * generic second levels registries sell under (`co.uk`, `com.au`, `ac.jp`, ...). So `corp.example` gives
 * `wpad.corp.example`, never `wpad.example`; `corp.co.uk` gives `wpad.corp.co.uk`, never `wpad.co.uk`. This is
 * Windows' default devolution level of two (MS09-008), made stricter for those country-code suffixes; a full
 * public suffix list would be stricter still, at the cost of a data file to keep current.
 */

/** Second-level labels under a two-letter country code that act as public suffixes (`co.uk`, `com.br`, ...). */
export const GENERIC_SECOND_LEVELS = [
  'ac',
  'co',
  'com',
  'edu',
  'gob',
  'go',
  'gov',
  'ltd',
  'mil',
  'ne',
  'net',
  'or',
  'org',
  'plc',
  'sch',
] as const;

/** Where a search domain came from, for the route's reason: `the search domain corp.example in /etc/resolv.conf`. */
export interface WpadDomainSource {
  readonly domain: string;
  /** Said after the domain, e.g. `in /etc/resolv.conf` or `given with --wpad-domain`. */
  readonly origin: string;
}

/** A WPAD candidate: the `wpad.DOMAIN` name to look up, its PAC URL, and where its domain came from. */
export interface WpadCandidate {
  /** The name looked up, e.g. `wpad.corp.example`. */
  readonly name: string;
  /** `http://wpad.corp.example/wpad.dat`. */
  readonly url: string;
  /** The search domain this candidate was derived from (before walking up), lowercased. */
  readonly searchDomain: string;
  readonly origin: string;
}

/** Longest DNS name (RFC 1035 §2.3.4: 255 octets on the wire, 253 characters written). */
const MAX_NAME = 253;
const LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;

/** The domain lowercased without its trailing dot, or null when it is not a usable DNS name (or is an IP address). */
export function normalizeDomain(domain: string): string | null {
  const d = domain.trim().toLowerCase().replace(/\.$/, '');
  if (d === '' || d.length > MAX_NAME) return null;
  const labels = d.split('.');
  if (!labels.every((l) => LABEL.test(l))) return null;
  // A numeric last label is an IPv4 address (or garbage), never a domain to search.
  if (/^[0-9]+$/.test(labels[labels.length - 1] as string)) return null;
  return d;
}

/** Whether `wpad.<domain>` may be tried: the stop rule of this module's header. `domain` is normalized. */
export function mayTryWpadIn(domain: string): boolean {
  const labels = domain.split('.');
  if (labels.length < 2) return false;
  const tld = labels[labels.length - 1] as string;
  const second = labels[labels.length - 2] as string;
  const publicSecond = tld.length === 2 && (GENERIC_SECOND_LEVELS as readonly string[]).includes(second);
  return labels.length >= (publicSecond ? 3 : 2);
}

/**
 * The candidate PAC URLs, in the order to try them: for each search domain in turn, `wpad.` + the domain, then
 * + each parent while `mayTryWpadIn` allows it. Duplicates (two search domains sharing parents) are kept
 * once, at their first place; names that are not DNS names are ignored.
 *
 * @example
 * wpadCandidates([{ domain: 'a.b.corp.example', origin: 'in /etc/resolv.conf' }]).map((c) => c.url);
 * // http://wpad.a.b.corp.example/wpad.dat, http://wpad.b.corp.example/wpad.dat, http://wpad.corp.example/wpad.dat
 */
export function wpadCandidates(domains: readonly WpadDomainSource[]): WpadCandidate[] {
  const out: WpadCandidate[] = [];
  const seen = new Set<string>();
  for (const source of domains) {
    const searchDomain = normalizeDomain(source.domain);
    if (searchDomain === null) continue;
    let labels = searchDomain.split('.');
    // Bounded: each turn drops one label, and a name has at most 127.
    while (labels.length > 0) {
      const domain = labels.join('.');
      if (!mayTryWpadIn(domain)) break;
      const name = `wpad.${domain}`;
      // `wpad.` + the domain must itself stay a valid name.
      if (name.length <= MAX_NAME && !seen.has(name)) {
        seen.add(name);
        out.push({ name, url: `http://${name}/wpad.dat`, searchDomain, origin: source.origin });
      }
      labels = labels.slice(1);
    }
  }
  return out;
}

/**
 * The search domains of a resolv.conf (resolv.conf(5)): the `search` list, or the `domain`. The two keywords are
 * mutually exclusive and the last one in the file wins, as the resolver reads them. Comments start with `#` or `;`.
 */
export function resolvConfDomains(text: string): { keyword: 'search' | 'domain'; domains: string[] } | null {
  let found: { keyword: 'search' | 'domain'; domains: string[] } | null = null;
  for (const line of text.split(/\r?\n/)) {
    const words = line
      .replace(/[#;].*$/, '')
      .trim()
      .split(/\s+/);
    const keyword = words[0];
    if ((keyword === 'search' || keyword === 'domain') && words.length > 1) {
      // `domain` takes one name; `search` up to six in old resolvers, any number in glibc 2.26+.
      found = { keyword, domains: keyword === 'domain' ? [words[1] as string] : words.slice(1) };
    }
  }
  return found;
}
