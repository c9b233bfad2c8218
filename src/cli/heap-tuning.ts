/**
 * Servers that hold thousands of long-lived sockets (proxy, gateway, bridge) pay RSS per idle connection when V8
 * doubles its young generation on every burst of new connections; the objects themselves are a few KiB.
 * V8 reads the growth factor when it resizes, so setting it at start-up takes effect for the bursts that follow
 * (`node --max-semi-space-size=1` on the command line does a little more). `WSVIA_V8_DEFAULTS=1` keeps V8's own.
 *
 * A server that mostly holds idle connections (the gateway) also asks V8 to favour memory over speed
 * (`--optimize-for-size`, read by V8's heap when it decides when and how to collect): the garbage a burst of
 * handshakes promotes to the old generation is collected during the burst instead of about 8 s after it, and
 * compacted. Measured (bench/NOTES.md): 7.1-7.4 KiB RSS per idle WebSocket 1 s after a burst of 2,000 becomes
 * 4.7-5.1, with no change in setup latency, CPU per upgrade or echo rates. The proxy does not: it cost new
 * tunnels per second there, its target.
 */
import v8 from 'node:v8';

/** `speed`: V8's young generation kept small, nothing else. `memory`: V8 also collects for size. */
export type HeapProfile = 'speed' | 'memory';

/** The V8 flags a server of that profile sets at start-up; none when `WSVIA_V8_DEFAULTS` is set. */
export function heapFlags(profile: HeapProfile, env: NodeJS.ProcessEnv = process.env): string[] {
  if (env.WSVIA_V8_DEFAULTS !== undefined) return [];
  const flags = ['--semi-space-growth-factor=1'];
  if (profile === 'memory') flags.push('--optimize-for-size');
  return flags;
}

export function tuneHeapForLongLivedSockets(profile: HeapProfile = 'speed'): void {
  for (const flag of heapFlags(profile)) v8.setFlagsFromString(flag);
}
