/**
 * `host:port` authorities (RFC 3986 §3.2), as CONNECT's request-target and the Host header carry them. IPv6
 * literals are bracketed on the wire and bare everywhere else in wsvia (what `net.connect` takes).
 */
import { isIP } from 'node:net';
import { RemoteProtocolError } from '../errors.js';

export interface Authority {
  /** Host name or address, IPv6 without brackets. */
  readonly host: string;
  readonly port: number;
}

/** `[::1]:443`, `example.com:80`. */
export function formatAuthority(a: Authority): string {
  return `${formatHost(a.host)}:${a.port}`;
}

/** Brackets an IPv6 literal; leaves names and IPv4 as they are. */
export function formatHost(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host;
}

/** Strips the brackets a URL's `hostname` keeps around IPv6 literals. */
export function unbracket(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

const HOSTNAME =
  /^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62}))*\.?$/;

/**
 * A name whose last label is a number (`127.1`, `2130706433`, `0x7f.0.0.1`, `010.0.0.1`) is no DNS name: the
 * resolver's inet_aton reads it as an IPv4 address in a legacy form, so a rule written for `127.0.0.1` would not
 * see it (STYLE trap 9). The WHATWG URL host parser has the same "ends in a number" rule.
 */
function endsInNumber(host: string): boolean {
  const labels = host.replace(/\.$/, '').split('.');
  const last = labels[labels.length - 1] ?? '';
  return /^\d+$/.test(last) || /^0x[0-9a-f]*$/i.test(last);
}

/**
 * Parses an authority-form request-target strictly (RFC 9112 §3.2.3): a port is required, IPv6 must be bracketed,
 * names are DNS labels. Anything else is a 400-class {@link RemoteProtocolError}.
 */
export function parseAuthority(text: string, peer = 'the client'): Authority {
  const fail = (why: string): never => {
    throw new RemoteProtocolError(
      `${peer} sent an invalid authority ${JSON.stringify(text.slice(0, 100))} (${why})`,
      {
        hop: 'server',
        hint: 'expected host:port, with IPv6 addresses in brackets',
      },
    );
  };
  let host: string;
  let portText: string;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0 || text[close + 1] !== ':') return fail('unclosed IPv6 bracket or missing port');
    host = text.slice(1, close);
    portText = text.slice(close + 2);
    if (isIP(host) !== 6) return fail('not an IPv6 address in brackets');
  } else {
    const colon = text.lastIndexOf(':');
    if (colon <= 0) return fail('missing port');
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host.includes(':')) return fail('IPv6 address without brackets');
    if (isIP(host) === 0 && !HOSTNAME.test(host)) return fail('not a host name');
    if (isIP(host) === 0 && endsInNumber(host)) return fail('not a canonical IPv4 address');
  }
  if (!/^\d{1,5}$/.test(portText)) return fail('bad port');
  const port = Number(portText);
  if (port < 1 || port > 65535) return fail('port out of range');
  return { host: host.toLowerCase(), port };
}
