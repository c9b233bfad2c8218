/**
 * The `idle` step and its advice from the idle probe's outcome: the cutoff and how, a ping interval that beats it,
 * the likely culprit by its default timeout, and probe connections the path would not open.
 */
import { likelyCulprits, recommendedPingSeconds } from './culprits.js';
import { probeLine, type probeIdle } from './idle-probe.js';
import type { DoctorStep } from './report.js';

export function idleStep(
  r: Awaited<ReturnType<typeof probeIdle>>,
  seconds: number,
  ms: number,
): { step: DoctorStep; advice: string[] } {
  const advice: string[] = [];
  const failedToOpen = r.probes.filter((p) => p.kind === 'not-opened').length;
  const opened = r.probes.length - failedToOpen;
  const step: DoctorStep = {
    step: 'idle',
    ok: true,
    ms,
    detail:
      opened === 0
        ? `none of the ${r.probes.length} probe connections opened: the path refuses parallel WebSockets`
        : r.cutoffSeconds === null
          ? `${opened} silent WebSockets, up to ${seconds} s: none was cut${failedToOpen ? ` (${failedToOpen} did not open)` : ''}`
          : `silent WebSockets are cut after ${r.cutoffSeconds} s (${r.how}); ${r.survivedSeconds} s of silence survived`,
    ...(r.cutoffSeconds === null && failedToOpen === 0 ? {} : { warning: true }),
    more: r.probes.map(probeLine),
  };
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
  return { step, advice };
}
