/**
 * Known TLS-intercepting products, recognized by the issuer of the certificate a client sees through them.
 * The names are what their generated CAs put in the issuer's CN, O or OU.
 */
import type { PeerCertificate } from 'node:tls';

const INTERCEPTORS: readonly [RegExp, string][] = [
  [/mitmproxy/i, 'mitmproxy'],
  [/zscaler/i, 'Zscaler'],
  [/mcafee|skyhigh/i, 'McAfee/Skyhigh Web Gateway'],
  [/blue ?coat|symantec.*(proxy|ssl visibility)|proxysg/i, 'Blue Coat/Symantec ProxySG'],
  [/fortinet|fortigate/i, 'Fortinet FortiGate'],
  [/palo ?alto/i, 'Palo Alto Networks'],
  [/netskope/i, 'Netskope'],
  [/cisco umbrella|opendns/i, 'Cisco Umbrella'],
  [/cloudflare (for teams|gateway)|gateway ca - cloudflare|cloudflare.*zero trust/i, 'Cloudflare Gateway'],
  [/squid/i, 'Squid ssl-bump'],
  [/sophos/i, 'Sophos'],
  [/forcepoint|websense/i, 'Forcepoint'],
  [/check ?point/i, 'Check Point'],
  [/charles proxy/i, 'Charles Proxy'],
  [/fiddler|do_not_trust/i, 'Fiddler'],
];

/** The product whose name the issuer carries, if any. */
export function knownInterceptor(issuer: string): string | undefined {
  for (const [re, name] of INTERCEPTORS) if (re.test(issuer)) return name;
  return undefined;
}

export interface CertSummary {
  readonly subject: string;
  readonly issuer: string;
  readonly validFrom: string;
  readonly validTo: string;
  readonly fingerprint256: string;
  readonly selfSigned: boolean;
}

function dn(o: Record<string, string | string[] | undefined> | undefined): string {
  if (!o) return '';
  const parts: string[] = [];
  for (const key of ['CN', 'O', 'OU']) {
    const v = o[key];
    if (v !== undefined) parts.push(`${key}=${Array.isArray(v) ? v.join('+') : v}`);
  }
  return parts.join(', ');
}

export function summarizeCertificate(cert: PeerCertificate | undefined): CertSummary | undefined {
  if (!cert || Object.keys(cert).length === 0) return undefined;
  const subject = dn(cert.subject);
  const issuer = dn(cert.issuer);
  return {
    subject,
    issuer,
    validFrom: cert.valid_from,
    validTo: cert.valid_to,
    fingerprint256: cert.fingerprint256,
    selfSigned: subject === issuer,
  };
}
