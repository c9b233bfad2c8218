/**
 * `runDoctor(url, options)`: runs the path `connect()` runs, with the same options, route choice, dial and
 * errors, and explains it step by step: route, dns, tcp, proxy, tls, upgrade, roundtrip, and with an idle probe how
 * long the path lets a WebSocket stay silent.
 */
import type WebSocket from 'ws';
import { connect, connectInfo, type ConnectOptions } from '../client/connect.js';
import { resolveRoute, toDialTarget, type DialTarget } from '../dial/dial.js';
import type { CertSummary } from '../dial/interception.js';
import { isWsviaError, WsviaError } from '../errors.js';
import { getHeader } from '../protocol/headers.js';
import { redactUrl } from '../observe/redact.js';
import type { RouteDecision } from '../route/choose.js';
import { adviceFor, answeredByInterceptor, unavailableCause } from './advice.js';
import { likelyCulprits, recommendedPingSeconds } from './culprits.js';
import { diffHeaders, isEmptyDiff } from './header-diff.js';
import { probeIdle } from './idle-probe.js';
import { checkInterception, presentedChain, type InterceptionFinding } from './interception-check.js';
import { pathSteps } from './path-steps.js';
import type { DoctorReport, DoctorStep, IdleResult } from './report.js';
import { Inbox, mirrorOf, roundtrip } from './roundtrip.js';
import { scrubReport, secretsOf } from './secrets.js';
import { requestFromText, Transcript } from './transcript.js';

export interface DoctorOptions extends ConnectOptions {
  /** Run the idle probe for up to this many seconds (off by default). */
  readonly idleProbeSeconds?: number;
  /** Milliseconds to wait for the roundtrip message to come back (default 5000). */
  readonly roundtripTimeout?: number;
  /** Milliseconds to wait for an idle probe's pong (default 2000). */
  readonly idlePongTimeout?: number;
  /** Compare the certificate seen through a proxy with a direct connection's (default true). */
  readonly compareDirect?: boolean;
  readonly onIdleProgress?: (elapsedMs: number, totalMs: number) => void;
}

/**
 * Diagnoses the path to a WebSocket URL. Never rejects for a network failure: the failure is the report.
 *
 * @example
 * const report = await runDoctor('wss://echo.example/', { proxy: 'http://proxy.corp:3128' });
 * if (!report.ok) console.log(report.code, report.summary, report.advice);
 */
export async function runDoctor(url: string, options: DoctorOptions = {}): Promise<DoctorReport> {
  const {
    idleProbeSeconds,
    roundtripTimeout,
    idlePongTimeout,
    compareDirect,
    onIdleProgress,
    ping: _ping,
    ...connectOptions
  } = options;
  const transcript = new Transcript();
  let target: DialTarget | undefined;
  let route: RouteDecision | undefined;
  let ws: WebSocket | undefined;
  let error: WsviaError | undefined;
  try {
    target = toDialTarget(url);
    route = resolveRoute(target, connectOptions);
    ws = await connect(url, { ...connectOptions, route, trace: transcript.callback(options.trace) });
  } catch (e) {
    if (!isWsviaError(e)) throw e;
    error = e;
  }
  const failedAt = transcript.now();
  // Listen from the first moment: the mirror report is the first message and may already be on its way.
  const inbox = ws ? new Inbox(ws) : undefined;
  const secrets = secretsOf(connectOptions, route, url);
  const shownUrl = redactUrl(url);
  if (!target) {
    const e = error as WsviaError;
    return scrubReport(
      {
        ok: false,
        code: e.code,
        summary: e.summary,
        steps: [{ step: 'route', ok: false, ms: 0, detail: e.summary }],
        idle: undefined,
        advice: e.hint ? [e.hint] : [],
      },
      secrets,
    );
  }

  const certificate =
    (ws ? connectInfo(ws)?.certificate : undefined) ??
    (error?.details?.certificate as CertSummary | undefined) ??
    certificateFromTrace(transcript);
  const chain = ws ? presentedChain(ws) : [];
  let interception: InterceptionFinding | undefined;
  if (route?.proxy && target.tls && certificate && compareDirect !== false) {
    interception = await checkInterception(target, certificate, options);
  }
  if (error?.code === 'TLS_UNTRUSTED' && interception?.intercepted)
    error = interceptedError(error, interception);

  const steps: DoctorStep[] = pathSteps(transcript, {
    url: new URL(url),
    target,
    route,
    error,
    failedAt,
    chain,
    certificate,
    interception,
  });
  const advice: string[] = [];
  let summary: string;

  if (error) {
    summary = error.code === 'UPGRADE_REJECTED' ? explainUpgrade(steps, error, interception) : error.summary;
    if (error.code === 'PROXY_UNAVAILABLE' && unavailableCause(error) === 'capacity')
      summary += ': a capacity problem, the proxy has no tunnel left';
    advice.push(...adviceFor(error, target, interception));
    return scrubReport({ ok: false, code: error.code, summary, steps, idle: undefined, advice }, secrets);
  }

  const open = ws as WebSocket;
  const rt = await roundtrip(open, inbox as Inbox, roundtripTimeout ?? 5000);
  const rtStep = roundtripStep(rt, (inbox as Inbox).messages, transcript);
  steps.push(rtStep.step);
  if (open.readyState === open.OPEN) open.close(1000);
  open.terminate();
  if (rtStep.error) {
    return scrubReport(
      {
        ok: false,
        code: rtStep.error.code,
        summary: rtStep.error.summary,
        steps,
        idle: undefined,
        advice: rtStep.error.hint ? [rtStep.error.hint] : [],
      },
      secrets,
    );
  }

  if (interception?.intercepted) {
    advice.push(
      `warning: TLS to ${target.host} is inspected${interception.product ? ` by ${interception.product}` : ''} (certificate issued by ${interception.issuer}); it works because that CA is trusted here, and the gateway can read and alter every message`,
    );
  }
  advice.push(...rtStep.advice);

  let idle: IdleResult | undefined;
  if (idleProbeSeconds !== undefined) {
    const started = performance.now();
    const r = await probeIdle({
      seconds: idleProbeSeconds,
      open: () => connect(url, { ...connectOptions, ...(route ? { route } : {}) }),
      ...(idlePongTimeout === undefined ? {} : { pongTimeout: idlePongTimeout }),
      ...(onIdleProgress ? { onProgress: onIdleProgress } : {}),
    });
    idle = { cutoffSeconds: r.cutoffSeconds, survivedSeconds: r.survivedSeconds, how: r.how };
    const failedToOpen = r.probes.filter((p) => p.kind === 'not-opened').length;
    const opened = r.probes.length - failedToOpen;
    steps.push({
      step: 'idle',
      ok: true,
      ms: Math.round(performance.now() - started),
      detail:
        opened === 0
          ? `none of the ${r.probes.length} probe connections opened: the path refuses parallel WebSockets`
          : r.cutoffSeconds === null
            ? `${opened} silent WebSockets, up to ${idleProbeSeconds} s: none was cut${failedToOpen ? ` (${failedToOpen} did not open)` : ''}`
            : `silent WebSockets are cut after ${r.cutoffSeconds} s (${r.how}); ${r.survivedSeconds} s of silence survived`,
      ...(r.cutoffSeconds === null && failedToOpen === 0 ? {} : { warning: true }),
      more: r.probes.map(
        (p) =>
          `silent ${p.span} s: ${p.kind === 'cut' ? `cut after ${p.cutAfter ?? '?'} s (${p.how ?? '?'})` : p.kind === 'not-opened' ? `did not open (${p.error ?? '?'})` : p.kind}`,
      ),
    });
    if (failedToOpen > 0) {
      const codes = [...new Set(r.probes.map((p) => p.error).filter((x) => x !== undefined))].join(', ');
      advice.push(
        `${failedToOpen} of ${r.probes.length} parallel probe connections did not open (${codes}): the path limits concurrent WebSockets (a proxy's tunnel limit?), so the idle result is ${opened === 0 ? 'unknown' : 'partial'}`,
      );
    }
    if (r.cutoffSeconds !== null) {
      const ping = recommendedPingSeconds(r.cutoffSeconds);
      advice.push(
        `send a ping every ${ping} s to keep connections alive: wsvia connect --ping ${ping}, or connect(url, { ping: { interval: ${ping * 1000} } })`,
      );
      const culprits = likelyCulprits(r.cutoffSeconds);
      advice.push(
        culprits.length
          ? `likely culprit: ${culprits.join(', or ')}`
          : `no well-known default is ${r.cutoffSeconds} s: look for a configured timeout (nginx proxy_read_timeout, HAProxy timeout tunnel, a load balancer's idle timeout)`,
      );
    }
  }

  const via = route?.proxy ? ` through proxy ${route.proxy.display}` : ' directly';
  const warnings = [
    ...(interception?.intercepted
      ? [`TLS inspected${interception.product ? ` by ${interception.product}` : ''}`]
      : []),
    ...(idle?.cutoffSeconds != null ? [`silent connections cut after ${idle.cutoffSeconds} s`] : []),
  ];
  summary = `a WebSocket to ${shownUrl} works${via}${warnings.length ? `, but: ${warnings.join('; ')}` : ''}`;
  return scrubReport({ ok: true, code: null, summary, steps, idle, advice }, secrets);
}

/**
 * The certificate as the trace saw it, for a failure after TLS completed (a refused upgrade): subject and issuer
 * only, which is what the interception check needs when no fingerprint is known.
 */
function certificateFromTrace(t: Transcript): CertSummary | undefined {
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
function interceptedError(e: WsviaError, i: InterceptionFinding): WsviaError {
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
function explainUpgrade(steps: DoctorStep[], e: WsviaError, i: InterceptionFinding | undefined): string {
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

function roundtripStep(
  rt: Awaited<ReturnType<typeof roundtrip>>,
  messages: readonly string[],
  t: Transcript,
): { step: DoctorStep; error?: WsviaError; advice: string[] } {
  const advice: string[] = [];
  if (rt.closed && !rt.echoed) {
    const error = new WsviaError(
      'WEBSOCKET_CLOSED',
      'the connection closed right after it opened, before a message came back',
      {
        hop: 'websocket',
        hint: 'the server or an intermediary closes new WebSockets: check the server log, or an intermediary that allows only short requests',
      },
    );
    return { step: { step: 'roundtrip', ok: false, ms: rt.waitedMs, detail: error.summary }, error, advice };
  }
  const more: string[] = [];
  let mirrorNote = '';
  const mirror = mirrorOf(messages);
  const sentText = t.find('head', (e) => e.from === 'client' && e.to === 'server')?.event.text;
  const sent = sentText ? requestFromText(sentText) : undefined;
  if (mirror && sent) {
    const d = diffHeaders(sent.headers, mirror.headers);
    if (isEmptyDiff(d)) mirrorNote = '; the server received the upgrade request headers as sent';
    else {
      const parts = [
        d.removed.length ? `removed ${d.removed.join(', ')}` : '',
        d.added.length ? `added ${d.added.map((h) => h.split(':')[0]).join(', ')}` : '',
        d.changed.length ? `changed ${d.changed.map((h) => h.split(':')[0]).join(', ')}` : '',
      ].filter((x) => x);
      mirrorNote = `; intermediaries ${parts.join('; ')}`;
      for (const h of d.removed) more.push(`removed: ${h}`);
      for (const h of d.added) more.push(`added: ${h}`);
      for (const h of d.changed) more.push(`changed: ${h}`);
      if (d.added.some((h) => /^proxy-authorization:/i.test(h)) || d.removed.length + d.added.length > 0) {
        advice.push(
          `intermediaries rewrote the upgrade request (${parts.join('; ')}): fine if expected (X-Forwarded-For from a reverse proxy), a concern if a header the server needs went missing`,
        );
      }
    }
    if (mirror.tls)
      more.push(
        `the server saw TLS ${mirror.tls.protocol ?? '?'}, SNI ${mirror.tls.servername || '(none)'}, ALPN ${mirror.tls.alpn || '(none)'}`,
      );
    more.push(
      `the server saw the request from ${mirror.remoteAddress ?? '?'}: ${mirror.method} ${mirror.url}`,
    );
  }
  if (rt.echoed) {
    return {
      step: {
        step: 'roundtrip',
        ok: true,
        ms: rt.ms ?? 0,
        detail: `1 text message sent and echoed back in ${rt.ms ?? 0} ms${mirrorNote}`,
        more,
      },
      advice,
    };
  }
  return {
    step: {
      step: 'roundtrip',
      ok: true,
      warning: true,
      ms: rt.waitedMs,
      detail: `1 text message sent; ${rt.other ? 'another message came back: the server does not echo' : `nothing came back within ${Math.round(rt.waitedMs)} ms: the server does not echo (a wsvia echo --mirror target shows more)`}${mirrorNote}`,
      more,
    },
    advice,
  };
}
