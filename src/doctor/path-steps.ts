/**
 * The steps of the path, route to upgrade, rebuilt from the trace of one `connect()` attempt and, when it failed,
 * from its error. Each step says what was seen on the wire; the failed one says what answered and where.
 */
import { isIP } from 'node:net';
import type { CertSummary } from '../dial/interception.js';
import type { DialTarget } from '../dial/dial.js';
import type { PeerAnswer, WsviaError } from '../errors.js';
import { formatAuthority } from '../protocol/authority.js';
import { getHeader, getHeaderValues } from '../protocol/headers.js';
import { describeProxyStatus, parseProxyStatus } from '../protocol/proxy-status.js';
import type { ResponseHead } from '../protocol/head.js';
import { parseChallenges, describeSchemes } from '../auth/challenge.js';
import type { RouteDecision } from '../route/choose.js';
import type { InterceptionFinding } from './interception-check.js';
import type { DoctorStep, StepName } from './report.js';
import { requestFromText, responseFromText, type Transcript } from './transcript.js';

export interface PathFacts {
  readonly url: URL;
  readonly target: DialTarget;
  readonly route: RouteDecision | undefined;
  readonly error: WsviaError | undefined;
  /** When the attempt failed (ms since the start). */
  readonly failedAt: number;
  /** The presented chain, leaf first, when TLS to the target completed. */
  readonly chain: readonly CertSummary[];
  /** The leaf: from the open connection, or from a verification error. */
  readonly certificate: CertSummary | undefined;
  readonly interception: InterceptionFinding | undefined;
}

/** The step an error belongs to, from its hop. */
export function stepOfError(e: WsviaError): StepName {
  switch (e.hop) {
    case 'route':
    case 'config':
      return 'route';
    case 'dns':
      return 'dns';
    case 'tcp':
      return 'tcp';
    case 'proxy':
      return 'proxy';
    // The TLS handshake inside a granted tunnel, answered by the gateway in plain HTTP.
    case 'tunnel':
    case 'tls':
      return 'tls';
    case 'upgrade':
    case 'server':
      return 'upgrade';
    case 'websocket':
      return 'roundtrip';
  }
}

const ms1 = (n: number): number => Math.max(0, Math.round(n * 10) / 10);

function statusOf(h: ResponseHead): string {
  return `HTTP/${h.version} ${h.status}${h.reason ? ` ${h.reason}` : ''}`;
}

function answerLines(a: PeerAnswer): string[] {
  return [
    `answer: ${a.statusLine}`,
    ...(a.headers ?? []).map(([k, v]) => `  ${k}: ${v}`),
    ...(a.bodyExcerpt ? [`  body: ${a.bodyExcerpt}`] : []),
  ];
}

function certLine(c: CertSummary): string {
  const validity = c.validFrom ? `, valid ${c.validFrom} to ${c.validTo}` : '';
  return `${c.subject || '(no subject)'} issued by ${c.issuer || '(no issuer)'}${validity}`;
}

/** The facts of a proxy answer worth a line: Via, Proxy-Status, schemes offered, the Squid error. */
function answerFacts(headers: readonly (readonly [string, string])[], body: string | undefined): string[] {
  const facts: string[] = [];
  const schemes = describeSchemes(parseChallenges(getHeaderValues(headers, 'proxy-authenticate')));
  if (schemes) facts.push(`offers ${schemes}`);
  const via = getHeaderValues(headers, 'via').join(', ');
  if (via) facts.push(`Via: ${via}`);
  const ps = parseProxyStatus(getHeaderValues(headers, 'proxy-status'));
  if (ps.length) facts.push(`Proxy-Status: ${describeProxyStatus(ps)}`);
  const squid = getHeader(headers, 'x-squid-error');
  if (squid) facts.push(`X-Squid-Error: ${squid}`);
  if (body) facts.push(`body: "${body}"`);
  return facts;
}

export function pathSteps(t: Transcript, f: PathFacts): DoctorStep[] {
  const steps: DoctorStep[] = [];
  const failed = f.error ? stepOfError(f.error) : undefined;
  const err = f.error;
  let prevEnd = 0;
  const fail = (step: StepName, extra: string[] = []): DoctorStep => ({
    step,
    ok: false,
    ms: ms1(f.failedAt - prevEnd),
    detail: (err as WsviaError).summary,
    more: [...extra, ...(err?.answer ? answerLines(err.answer) : [])],
  });

  // route
  if (!f.route || failed === 'route') {
    steps.push({ step: 'route', ok: false, ms: 0, detail: err?.summary ?? 'no route' });
    return steps;
  }
  steps.push({ step: 'route', ok: true, ms: 0, detail: f.route.reason });

  // dns: of the first hop. Through a proxy, the proxy resolves the target.
  const firstHost = f.route.proxy ? f.route.proxy.host : f.target.host;
  const byProxy = f.route.proxy ? `; the proxy resolves ${f.target.host}` : '';
  const dns = t.find('dns');
  if (failed === 'dns') return [...steps, fail('dns')];
  if (dns) {
    steps.push({
      step: 'dns',
      ok: true,
      ms: ms1(dns.event.ms),
      detail: `${dns.event.host} is ${dns.event.address}${byProxy}`,
    });
    prevEnd = dns.at;
  } else if (isIP(firstHost) !== 0 || t.find('tcp')) {
    steps.push({ step: 'dns', ok: true, ms: 0, detail: `${firstHost} is an address: no lookup${byProxy}` });
  }

  // tcp
  const tcp = t.find('tcp');
  if (failed === 'tcp') return [...steps, fail('tcp')];
  if (!tcp) return steps;
  const tcpMs = tcp.event.ms - (dns?.event.ms ?? 0);
  const addr = tcp.event.address.includes(':') ? `[${tcp.event.address}]` : tcp.event.address;
  steps.push({
    step: 'tcp',
    ok: true,
    ms: ms1(tcpMs),
    detail: `connected to ${tcp.event.to === 'proxy' ? 'the proxy' : 'the server'} at ${addr}:${tcp.event.port}`,
  });
  prevEnd = tcp.at;

  // proxy
  if (f.route.proxy) {
    const proxyTls = t.find('tls', (e) => e.to === 'proxy');
    const sent = t.filter('head', (e) => e.from === 'client' && e.to === 'proxy');
    const answers = t.filter('head', (e) => e.from === 'proxy' && e.to === 'client');
    const rounds = sent.length;
    const more: string[] = [];
    if (proxyTls)
      more.push(
        `tls to the proxy (${ms1(proxyTls.event.ms)} ms): ${proxyTls.event.protocol ?? 'TLS'}, certificate ${proxyTls.event.subject ?? '?'} issued by ${proxyTls.event.issuer ?? '?'}`,
      );
    const offered: string[] = [];
    for (let i = 0; i < Math.max(sent.length, answers.length); i++) {
      const req = sent[i] ? requestFromText(sent[i]?.event.text ?? '') : undefined;
      const res = answers[i] ? responseFromText(answers[i]?.event.text ?? '') : undefined;
      const auth = req ? getHeader(req.headers, 'proxy-authorization') : undefined;
      if (rounds > 1)
        more.push(
          `round ${i + 1}: ${req ? `${req.method} ${req.target}` : 'CONNECT'}${auth ? ` with Proxy-Authorization: ${auth}` : ''} -> ${res ? statusOf(res) : '(no answer)'}`,
        );
      if (res) {
        const s = describeSchemes(parseChallenges(getHeaderValues(res.headers, 'proxy-authenticate')));
        if (s) offered.push(s);
      }
    }
    const roundsText = rounds > 1 ? `; ${rounds} rounds (auth)` : '';
    const start = sent[0]?.at ?? prevEnd;
    if (failed === 'proxy') {
      prevEnd = start;
      const a = err?.answer;
      const s = fail('proxy', more);
      const facts = (a ? answerFacts(a.headers ?? [], a.bodyExcerpt) : []).filter(
        (x) =>
          !(x.startsWith('offers') && s.detail.includes('offers')) &&
          !(x.startsWith('Proxy-Status') && s.detail.includes('Proxy-Status')),
      );
      steps.push({ ...s, detail: `${[s.detail, ...facts].join('; ')}${roundsText}` });
      return steps;
    }
    const last = answers[answers.length - 1];
    if (!last) return steps;
    const head = responseFromText(last.event.text);
    const facts = head ? answerFacts(head.headers, undefined) : [];
    if (offered.length && !facts.some((x) => x.startsWith('offers'))) facts.unshift(`offered ${offered[0]}`);
    steps.push({
      step: 'proxy',
      ok: true,
      ms: ms1(last.at - start),
      detail: `CONNECT ${formatAuthority(f.target)} -> "${head ? statusOf(head) : last.event.text.split('\n')[0]}"${facts.map((x) => `; ${x}`).join('')}${roundsText}`,
      more,
    });
    prevEnd = last.at;
  }

  // tls
  if (f.target.tls) {
    const tls = t.find('tls', (e) => e.to === 'server');
    const i = f.interception;
    const seenBy = i?.intercepted
      ? `; INTERCEPTED${i.product ? ` by ${i.product}` : ''}: issuer ${i.issuer}${i.differsFromDirect ? ', differs from the direct certificate' : ''}`
      : '';
    const chainLines = (f.chain.length ? f.chain : f.certificate ? [f.certificate] : []).map(
      (c, n) => `${n === 0 ? 'certificate' : `  chain ${n}`}: ${certLine(c)}`,
    );
    if (i) chainLines.push(i.direct);
    if (failed === 'tls') {
      const s = fail('tls', chainLines);
      steps.push({
        ...s,
        detail: `${s.detail}${i?.intercepted && !/intercept/i.test(s.detail) ? seenBy : ''}`,
      });
      return steps;
    }
    if (!tls) return steps;
    const leaf = f.certificate;
    steps.push({
      step: 'tls',
      ok: true,
      ms: ms1(tls.event.ms),
      detail: `${tls.event.protocol ?? 'TLS'}, ALPN ${tls.event.alpn || 'none'}, ${leaf ? certLine(leaf) : `${tls.event.subject ?? '?'} issued by ${tls.event.issuer ?? '?'}`}${seenBy}`,
      ...(i?.intercepted ? { warning: true } : {}),
      more: chainLines,
    });
    prevEnd = tls.at;
  }

  // upgrade
  const req = t.find('head', (e) => e.from === 'client' && e.to === 'server');
  const res = t.find('head', (e) => e.from === 'server' && e.to === 'client');
  const reqHead = req ? requestFromText(req.event.text) : undefined;
  const reqLines = req ? req.event.text.split('\n').map((l) => `> ${l}`) : [];
  if (failed === 'upgrade') {
    if (req) prevEnd = req.at;
    steps.push(fail('upgrade', reqLines));
    return steps;
  }
  const more = [...reqLines, ...(res ? res.event.text.split('\n').map((l) => `< ${l}`) : [])];
  if (!req || !res) return steps;
  const resHead = responseFromText(res.event.text);
  const sub = resHead ? getHeader(resHead.headers, 'sec-websocket-protocol') : undefined;
  steps.push({
    step: 'upgrade',
    ok: true,
    ms: ms1(res.at - req.at),
    detail: `${reqHead ? `${reqHead.method} ${reqHead.target}` : 'GET'} -> "${resHead ? statusOf(resHead) : res.event.text.split('\n')[0]}"${sub ? `; subprotocol ${sub}` : ''}`,
    more,
  });
  return steps;
}
