/**
 * `runDoctor(url, options)`: runs the path `connect()` runs, with the same options, route choice, dial and
 * errors, and explains it step by step: route, dns, tcp, proxy, tls, upgrade, roundtrip, and with an idle probe how
 * long the path lets a WebSocket stay silent.
 */
import type WebSocket from 'ws';
import { connect, connectInfo, type ConnectOptions } from '../client/connect.js';
import { resolveRoute, toDialTarget, type DialTarget } from '../dial/dial.js';
import type { CertSummary } from '../dial/interception.js';
import { isWsviaError, type WsviaError } from '../errors.js';
import { redactUrl } from '../observe/redact.js';
import type { RouteDecision } from '../route/choose.js';
import { adviceFor, unavailableCause } from './advice.js';
import { certificateFromTrace, explainUpgrade, interceptedError } from './explain.js';
import { idleSpans, probeIdle, probeLine, summarizeProbes } from './idle-probe.js';
import { idleStep } from './idle-step.js';
import { checkInterception, presentedChain, type InterceptionFinding } from './interception-check.js';
import { pathSteps } from './path-steps.js';
import type { DoctorReport, DoctorStep, IdleProgress, IdleResult } from './report.js';
import { Inbox, roundtrip } from './roundtrip.js';
import { roundtripStep } from './roundtrip-step.js';
import { scrubReport, scrubStep, secretsOf } from './secrets.js';
import { Transcript } from './transcript.js';

export interface DoctorOptions extends ConnectOptions {
  /** Run the idle probe for up to this many seconds (off by default). */
  readonly idleProbeSeconds?: number;
  /** Milliseconds to wait for the roundtrip message to come back (default 5000). */
  readonly roundtripTimeout?: number;
  /** Milliseconds to wait for an idle probe's pong (default 2000). */
  readonly idlePongTimeout?: number;
  /** Compare the certificate seen through a proxy with a direct connection's (default true). */
  readonly compareDirect?: boolean;
  /** Called as the idle probe advances (elapsed and total ms), e.g. for a progress bar. */
  readonly onIdleProgress?: (elapsedMs: number, totalMs: number) => void;
  /** Told each step as soon as it is known (secrets taken out), for a report printed as it happens. */
  readonly onStep?: (step: DoctorStep) => void;
  /** Told when the idle probe starts and as each of its connections finishes, with the result so far. */
  readonly onIdleProbe?: (progress: IdleProgress) => void;
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
    onStep,
    onIdleProbe,
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
    // A PAC file, WPAD or a selector may offer several routes and fail over between them: then connect()
    // chooses, and the report shows the route it took. Otherwise the one route is decided here and pinned.
    const chooses =
      connectOptions.route === undefined &&
      (connectOptions.pac !== undefined ||
        connectOptions.proxySelector !== undefined ||
        (connectOptions.wpad !== undefined && connectOptions.wpad !== false));
    if (!chooses) route = resolveRoute(target, connectOptions);
    ws = await connect(url, {
      ...connectOptions,
      ...(route ? { route } : {}),
      trace: transcript.callback(options.trace),
    });
    route ??= connectInfo(ws)?.route;
  } catch (e) {
    if (!isWsviaError(e)) throw e;
    error = e;
  }
  route ??= lastRouteTried(transcript);
  const failedAt = transcript.now();
  // Listen from the first moment: the mirror report is the first message and may already be on its way.
  const inbox = ws ? new Inbox(ws) : undefined;
  const secrets = secretsOf(connectOptions, route, url);
  const shownUrl = redactUrl(url);
  const steps: DoctorStep[] = [];
  const emit = (s: DoctorStep): void => {
    steps.push(s);
    onStep?.(scrubStep(s, secrets));
  };
  if (!target) {
    const e = error as WsviaError;
    emit({ step: 'route', ok: false, ms: 0, detail: e.summary });
    return scrubReport(
      {
        ok: false,
        code: e.code,
        summary: e.summary,
        steps,
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

  const found = pathSteps(transcript, {
    url: new URL(url),
    target,
    route,
    error,
    failedAt,
    chain,
    certificate,
    interception,
  });
  for (const s of found) emit(s);
  const advice: string[] = [];
  let summary: string;

  if (error) {
    summary = error.code === 'UPGRADE_REJECTED' ? explainUpgrade(steps, error, interception) : error.summary;
    if (error.code === 'PROXY_UNAVAILABLE' && unavailableCause(error) === 'capacity')
      summary += ': a capacity problem, the proxy has no tunnel left';
    advice.push(...adviceFor(error, target, interception));
    const status = error.answer?.status;
    return scrubReport(
      {
        ok: false,
        code: error.code,
        ...(status === undefined ? {} : { status }),
        summary,
        steps,
        idle: undefined,
        advice,
      },
      secrets,
    );
  }

  const open = ws as WebSocket;
  const rt = await roundtrip(open, inbox as Inbox, roundtripTimeout ?? 5000);
  const rtStep = roundtripStep(rt, (inbox as Inbox).messages, transcript);
  emit(rtStep.step);
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
    onIdleProbe?.({ done: 0, total: idleSpans(idleProbeSeconds).length, soFar: summarizeProbes([]) });
    const r = await probeIdle({
      seconds: idleProbeSeconds,
      open: () => connect(url, { ...connectOptions, ...(route ? { route } : {}) }),
      ...(idlePongTimeout === undefined ? {} : { pongTimeout: idlePongTimeout }),
      ...(onIdleProgress ? { onProgress: onIdleProgress } : {}),
      ...(onIdleProbe
        ? {
            onOutcome: (p, finished, total) =>
              onIdleProbe({
                done: finished.length,
                total,
                line: probeLine(p),
                soFar: summarizeProbes(finished),
              }),
          }
        : {}),
    });
    idle = { cutoffSeconds: r.cutoffSeconds, survivedSeconds: r.survivedSeconds, how: r.how };
    const explained = idleStep(r, idleProbeSeconds, Math.round(performance.now() - started));
    emit(explained.step);
    advice.push(...explained.advice);
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

/** The last route the client tried, from its trace (a PAC or selector route that failed). */
function lastRouteTried(transcript: Transcript): RouteDecision | undefined {
  const routes = transcript.records.map((r) => r.event).filter((e) => e.type === 'route');
  const last = routes[routes.length - 1];
  if (!last || last.type !== 'route') return undefined;
  return { proxy: null, reason: last.text, source: 'selector' };
}
