/**
 * Servers that hold thousands of long-lived sockets (proxy, gateway, bridge) pay RSS per idle connection when V8
 * doubles its young generation on every burst of new connections; the objects themselves are a few KiB.
 * V8 reads the growth factor when it resizes, so setting it at start-up takes effect for the bursts that follow
 * (`node --max-semi-space-size=1` on the command line does a little more). `WSVIA_V8_DEFAULTS=1` keeps V8's own.
 */
import v8 from 'node:v8';

export function tuneHeapForLongLivedSockets(): void {
  if (process.env.WSVIA_V8_DEFAULTS === undefined) v8.setFlagsFromString('--semi-space-growth-factor=1');
}
