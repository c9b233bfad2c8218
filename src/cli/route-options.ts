/** The route flags `wsvia connect` and `wsvia route` share, with curl's names and meanings. */
import type { DialOptions } from '../dial/options.js';
import { UsageError } from './output.js';

export const ROUTE_FLAGS = {
  proxy: { type: 'string', short: 'x' },
  'no-proxy': { type: 'boolean' },
  noproxy: { type: 'string' },
  preproxy: { type: 'string', multiple: true },
  pac: { type: 'string' },
  wpad: { type: 'boolean' },
  'wpad-domain': { type: 'string', multiple: true },
  socks4: { type: 'string' },
  socks4a: { type: 'string' },
  socks5: { type: 'string' },
  'socks5-hostname': { type: 'string' },
  'proxy-user': { type: 'string', short: 'U' },
  'proxy-anyauth': { type: 'boolean' },
  'proxy-basic': { type: 'boolean' },
  'proxy-digest': { type: 'boolean' },
  'proxy-ntlm': { type: 'boolean' },
  'proxy-negotiate': { type: 'boolean' },
} as const;

export const ROUTE_USAGE = `route and proxy (curl's names):
  -x, --proxy URL            proxy: http://, https://, socks4://, socks4a://, socks5://, socks5h://
                             (user:pass@ allowed); default from the environment (wss: https_proxy,
                             ws: http_proxy, then all_proxy; NO_PROXY honoured)
      --socks5-hostname H:P  = --proxy socks5h://H:P (the proxy resolves names)
      --socks5 H:P           = --proxy socks5://H:P (names resolved here)
      --socks4 H:P, --socks4a H:P   the same for SOCKS4 (local names) and SOCKS4a (names at the proxy)
      --preproxy URL         reach the proxy (or the target) through this proxy first; repeatable: a chain
      --pac URL|FILE         choose the route with this PAC file (FindProxyForURL); entries tried in order,
                             a failing proxy skipped for 5 minutes
      --wpad                 find the PAC file by WPAD: http://wpad.DOMAIN/wpad.dat for the search domains of
                             /etc/resolv.conf and their parents (never wpad.TLD); none found: direct
      --wpad-domain DOMAIN   search this domain instead of resolv.conf's (repeatable; implies --wpad)
      --no-proxy             ignore the environment's proxy variables: connect directly
      --noproxy LIST         hosts not to proxy (NO_PROXY syntax: names, .suffixes, IPs, CIDRs, host:port, *)
  -U, --proxy-user USER:PASS proxy credentials (Negotiate, Digest, NTLM or Basic for HTTP proxies, the strongest offered;
                             username/password for SOCKS5; the user id for SOCKS4)
      --proxy-anyauth        pick the strongest scheme the proxy offers (the default): Negotiate (with -U :),
                             Digest, NTLM, Basic
      --proxy-basic, --proxy-digest, --proxy-ntlm   answer only these schemes (combinable); --proxy-basic
                             alone sends Basic with the first CONNECT, as curl does (no 407 round trip)
      --proxy-negotiate      Negotiate (Kerberos/SPNEGO) with the ticket from kinit (curl: --proxy-negotiate -U :);
                             needs the optional kerberos package
`;

interface RouteValues {
  proxy?: string | undefined;
  'no-proxy'?: boolean | undefined;
  noproxy?: string | undefined;
  preproxy?: string[] | undefined;
  pac?: string | undefined;
  wpad?: boolean | undefined;
  'wpad-domain'?: string[] | undefined;
  socks4?: string | undefined;
  socks4a?: string | undefined;
  socks5?: string | undefined;
  'socks5-hostname'?: string | undefined;
  'proxy-user'?: string | undefined;
  'proxy-anyauth'?: boolean | undefined;
  'proxy-basic'?: boolean | undefined;
  'proxy-digest'?: boolean | undefined;
  'proxy-ntlm'?: boolean | undefined;
  'proxy-negotiate'?: boolean | undefined;
}

/** The DialOptions the route flags ask for; contradictions are usage errors. */
export function routeOptionsFrom(values: RouteValues): DialOptions {
  const socks = (['socks4', 'socks4a', 'socks5', 'socks5-hostname'] as const)
    .filter((k) => values[k] !== undefined)
    .map(
      (k) =>
        `${k === 'socks5-hostname' ? 'socks5h' : k}://${(values[k] as string).replace(/^[a-z0-9]+:\/\//i, '')}`,
    );
  const proxies = [...(values.proxy === undefined ? [] : [values.proxy]), ...socks];
  if (proxies.length > 1)
    throw new UsageError('give one of --proxy, --socks4, --socks4a, --socks5, --socks5-hostname');
  if (proxies.length > 0 && values['no-proxy'])
    throw new UsageError('--proxy and --no-proxy contradict each other');
  if (values.pac !== undefined && (proxies.length > 0 || values['no-proxy']))
    throw new UsageError('--pac chooses the proxy: drop --proxy/--no-proxy');
  const wpadDomains = values['wpad-domain'] ?? [];
  const wpad = values.wpad === true || wpadDomains.length > 0;
  if (wpad && (values.pac !== undefined || proxies.length > 0 || values['no-proxy']))
    throw new UsageError('--wpad finds the proxy: drop --pac/--proxy/--no-proxy');
  const schemes = (['basic', 'digest', 'ntlm', 'negotiate'] as const).filter((k) => values[`proxy-${k}`]);
  if (schemes.length > 0 && values['proxy-anyauth'])
    throw new UsageError(
      '--proxy-anyauth allows every scheme: drop --proxy-basic/--proxy-digest/--proxy-ntlm/--proxy-negotiate',
    );
  const preproxy = values.preproxy ?? [];
  return {
    ...(schemes.length > 0 ? { proxyAuthSchemes: schemes } : {}),
    ...(values['no-proxy']
      ? { proxy: false as const }
      : proxies.length > 0
        ? { proxy: proxies[0] as string }
        : {}),
    ...(values.noproxy !== undefined ? { noProxy: values.noproxy } : {}),
    ...(preproxy.length > 0 ? { preproxy } : {}),
    ...(values.pac !== undefined ? { pac: values.pac } : {}),
    ...(wpad ? { wpad: wpadDomains.length > 0 ? { domains: wpadDomains } : true } : {}),
    ...(values['proxy-user'] !== undefined ? { proxyAuth: values['proxy-user'] } : {}),
  };
}
