/**
 * What to do about a failure, as a network engineer would write it in a ticket: the error's own hint first, then
 * what the doctor saw that the client alone cannot know (who answered, whether the path is inspected).
 */
import type { WsviaError } from '../errors.js';
import { getHeader, getHeaderValues } from '../protocol/headers.js';
import { parseProxyStatus } from '../protocol/proxy-status.js';
import type { DialTarget } from '../dial/dial.js';
import type { InterceptionFinding } from './interception-check.js';

/** Why a proxy answered 502/503/504: its own upstream (the destination) or its capacity. */
export function unavailableCause(e: WsviaError): 'destination' | 'capacity' | 'unknown' {
  const headers = e.answer?.headers ?? [];
  const squid = getHeader(headers, 'x-squid-error') ?? '';
  const ps = parseProxyStatus(getHeaderValues(headers, 'proxy-status'));
  const errors = ps.map((p) => p.params.error ?? '');
  if (errors.some((x) => x === 'connection_limit_reached')) return 'capacity';
  if (
    /ERR_(CONNECT_FAIL|DNS_FAIL|CANNOT_FORWARD|READ_TIMEOUT)/.test(squid) ||
    errors.some((x) => /^(dns_|destination_|connection_(refused|timeout|terminated))/.test(x))
  )
    return 'destination';
  if (e.answer?.status === 503) return 'capacity';
  return 'unknown';
}

/** An upgrade refused by the interceptor itself (it failed its own TLS to the server), rather than the server. */
export function answeredByInterceptor(e: WsviaError, i: InterceptionFinding | undefined): boolean {
  if (e.code !== 'UPGRADE_REJECTED' || !i?.intercepted) return false;
  const status = e.answer?.status ?? 0;
  return status >= 500 || /certificate|handshake|tls|ssl/i.test(e.answer?.bodyExcerpt ?? '');
}

export function adviceFor(
  e: WsviaError,
  target: DialTarget,
  interception: InterceptionFinding | undefined,
): string[] {
  const advice: string[] = [];
  const status = e.answer?.status;
  switch (e.code) {
    case 'PROXY_AUTH_REQUIRED': {
      const offered = getHeaderValues(e.answer?.headers ?? [], 'proxy-authenticate')
        .map((v) => v.split(/\s/)[0] ?? '')
        .filter((x) => x);
      const schemes = [...new Set(offered)];
      if (schemes.length) advice.push(`the proxy offers: ${schemes.join(', ')}`);
      if (schemes.length && !schemes.some((s) => /^(basic|digest|ntlm|negotiate)$/i.test(s)))
        advice.push('wsvia answers Basic, Digest, NTLM and Negotiate: none of them is offered here');
      advice.push(
        'pass credentials with --proxy-user USER:PASS, or in the proxy URL (-x http://USER:PASS@host:port, or https_proxy=http://USER:PASS@host:port); percent-encode @, / and # in the password (a : needs no encoding)',
      );
      break;
    }
    case 'PROXY_REFUSED':
      if (status === 403 && target.port !== 443) {
        advice.push(
          `the proxy refuses CONNECT to port ${target.port}: most allow only 443 (squid: "http_access deny CONNECT !SSL_ports"). Serve the WebSocket as wss:// on port 443, or ask the proxy administrator to allow port ${target.port}`,
        );
      } else if (e.hint) advice.push(e.hint);
      break;
    case 'PROXY_UNAVAILABLE': {
      const cause = unavailableCause(e);
      if (cause === 'capacity')
        advice.push(
          `a capacity problem: the proxy answered ${status ?? 503} because it has no tunnel left (its CONNECT pool or connection limit is exhausted); retry later, close idle tunnels, or ask its administrator to raise the limit`,
        );
      else if (cause === 'destination')
        advice.push(
          `the proxy is up but could not reach ${target.host}:${target.port}: check that the server runs and that the proxy's network can reach it`,
        );
      else if (e.hint) advice.push(e.hint);
      break;
    }
    case 'TLS_INTERCEPTED':
    case 'TLS_UNTRUSTED':
      if (interception?.intercepted) {
        advice.push(
          `TLS is intercepted on this path${interception.product ? ` by ${interception.product}` : ''} (certificates issued by ${interception.issuer}); to go through it, get that CA certificate from the proxy's administrator and pass --ca FILE (it replaces the default CAs; NODE_EXTRA_CA_CERTS adds to them), or ask for an inspection exception for ${target.host}`,
        );
      } else if (e.hint) advice.push(e.hint);
      break;
    case 'UPGRADE_REJECTED':
      if (answeredByInterceptor(e, interception)) {
        advice.push(
          `the intercepting proxy${interception?.product ? ` (${interception.product})` : ''} answered the upgrade itself: it failed its own TLS connection to the server (${e.answer?.bodyExcerpt ?? 'see its answer'}). Ask its administrator to trust the server's certificate or to add an inspection exception for ${target.host}`,
        );
      } else if (status === 200 || status === 400 || status === 426) {
        advice.push(
          `a ${status} where 101 was expected usually means an intermediary dropped the Upgrade and Connection headers: nginx needs "proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection \\"upgrade\\";", squid needs "http_upgrade_request_protocols WebSocket allow all"`,
        );
      } else if (status === 502 || status === 504) {
        const server = getHeader(e.answer?.headers ?? [], 'server');
        advice.push(
          `${server ? `the gateway in front of the server (Server: ${server})` : 'a gateway in front of the server'} answered ${status} itself: the WebSocket server behind it is down or did not answer in time (nginx: proxy_connect_timeout, proxy_read_timeout; check its error log)`,
        );
      } else if (e.hint) advice.push(e.hint);
      break;
    case 'TLS_NOT_SPOKEN':
      if (e.hint) advice.push(e.hint);
      if (e.details?.interceptingGateway)
        advice.push(
          'other clients report this as "wrong version number" (OpenSSL) because the gateway answered in plain HTTP where TLS was expected',
        );
      break;
    default:
      if (e.hint) advice.push(e.hint);
  }
  return advice;
}
