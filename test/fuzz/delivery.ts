/**
 * How the network fuzzers write: the bytes cut at random points, each piece after 0-2 event-loop ticks, then a
 * half-close (and a wait, bounded, for the server to end the connection: a server that never does has hung), a
 * plain close, or a TCP reset part-way through. Many connections at once, bounded.
 */
import fc from 'fast-check';
import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';

export interface Plan {
  /** Where the bytes are cut, as fractions of their length. */
  readonly cuts: readonly number[];
  /** Ticks to wait before each piece (cycled). */
  readonly ticks: readonly number[];
  readonly ending: 'half-close' | 'close' | 'reset';
  /** For `reset`: the fraction of the bytes written before the reset. */
  readonly resetAt: number;
}

export const plan: fc.Arbitrary<Plan> = fc.record({
  cuts: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 10 }),
  ticks: fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 1, maxLength: 6 }),
  ending: fc.constantFrom('half-close', 'half-close', 'half-close', 'close', 'reset'),
  resetAt: fc.double({ min: 0, max: 1, noNaN: true }),
});

/** Where to connect; `tls`: speak TLS first (to a TLS listener), the fuzz bytes inside it. */
export interface Endpoint {
  readonly port: number;
  readonly tls?: boolean;
}

export interface Outcome {
  /** What the server sent (the first 64 KiB). */
  readonly received: Buffer;
  /** After our half-close the server did not end the connection within the deadline. */
  readonly hung: boolean;
  readonly ending: Plan['ending'];
}

const KEEP = 64 * 1024;

function ticks(n: number): Promise<void> {
  let p = Promise.resolve();
  for (let i = 0; i < n; i++) p = p.then(() => new Promise<void>((r) => setImmediate(r)));
  return p;
}

function pieces(bytes: Buffer, cuts: readonly number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => Math.floor(c * bytes.length)))]
    .filter((p) => p > 0 && p < bytes.length)
    .sort((a, b) => a - b);
  const out: Buffer[] = [];
  let last = 0;
  for (const p of points) {
    out.push(bytes.subarray(last, p));
    last = p;
  }
  out.push(bytes.subarray(last));
  return out;
}

/** One connection: open, write `bytes` as `p` says, end as it says; resolves with what came back. */
export async function deliver(e: Endpoint, bytes: Buffer, p: Plan, deadlineMs: number): Promise<Outcome> {
  const raw = net.connect({ host: '127.0.0.1', port: e.port, allowHalfOpen: true });
  raw.on('error', () => {});
  let sock: Duplex = raw;
  const closed = new Promise<void>((r) => raw.once('close', () => r()));
  let ended = false;
  if (e.tls) {
    const t = tls.connect({ socket: raw, rejectUnauthorized: false, servername: 'localhost' });
    t.on('error', () => {});
    t.once('close', () => raw.destroy());
    sock = t;
  }
  const parts: Buffer[] = [];
  let size = 0;
  sock.on('data', (c: Buffer) => {
    if (size < KEEP) parts.push(c);
    size += c.length;
  });
  sock.once('end', () => (ended = true));
  const ready = e.tls ? 'secureConnect' : 'connect';
  const outcome = (hung: boolean): Outcome => ({ received: Buffer.concat(parts), hung, ending: p.ending });
  // A server that neither completes the handshake nor closes is a hang to name, not a wait for the test timeout.
  let handshake: NodeJS.Timeout | undefined;
  const late = new Promise((r) => (handshake = setTimeout(r, deadlineMs, 'late')));
  const began = await Promise.race([new Promise((r) => sock.once(ready, r)), closed, late]);
  clearTimeout(handshake);
  if (began === 'late') {
    raw.destroy();
    return outcome(true);
  }
  if (raw.destroyed) return outcome(false);
  const limit = p.ending === 'reset' ? Math.floor(p.resetAt * bytes.length) : bytes.length;
  const todo = pieces(bytes.subarray(0, limit), p.cuts);
  for (let i = 0; i < todo.length; i++) {
    await ticks(p.ticks[i % p.ticks.length] ?? 0);
    if (sock.destroyed || ended) break;
    if (!sock.write(todo[i])) {
      // A server that stopped reading (it answered, or pauses) is not waited for past its end.
      const gone = new Promise((r) => sock.once('end', r));
      const timer = new Promise((r) => setTimeout(r, deadlineMs).unref());
      await Promise.race([new Promise((r) => sock.once('drain', r)), closed, gone, timer]);
      if (sock.writableNeedDrain) break;
    }
  }
  if (p.ending === 'reset') {
    if (!raw.destroyed) raw.resetAndDestroy();
    return outcome(false);
  }
  if (p.ending === 'close') {
    sock.destroy();
    raw.destroy();
    return outcome(false);
  }
  sock.end();
  let timer: NodeJS.Timeout | undefined;
  const finished = await Promise.race([
    closed.then(() => true),
    new Promise<boolean>((r) => (timer = setTimeout(() => r(false), deadlineMs))),
  ]);
  clearTimeout(timer);
  if (!finished) raw.destroy();
  return outcome(!finished);
}

/** Runs `task` over `items` with at most `limit` running at once; results in order. */
export async function mapBounded<T, R>(
  items: readonly T[],
  limit: number,
  task: (t: T) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await task(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
