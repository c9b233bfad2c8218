/**
 * Targets a client may choose (`?target=host:port`), allowed only by the operator's `--allow-target` rules and then
 * only if the resolved address passes the SSRF defaults of route/destination.ts: loopback, private, link-local
 * and metadata addresses stay denied unless a rule names them by address or CIDR, or `--allow-private` is given.
 * A name rule (`db.internal:5432`) never lifts that denial by itself: a name can resolve anywhere. The unspecified
 * addresses (0.0.0.0/8, ::) reach this host's loopback and no rule lifts them, `0.0.0.0/0` included.
 */
import { invalidArgument } from '../errors.js';
import { cidrContains, ipBytes } from '../route/cidr.js';
import {
  checkDestination,
  classifyAddress,
  parseHostRule,
  parsePortList,
  portAllowed,
  type AddressRules,
  type DestinationVerdict,
  type HostRule,
  type PortRange,
} from '../route/destination.js';

/** One `--allow-target` entry, parsed: the hosts and ports a client may ask the bridge for with `?target=`. */
export interface TargetRule {
  readonly host: HostRule;
  readonly ports: readonly PortRange[];
  readonly text: string;
}

/**
 * `HOST[:PORTS]`: a name, `*.suffix`, an address or CIDR (IPv6 in brackets when ports follow), then a port list
 * (`22`, `5900-5910`, `80,443`, `*`; default `*`). Examples: `127.0.0.1:22`, `10.0.0.0/8:5900-5999`,
 * `[::1]:22`, `*.lab.example:22,80`.
 */
export function parseTargetRule(text: string): TargetRule {
  const t = text.trim();
  let hostText = t;
  let portText = '*';
  if (t.startsWith('[')) {
    const close = t.indexOf(']');
    if (close < 0) throw invalidArgument(`invalid --allow-target ${JSON.stringify(text)}`, 'unclosed [');
    hostText = t.slice(1, close);
    const rest = t.slice(close + 1);
    if (rest !== '') {
      if (!rest.startsWith(':'))
        throw invalidArgument(`invalid --allow-target ${JSON.stringify(text)}`, 'expected ]:PORTS');
      portText = rest.slice(1);
    }
  } else if ((t.match(/:/g) ?? []).length === 1) {
    const colon = t.indexOf(':');
    hostText = t.slice(0, colon);
    portText = t.slice(colon + 1);
  }
  return { host: parseHostRule(hostText), ports: parsePortList(portText), text: t };
}

/**
 * A CIDR rule lifts the address-class denial only for its own class: `127.0.0.1:22` or `10.0.0.0/8:5900` name
 * internal ranges on purpose, but `0.0.0.0/0:443` means "the internet", not loopback or the metadata address.
 */
function liftsClassOf(rule: HostRule, address: string): boolean {
  if (rule.kind !== 'cidr') return false;
  const base =
    rule.text
      .trim()
      .replace(/^\[|\]$/g, '')
      .split('/')[0] ?? '';
  return classifyAddress(base) === classifyAddress(address);
}

export type TargetVerdict = { readonly allowed: true } | { readonly allowed: false; readonly reason: string };

function nameMatches(rule: HostRule, host: string): boolean {
  if (rule.kind === 'name') return rule.name === host;
  if (rule.kind === 'suffix') return host.endsWith(rule.suffix);
  return false;
}

function refusedChoice(where: string): string {
  return `this bridge does not let clients choose targets (asked for ${where}; the operator allows some with --allow-target)`;
}

function unmatched(rules: readonly TargetRule[], where: string): string {
  return `target ${where} matches no --allow-target rule (${rules.map((r) => r.text).join(', ')})`;
}

/**
 * Decides a client-chosen target. `host` as asked, `address` one address it resolved to (call once per address
 * the name resolved to: serve/guarded-connect.ts refuses the name if any is denied).
 */
export function checkTarget(
  rules: readonly TargetRule[],
  options: { readonly allowPrivate: boolean },
  host: string,
  port: number,
  address: string,
): TargetVerdict {
  const h = host.toLowerCase().replace(/\.$/, '');
  const where = `${host}:${port}`;
  if (rules.length === 0) return { allowed: false, reason: refusedChoice(where) };
  const bytes = ipBytes(address);
  const matching = rules.filter(
    (r) =>
      portAllowed(r.ports, port) &&
      (nameMatches(r.host, h) ||
        (r.host.kind === 'cidr' && bytes !== undefined && cidrContains(r.host.cidr, bytes))),
  );
  if (matching.length === 0) return { allowed: false, reason: unmatched(rules, where) };
  const lifts = matching.filter((r) => liftsClassOf(r.host, address)).map((r) => r.host);
  const v = checkDestination(
    { ports: [{ from: 1, to: 65535 }], allowPrivate: options.allowPrivate, allow: lifts, deny: [] },
    h,
    port,
    address,
  );
  if (v.allowed) return v;
  return {
    allowed: false,
    reason: `target ${where} denied: ${v.rule.replace(/--allow (?=\S)/g, '--allow-target ')}`,
  };
}

function asVerdict(v: TargetVerdict): DestinationVerdict {
  return v.allowed ? v : { allowed: false, rule: v.reason };
}

/**
 * The `--allow-target` rules as the guarded connect asks them: a name no rule can match is refused before any
 * lookup (a client cannot make the bridge resolve names it will never connect to), then every resolved address.
 */
export function targetRules(
  rules: readonly TargetRule[],
  options: { readonly allowPrivate: boolean },
): AddressRules {
  return {
    checkName(host, port) {
      const h = host.toLowerCase().replace(/\.$/, '');
      const where = `${host}:${port}`;
      if (rules.length === 0) return { allowed: false, rule: refusedChoice(where) };
      const mayMatch = rules.some(
        (r) => portAllowed(r.ports, port) && (r.host.kind === 'cidr' || nameMatches(r.host, h)),
      );
      return mayMatch ? { allowed: true } : { allowed: false, rule: unmatched(rules, where) };
    },
    checkAddress: (host, port, address) => asVerdict(checkTarget(rules, options, host, port, address)),
  };
}
