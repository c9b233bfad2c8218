/**
 * What the doctor adds to a failure that the client alone cannot know: the certificate seen before an upgrade
 * failed, interception proven by a direct comparison, and who answered a refused upgrade.
 */
import type { CertSummary } from '../dial/interception.js';
import { WsviaError } from '../errors.js';
import { getHeader } from '../protocol/headers.js';
import { answeredByInterceptor } from './advice.js';
import type { InterceptionFinding } from './interception-check.js';
import type { DoctorStep } from './report.js';
import type { Transcript } from './transcript.js';

/**
 * The certificate as the trace saw it, for a failure after TLS completed (a refused upgrade): subject and issuer
 * only, which is what the interception check needs when no fingerprint is known.
 */
export function certificateFromTrace(t: Transcript): CertSummary | undefined {
  const tls = t.find('tls', (e) => e.to === 'server');
  if (!tls || tls.event.issuer === undefined) return undefined;
  const subject = tls.event.subject ?? '';
  return {
    subject,
    issuer: tls.event.issuer,
    validFrom: '',
    validTo: '',
    fingerprint256: '',
    selfSigned: subject === tls.event.issuer,
  };
}

/** TLS_UNTRUSTED through a proxy whose certificate differs from the direct one: it is interception. */
export function interceptedError(e: WsviaError, i: InterceptionFinding): WsviaError {
  const why = i.product ? `its issuer names ${i.product}` : 'a direct connection sees another certificate';
  return new WsviaError(
    'TLS_INTERCEPTED',
    `${e.proxy ?? 'the proxy'} intercepts TLS to ${e.target ?? 'the server'}: the certificate is issued by ${i.issuer} (${why}), which is not trusted`,
    {
      hop: e.hop,
      ...(e.proxy === undefined ? {} : { proxy: e.proxy }),
      ...(e.target === undefined ? {} : { target: e.target }),
      ...(e.details === undefined ? {} : { details: { ...e.details, interceptor: i.product ?? null } }),
      hint: "trust the proxy's CA with --ca FILE (ask its administrator for it), or ask for an inspection exception",
      cause: e,
    },
  );
}

/** Says who answered a refused upgrade: the server, an intermediary (Server, Via), or the interceptor itself. */
export function explainUpgrade(
  steps: DoctorStep[],
  e: WsviaError,
  i: InterceptionFinding | undefined,
): string {
  const last = steps[steps.length - 1];
  if (!last || last.step !== 'upgrade') return e.summary;
  const a = e.answer;
  const status = a?.statusLine.replace(/^HTTP\/\d\.\d /, '') ?? '?';
  const server = a?.headers ? getHeader(a.headers, 'server') : undefined;
  const via = a?.headers ? getHeader(a.headers, 'via') : undefined;
  const excerpt = a?.bodyExcerpt ? `: "${a.bodyExcerpt}"` : '';
  let detail: string;
  if (answeredByInterceptor(e, i)) {
    detail = `the intercepting proxy${i?.product ? ` (${i.product})` : ''} answered the upgrade itself, not the server: "${status}"${excerpt}`;
  } else {
    const who = [server ? `Server: ${server}` : '', via ? `Via: ${via}` : ''].filter((x) => x).join(', ');
    detail = `${e.summary}${who ? ` (answered by ${who})` : ''}${excerpt}`;
  }
  steps[steps.length - 1] = { ...last, detail };
  return detail;
}
