/**
 * Destination rules for servers that open connections on a client's behalf (the proxy, the bridge): which ports,
 * which hosts, and which kinds of address. Dangerous destinations are denied by default (loopback, private,
 * link-local, unique-local, multicast, the cloud metadata address), so an exposed server is neither an open relay
 * into the internal network nor an SSRF gateway. The check is made on the resolved address, and the caller must
 * connect to that very address (no DNS-rebinding gap). Pure: resolution is the caller's (serve/guarded-connect.ts).
 *
 * An address is classed by what a connection to it reaches (STYLE.md trap 20): an IPv6 form that carries an IPv4
 * (mapped, compatible, translated, NAT64, 6to4, Teredo) by that IPv4, and the unspecified addresses (0.0.0.0/8, ::),
 * which the kernel connects to this very host, as a class of their own that no rule lifts.
 */
import { invalidArgument } from '../errors.js';
import { cidrContains, embeddedIpv4, ipBytes, parseCidr, type Cidr } from './cidr.js';

export const ADDRESS_CLASSES = [
  'loopback',
  'private',
  'link-local',
  'unique-local',
  'multicast',
  'metadata',
  'unspecified',
  'reserved',
  'public',
] as const;
export type AddressClass = (typeof ADDRESS_CLASSES)[number];

const CLASS_RANGES: readonly [string, AddressClass][] = [
  // Order matters: the metadata address sits inside link-local.
  ['169.254.169.254/32', 'metadata'],
  ['fd00:ec2::254/128', 'metadata'],
  ['0.0.0.0/8', 'unspecified'],
  ['::/128', 'unspecified'],
  ['127.0.0.0/8', 'loopback'],
  ['::1/128', 'loopback'],
  ['10.0.0.0/8', 'private'],
  ['172.16.0.0/12', 'private'],
  ['192.168.0.0/16', 'private'],
  ['100.64.0.0/10', 'private'], // carrier-grade NAT (RFC 6598)
  ['169.254.0.0/16', 'link-local'],
  ['fe80::/10', 'link-local'],
  ['fc00::/7', 'unique-local'],
  ['224.0.0.0/4', 'multicast'],
  ['ff00::/8', 'multicast'],
  ['240.0.0.0/4', 'reserved'],
  ['192.0.0.0/24', 'reserved'],
  ['198.18.0.0/15', 'reserved'], // benchmarking (RFC 2544)
  ['64:ff9b:1::/48', 'reserved'],
];
const PARSED_RANGES: readonly [Cidr, AddressClass][] = CLASS_RANGES.map(([c, k]) => [
  parseCidr(c) as Cidr,
  k,
]);

/**
 * The kind of an IP address, by what a connection to it reaches: an IPv6 address that carries an IPv4
 * (`::ffff:127.0.0.1`, `::7f00:1`, `64:ff9b::7f00:1`, `2002:7f00:1::`, ...) is classified as that IPv4.
 * Non-addresses are 'reserved'.
 */
export function classifyAddress(address: string): AddressClass {
  const bytes = ipBytes(address);
  if (!bytes) return 'reserved';
  const reached = embeddedIpv4(bytes) ?? bytes;
  for (const [cidr, kind] of PARSED_RANGES) if (cidrContains(cidr, reached)) return kind;
  return 'public';
}

export interface PortRange {
  readonly from: number;
  readonly to: number;
}

/** `443,80,8000-9000` (squid's SSL_ports style). `*` allows every port. */
export function parsePortList(text: string): PortRange[] {
  const out: PortRange[] = [];
  for (const part of text.split(',').map((p) => p.trim())) {
    if (part === '*') {
      out.push({ from: 1, to: 65535 });
      continue;
    }
    const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(part);
    const from = Number(m?.[1]);
    const to = m?.[2] === undefined ? from : Number(m[2]);
    if (!m || from < 1 || to > 65535 || from > to) {
      throw invalidArgument(
        `invalid port list entry ${JSON.stringify(part)}`,
        'expected ports and ranges like 443,80,8000-9000',
      );
    }
    out.push({ from, to });
  }
  return out;
}

export function portAllowed(ranges: readonly PortRange[], port: number): boolean {
  return ranges.some((r) => port >= r.from && port <= r.to);
}

/** A host rule: a CIDR or address, an exact name, or a `*.suffix` wildcard. */
export type HostRule =
  | { readonly kind: 'cidr'; readonly cidr: Cidr; readonly text: string }
  | { readonly kind: 'name'; readonly name: string; readonly text: string }
  | { readonly kind: 'suffix'; readonly suffix: string; readonly text: string };

export function parseHostRule(text: string): HostRule {
  const t = text.trim().toLowerCase();
  const cidr = parseCidr(t);
  if (cidr) return { kind: 'cidr', cidr, text };
  if (t.startsWith('*.') && t.length > 2) return { kind: 'suffix', suffix: t.slice(1), text };
  if (t.startsWith('.') && t.length > 1) return { kind: 'suffix', suffix: t, text };
  if (/^[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?$/.test(t)) return { kind: 'name', name: t, text };
  throw invalidArgument(
    `invalid host rule ${JSON.stringify(text)}`,
    'expected a host name, *.domain, an IP address or a CIDR range',
  );
}

function ruleMatches(rule: HostRule, host: string, address: Uint8Array | undefined): boolean {
  switch (rule.kind) {
    case 'cidr':
      return address !== undefined && cidrContains(rule.cidr, address);
    case 'name':
      return host === rule.name;
    case 'suffix':
      return host.endsWith(rule.suffix);
  }
}

export interface DestinationPolicy {
  readonly ports: readonly PortRange[];
  /** Allow loopback, private, link-local and unique-local addresses (never the metadata address unless allowed by rule). */
  readonly allowPrivate: boolean;
  /** Explicit allows: they lift the address-class denial for what they match (never the unspecified class). */
  readonly allow: readonly HostRule[];
  /** Explicit denials: they win over everything. */
  readonly deny: readonly HostRule[];
}

export const DEFAULT_POLICY: DestinationPolicy = {
  ports: parsePortList('443,80'),
  allowPrivate: false,
  allow: [],
  deny: [],
};

export type DestinationVerdict =
  | { readonly allowed: true }
  | {
      readonly allowed: false;
      /** The rule that denied, in the operator's words: `port 22 not in --allow-ports 443,80`. */
      readonly rule: string;
      readonly addressClass?: AddressClass;
    };

function formatPorts(r: readonly PortRange[]): string {
  return r.map((p) => (p.from === p.to ? String(p.from) : `${p.from}-${p.to}`)).join(',');
}

const ALLOWED: DestinationVerdict = { allowed: true };

function normalHost(host: string): string {
  return host.toLowerCase().replace(/\.$/, '');
}

/** The address as written and, when it carries one, the IPv4 it reaches: a `--deny` of either denies it. */
function addressForms(address: string): Uint8Array[] {
  const bytes = ipBytes(address);
  if (!bytes) return [];
  const v4 = embeddedIpv4(bytes);
  return v4 ? [bytes, v4] : [bytes];
}

function denyingRule(policy: DestinationPolicy, h: string, address: string): HostRule | undefined {
  const forms = [...addressForms(address), ...addressForms(h)];
  return policy.deny.find(
    (rule) => ruleMatches(rule, h, undefined) || forms.some((b) => ruleMatches(rule, h, b)),
  );
}

/**
 * Checks a destination. `host` is as the client asked (a name or an address); `address` is what it resolved to
 * (the same as host when host is an address). Call again for every address you might connect to.
 *
 * `--allow` rules match the address as written (IPv4-mapped forms included), never through another form: an
 * allowed `127.0.0.1` does not open `::7f00:1`. No rule lifts the unspecified class: 0.0.0.0 reaches loopback,
 * and a client that means loopback names it.
 */
export function checkDestination(
  policy: DestinationPolicy,
  host: string,
  port: number,
  address: string,
): DestinationVerdict {
  const h = normalHost(host);
  const denied = denyingRule(policy, h, address);
  if (denied) return { allowed: false, rule: `--deny ${denied.text}` };
  if (!portAllowed(policy.ports, port)) return portDenial(policy, port);
  const kind = classifyAddress(address);
  if (kind === 'public') return ALLOWED;
  const what = h === address ? address : `${h} resolves to ${address}`;
  if (kind === 'unspecified')
    return {
      allowed: false,
      rule: `${what}, an unspecified address (a connection to it reaches this host), is always denied (name the address meant)`,
      addressClass: kind,
    };
  const bytes = ipBytes(address);
  if (policy.allow.some((rule) => ruleMatches(rule, h, bytes))) return ALLOWED;
  const liftedByPrivate =
    kind === 'loopback' || kind === 'private' || kind === 'link-local' || kind === 'unique-local';
  if (policy.allowPrivate && liftedByPrivate) return ALLOWED;
  const how =
    kind === 'metadata' || !liftedByPrivate ? `--allow ${address}` : `--allow-private or --allow ${address}`;
  return {
    allowed: false,
    rule: `${what}, a ${kind} address, denied by default (allow with ${how})`,
    addressClass: kind,
  };
}

function portDenial(policy: DestinationPolicy, port: number): DestinationVerdict {
  return { allowed: false, rule: `port ${port} is not in --allow-ports ${formatPorts(policy.ports)}` };
}

/**
 * What a guarded connect asks before it connects: a verdict on the name alone (made before any lookup, so a
 * denied name is never resolved), then one on every address the name resolved to.
 */
export interface AddressRules {
  checkName(host: string, port: number): DestinationVerdict;
  checkAddress(host: string, port: number, address: string): DestinationVerdict;
}

/** For destinations the operator configured (a bridge's `--target`, a gateway's SNI backends): every address. */
export const ANY_DESTINATION: AddressRules = {
  checkName: () => ALLOWED,
  checkAddress: () => ALLOWED,
};

/** The proxy's rules (`--allow-ports`, `--allow`, `--deny`, `--allow-private`) as {@link AddressRules}. */
export function destinationRules(policy: DestinationPolicy): AddressRules {
  return {
    checkName(host, port) {
      const h = normalHost(host);
      const denied = policy.deny.find((rule) => rule.kind !== 'cidr' && ruleMatches(rule, h, undefined));
      if (denied) return { allowed: false, rule: `--deny ${denied.text}` };
      return portAllowed(policy.ports, port) ? ALLOWED : portDenial(policy, port);
    },
    checkAddress: (host, port, address) => checkDestination(policy, host, port, address),
  };
}
