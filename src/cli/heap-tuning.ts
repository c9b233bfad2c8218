/**
 * Servers that hold thousands of long-lived sockets (proxy, gateway, bridge) pay RSS per idle connection when V8
 * doubles its young generation on every burst of new connections; the objects themselves are a few KiB.
 * V8 reads the growth factor when it resizes, so setting it at start-up takes effect for the bursts that follow
 * (`node --max-semi-space-size=1` on the command line does a little more). While connections churn (hundreds
 * closing each second, few open) it may grow again as V8 grows it (serve/young-generation.ts).
 *
 * What a burst's setups promote to the old generation is garbage once the connections are open, and V8 does not
 * collect it while the server stays quiet: every server runs one compacting full collection once a burst has
 * ended (serve/after-burst-gc.ts; `WSVIA_GC_QUIET_MS` sets how long no connection opens first, 0 turns it off).
 * Measured in bench/NOTES.md. `WSVIA_V8_DEFAULTS=1` keeps V8's own behaviour, all of the above off.
 */
import v8 from 'node:v8';
import { collectAfterBursts, DEFAULT_MIN_OPENED, DEFAULT_QUIET_MS } from '../serve/after-burst-gc.js';
import { growYoungGenerationUnderChurn, youngGenerationGrowthFlag } from '../serve/young-generation.js';

/** The V8 flags a server sets at start-up; none when `WSVIA_V8_DEFAULTS` is set. */
export function heapFlags(env: NodeJS.ProcessEnv = process.env): string[] {
  return env.WSVIA_V8_DEFAULTS !== undefined ? [] : [youngGenerationGrowthFlag(false)];
}

/**
 * How long no connection opens before the collection after a burst; 0 when there is none. A value that is not a
 * whole number of milliseconds is named on stderr and the default used.
 */
export function gcQuietMs(env: NodeJS.ProcessEnv = process.env, warn = printWarning): number {
  if (env.WSVIA_V8_DEFAULTS !== undefined) return 0;
  const raw = env.WSVIA_GC_QUIET_MS;
  if (raw === undefined || raw === '') return DEFAULT_QUIET_MS;
  const ms = Number(raw);
  if (Number.isInteger(ms) && ms >= 0) return ms;
  warn(
    `WSVIA_GC_QUIET_MS=${JSON.stringify(raw)} is not a whole number of milliseconds: using ${DEFAULT_QUIET_MS}`,
  );
  return DEFAULT_QUIET_MS;
}

function printWarning(message: string): void {
  process.stderr.write(`wsvia: ${message}\n`);
}

export function tuneHeapForLongLivedSockets(): void {
  const flags = heapFlags();
  for (const flag of flags) v8.setFlagsFromString(flag);
  // Held small for idle connections, the young generation may grow while connections churn (young-generation.ts).
  if (flags.length > 0) growYoungGenerationUnderChurn({ maxOpen: DEFAULT_MIN_OPENED });
  const quietMs = gcQuietMs();
  if (quietMs > 0) collectAfterBursts({ quietMs, minOpened: DEFAULT_MIN_OPENED });
}
