/**
 * Idle timeouts that intermediaries apply by default, to name the likely culprit of a measured cutoff. Values are
 * the vendors' documented defaults; an operator may have changed them, which is why these are "likely".
 */

export const IDLE_DEFAULTS = [
  { name: 'Heroku router', seconds: 55, knob: 'not configurable: ping more often' },
  { name: 'nginx', seconds: 60, knob: 'proxy_read_timeout / proxy_send_timeout' },
  { name: 'AWS Application Load Balancer', seconds: 60, knob: 'the idle_timeout.timeout_seconds attribute' },
  { name: 'Cloudflare', seconds: 100, knob: 'not configurable on most plans: ping more often' },
  { name: 'Azure Load Balancer', seconds: 240, knob: 'the load-balancing rule idle timeout' },
  { name: 'Squid', seconds: 900, knob: 'read_timeout' },
] as const;

/** Defaults within 10% (at least 1 s) of the cutoff, as `nginx (default 60 s, proxy_read_timeout ...)`. */
export function likelyCulprits(cutoffSeconds: number): string[] {
  return IDLE_DEFAULTS.filter((d) => Math.abs(d.seconds - cutoffSeconds) <= Math.max(1, d.seconds * 0.1)).map(
    (d) => `${d.name} (default ${d.seconds} s; ${d.knob})`,
  );
}

/** A ping interval that keeps a path with this cutoff alive: about half of it, at least 1 s, whole seconds. */
export function recommendedPingSeconds(cutoffSeconds: number): number {
  return Math.max(1, Math.floor(cutoffSeconds / 2));
}
