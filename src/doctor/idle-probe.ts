/**
 * The idle probe: how long may a WebSocket stay silent on this path before something cuts it? Several silent
 * connections are opened in parallel, connection i staying silent for span i (spread up to the probe's length).
 * A path that cuts actively (a close frame, a FIN, an RST) shows the cutoff on every connection silent for longer:
 * the time of the cut is measured directly. A path that drops silently (a NAT or firewall that forgets the flow)
 * is found by a ping sent at the end of each span that never gets its pong: the cutoff then lies between the
 * longest span answered and the shortest unanswered, a step of at most 1 s or 10% of the probe.
 */
import type { Socket } from 'node:net';
import type WebSocket from 'ws';
import { isWsviaError } from '../errors.js';
import type { IdleResult } from './report.js';

export interface IdleProbeOptions {
  /** The longest silence to try, in seconds. */
  readonly seconds: number;
  /** Opens one WebSocket along the same path as the diagnosed one. */
  readonly open: () => Promise<WebSocket>;
  /** Milliseconds to wait for a pong before calling the path a black hole (default 2000). */
  readonly pongTimeout?: number;
  /** Called about every 250 ms while waiting. */
  readonly onProgress?: (elapsedMs: number, totalMs: number) => void;
  /** Called as each connection finishes, with every outcome so far (in the order they finished). */
  readonly onOutcome?: (outcome: ProbeOutcome, finished: readonly ProbeOutcome[], total: number) => void;
}

export interface ProbeOutcome {
  /** Planned silence, seconds. */
  readonly span: number;
  readonly kind: 'survived' | 'cut' | 'black-hole' | 'not-opened';
  /** For `cut`: seconds of silence before the cut. */
  readonly cutAfter?: number;
  /** For `cut`: `close frame 1001`, `FIN`, `RST`. */
  readonly how?: string;
  /** For `not-opened`: the error code of the attempt. */
  readonly error?: string;
}

/** Spans to try: evenly spread, at most 1 s or 10% of the probe apart, 2 to 10 connections. */
export function idleSpans(seconds: number): number[] {
  const step = Math.max(1, seconds * 0.1);
  const n = Math.min(10, Math.max(2, Math.ceil(seconds / step)));
  return Array.from({ length: n }, (_, i) => Math.round(((i + 1) * seconds * 10) / n) / 10);
}

function rawSocket(ws: WebSocket): Socket | undefined {
  // `ws` keeps the stream it runs on as `_socket`: the only place a FIN or an RST under the WebSocket shows.
  return (ws as unknown as { _socket?: Socket })._socket;
}

function probeOne(ws: WebSocket, span: number, pongTimeout: number): Promise<ProbeOutcome> {
  return new Promise<ProbeOutcome>((resolve) => {
    const openedAt = performance.now();
    let fin = false;
    let reset: string | undefined;
    let frameCode: number | undefined;
    const socket = rawSocket(ws);
    const onEnd = (): void => {
      fin = true;
    };
    const onError = (e: NodeJS.ErrnoException): void => {
      reset = e.code ?? e.message;
    };
    socket?.once('end', onEnd);
    socket?.on('error', onError);
    // ws reports a received close frame through its receiver before 'close'; 1006 means none came.
    ws.on('error', () => {});
    const timers: { span?: NodeJS.Timeout; pong?: NodeJS.Timeout } = {};
    const finish = (o: ProbeOutcome): void => {
      clearTimeout(timers.span);
      clearTimeout(timers.pong);
      ws.removeAllListeners('close');
      socket?.removeListener('end', onEnd);
      socket?.removeListener('error', onError);
      if (ws.readyState === ws.OPEN) ws.close(1000);
      ws.terminate();
      resolve(o);
    };
    ws.once('close', (code: number) => {
      if (code !== 1006) frameCode = code;
      const after = Math.round((performance.now() - openedAt) / 100) / 10;
      const how =
        frameCode !== undefined
          ? `close frame ${frameCode}`
          : reset
            ? `RST (${reset})`
            : fin
              ? 'FIN'
              : 'closed';
      finish({ span, kind: 'cut', cutAfter: after, how });
    });
    timers.span = setTimeout(() => {
      if (ws.readyState !== ws.OPEN) return;
      ws.once('pong', () => finish({ span, kind: 'survived' }));
      ws.ping();
      timers.pong = setTimeout(() => finish({ span, kind: 'black-hole' }), pongTimeout);
    }, span * 1000);
  });
}

export async function probeIdle(o: IdleProbeOptions): Promise<IdleResult & { probes: ProbeOutcome[] }> {
  const spans = idleSpans(o.seconds);
  const pongTimeout = o.pongTimeout ?? 2000;
  const totalMs = o.seconds * 1000 + pongTimeout;
  const started = performance.now();
  const progress = o.onProgress
    ? setInterval(() => o.onProgress?.(Math.min(totalMs, performance.now() - started), totalMs), 250)
    : undefined;
  const finished: ProbeOutcome[] = [];
  const told = (p: ProbeOutcome): ProbeOutcome => {
    finished.push(p);
    o.onOutcome?.(p, finished, spans.length);
    return p;
  };
  try {
    const probes = await Promise.all(
      spans.map(async (span): Promise<ProbeOutcome> => {
        let ws: WebSocket;
        try {
          ws = await o.open();
        } catch (e) {
          return told({ span, kind: 'not-opened', error: isWsviaError(e) ? e.code : String(e) });
        }
        return told(await probeOne(ws, span, pongTimeout));
      }),
    );
    o.onProgress?.(totalMs, totalMs);
    return { ...summarizeProbes(probes), probes };
  } finally {
    clearInterval(progress);
  }
}

/** One connection's outcome on one line, as the report lists them. */
export function probeLine(p: ProbeOutcome): string {
  const what =
    p.kind === 'cut'
      ? `cut after ${p.cutAfter ?? '?'} s (${p.how ?? '?'})`
      : p.kind === 'not-opened'
        ? `did not open (${p.error ?? '?'})`
        : p.kind;
  return `silent ${p.span} s: ${what}`;
}

/** The cutoff, the longest survived silence and how the cut happened, from the probes' outcomes. */
export function summarizeProbes(probes: readonly ProbeOutcome[]): IdleResult {
  const cuts = probes.filter((p) => p.kind === 'cut').sort((a, b) => (a.cutAfter ?? 0) - (b.cutAfter ?? 0));
  const holes = probes.filter((p) => p.kind === 'black-hole').sort((a, b) => a.span - b.span);
  const firstCut = cuts[0];
  const firstHole = holes[0];
  let cutoff: number | null = null;
  let how = 'not cut';
  if (firstCut && (!firstHole || (firstCut.cutAfter ?? 0) <= firstHole.span)) {
    cutoff = firstCut.cutAfter ?? null;
    how = firstCut.how ?? 'closed';
  } else if (firstHole) {
    cutoff = firstHole.span;
    how = 'black hole (a ping after the silence got no pong)';
  }
  const survived = probes
    .filter((p) => p.kind === 'survived' && (cutoff === null || p.span < cutoff))
    .reduce((m, p) => Math.max(m, p.span), 0);
  return { cutoffSeconds: cutoff, survivedSeconds: survived, how };
}
