/**
 * A TCP relay on 127.0.0.1 that injects faults, one kind per accepted connection, placed by a seeded generator so
 * that a failing run reproduces from its seed (printed by every test that uses it). Between two parts of wsvia it
 * plays the network an operator meets: a path that resets mid-stream, stalls, delivers in tiny pieces, forgets one
 * direction, swallows everything, or drains slowly. With the fault `none` it is byte-exact and carries a half-close
 * (FIN) as a half-close and a reset as a reset, so that any loss a test sees comes from the fault or from wsvia.
 *
 * The stalls and the slow reader use timers inside the relay: that is the fault, not a test waiting.
 */
import net from 'node:net';

export const FAULT_KINDS = ['none', 'tiny', 'stall', 'reset', 'half-open', 'black-hole', 'slow'] as const;
/**
 * - `none`: forwards as received.
 * - `tiny`: forwards in writes of 1 to 7 bytes, each flushed before the next (TCP_NODELAY), both ways.
 * - `stall`: one direction pauses for `stallMs` at byte `atByte`, then goes on.
 * - `reset`: at byte `atByte` of one direction, both sides get a TCP RST.
 * - `half-open`: from byte `atByte` one direction forwards nothing more, not even its FIN (a NAT that lost the flow
 *   one way); the other direction goes on.
 * - `black-hole`: accepts, reads and drops everything, never connects onwards, never answers, never closes.
 * - `slow`: both directions read at `slowBytesPerSecond`, so the sender meets backpressure.
 */
export type FaultKind = (typeof FAULT_KINDS)[number];

/** The faults after which every byte can still arrive: a session through them must be exact. */
export const LOSSLESS_FAULTS: readonly FaultKind[] = ['none', 'tiny', 'stall', 'slow'];

/** What one connection got, for the failure message that reproduces it. */
export interface FaultPlan {
  readonly connection: number;
  readonly kind: FaultKind;
  /** The direction `stall`, `reset` and `half-open` apply to: towards the target (`up`) or back (`down`). */
  readonly direction: 'up' | 'down';
  readonly atByte: number;
  readonly stallMs: number;
}

export interface FaultRelayOptions {
  /** The port on 127.0.0.1 the relay forwards to. */
  readonly targetPort: number;
  readonly seed: number;
  /** The kinds to cycle through, in an order shuffled by the seed (repeat one to weight it). Default: all. */
  readonly kinds?: readonly FaultKind[];
  /** Faults fall at a byte offset below this (default 64 KiB): about what one connection carries one way. */
  readonly spanBytes?: number;
  /** Bounds of a stall in ms (default 200 to 1200). */
  readonly stallMs?: readonly [number, number];
  /** The slow reader's rate (default 512 KiB/s). */
  readonly slowBytesPerSecond?: number;
}

export interface FaultRelay {
  readonly port: number;
  readonly seed: number;
  /** The plan of every connection accepted so far, in accept order. */
  readonly plans: readonly FaultPlan[];
  /** Connections still open (either side). */
  open(): number;
  /** Destroys every connection and stops listening. */
  close(): Promise<void>;
}

/** mulberry32: small, fast, and the same sequence for the same seed on every run. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A random integer in [min, max] from `random`. */
export function between(random: () => number, min: number, max: number): number {
  return min + Math.floor(random() * (max - min + 1));
}

/** The kinds in an order fixed by the seed (Fisher-Yates). */
function shuffled(kinds: readonly FaultKind[], seed: number): FaultKind[] {
  const random = prng(seed);
  const out = [...kinds];
  for (let i = out.length - 1; i > 0; i--) {
    const j = between(random, 0, i);
    [out[i], out[j]] = [out[j] as FaultKind, out[i] as FaultKind];
  }
  return out;
}

/** Connection `n`'s plan: it depends on the seed and `n` only, never on what other connections did. */
export function planFor(n: number, o: FaultRelayOptions, order: readonly FaultKind[]): FaultPlan {
  const random = prng((o.seed ^ Math.imul(n + 1, 0x9e3779b1)) >>> 0);
  const [lo, hi] = o.stallMs ?? [200, 1200];
  return {
    connection: n,
    kind: order[n % order.length] as FaultKind,
    direction: random() < 0.5 ? 'up' : 'down',
    atByte: between(random, 0, (o.spanBytes ?? 64 * 1024) - 1),
    stallMs: between(random, lo, hi),
  };
}

export function describePlan(p: FaultPlan): string {
  if (p.kind === 'none' || p.kind === 'black-hole' || p.kind === 'tiny' || p.kind === 'slow')
    return `#${p.connection} ${p.kind}`;
  const stall = p.kind === 'stall' ? ` for ${p.stallMs} ms` : '';
  return `#${p.connection} ${p.kind} ${p.direction} at byte ${p.atByte}${stall}`;
}

function resetSocket(s: net.Socket): void {
  if (s.destroyed) return;
  try {
    s.resetAndDestroy();
  } catch {
    s.destroy(); // not connected yet: there is no TCP handle to reset
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Writes `b` and resolves once `dst` can take more (or is gone). */
function write(dst: net.Socket, b: Buffer): Promise<void> {
  if (dst.destroyed || b.length === 0) return Promise.resolve();
  if (dst.write(b)) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      dst.off('drain', done);
      dst.off('close', done);
      resolve();
    };
    dst.on('drain', done);
    dst.on('close', done);
  });
}

/** Writes `b` in pieces of 1 to 7 bytes, each handed to the kernel before the next. */
async function writeTiny(dst: net.Socket, b: Buffer, random: () => number): Promise<void> {
  for (let i = 0; i < b.length && !dst.destroyed;) {
    const n = between(random, 1, 7);
    const piece = b.subarray(i, i + n);
    i += n;
    await new Promise<void>((resolve) => dst.write(piece, () => resolve()));
  }
}

/** One direction of a connection: reads `src`, applies the fault, writes `dst`, ends it on a clean end. */
class Direction {
  #passed = 0;
  #busy = false;
  #stopped = false;
  #ended = false;
  readonly #random: () => number;

  constructor(
    readonly src: net.Socket,
    readonly dst: net.Socket,
    readonly name: 'up' | 'down',
    readonly plan: FaultPlan,
    readonly owner: { reset(): void; slowRate: number },
  ) {
    this.#random = prng(plan.atByte ^ (name === 'up' ? 1 : 2));
    src.on('data', (chunk: Buffer) => {
      src.pause();
      this.#busy = true;
      this.#carry(chunk).then(
        () => this.#afterChunk(),
        () => owner.reset(),
      );
    });
    src.on('end', () => {
      this.#ended = true;
      if (!this.#busy) this.#finish();
    });
  }

  /** Whether this direction's reads ended cleanly (a FIN arrived). */
  get ended(): boolean {
    return this.#ended;
  }

  #afterChunk(): void {
    this.#busy = false;
    if (this.#stopped) return;
    if (this.#ended) this.#finish();
    else this.src.resume();
  }

  #finish(): void {
    if (!this.#stopped && !this.dst.destroyed) this.dst.end();
  }

  async #carry(chunk: Buffer): Promise<void> {
    if (this.#stopped) return;
    const p = this.plan;
    const at = p.atByte - this.#passed;
    const mine =
      p.direction === this.name && (p.kind === 'stall' || p.kind === 'reset' || p.kind === 'half-open');
    if (mine && at >= 0 && at < chunk.length) {
      await this.#send(chunk.subarray(0, at));
      if (p.kind === 'reset') {
        this.#stopped = true;
        return this.owner.reset();
      }
      if (p.kind === 'half-open') {
        this.#stopped = true; // no more reads this way: the sender meets a window that never opens
        return;
      }
      await sleep(p.stallMs);
      return this.#send(chunk.subarray(at));
    }
    return this.#send(chunk);
  }

  async #send(b: Buffer): Promise<void> {
    this.#passed += b.length;
    if (this.plan.kind === 'tiny') return writeTiny(this.dst, b, this.#random);
    await write(this.dst, b);
    if (this.plan.kind === 'slow') await sleep((b.length * 1000) / this.owner.slowRate);
  }
}

/** One accepted connection and the one it opened to the target. */
class FaultyConnection {
  readonly #client: net.Socket;
  readonly #upstream: net.Socket | undefined;

  constructor(
    client: net.Socket,
    readonly plan: FaultPlan,
    targetPort: number,
    readonly slowRate: number,
  ) {
    this.#client = client;
    client.setNoDelay(true);
    if (plan.kind === 'black-hole') {
      client.on('error', () => {});
      client.resume(); // read and drop, answer nothing, close nothing
      return;
    }
    const upstream = net.connect({ host: '127.0.0.1', port: targetPort, allowHalfOpen: true });
    upstream.setNoDelay(true);
    this.#upstream = upstream;
    const up = new Direction(client, upstream, 'up', plan, this);
    const down = new Direction(upstream, client, 'down', plan, this);
    // A side that fails, or closes without its FIN having arrived, is passed on as a reset.
    client.on('error', () => this.reset());
    upstream.on('error', () => this.reset());
    client.on('close', () => {
      if (!up.ended) this.reset();
    });
    upstream.on('close', () => {
      if (!down.ended) this.reset();
    });
  }

  get sockets(): net.Socket[] {
    return this.#upstream ? [this.#client, this.#upstream] : [this.#client];
  }

  reset(): void {
    for (const s of this.sockets) resetSocket(s);
  }
}

export async function startFaultRelay(o: FaultRelayOptions): Promise<FaultRelay> {
  const order = shuffled(o.kinds ?? FAULT_KINDS, o.seed);
  const plans: FaultPlan[] = [];
  const live = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    const plan = planFor(plans.length, o, order);
    plans.push(plan);
    const c = new FaultyConnection(client, plan, o.targetPort, o.slowBytesPerSecond ?? 512 * 1024);
    for (const s of c.sockets) {
      live.add(s);
      s.once('close', () => live.delete(s));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    seed: o.seed,
    plans,
    open: () => live.size,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of live) s.destroy();
        server.close(() => resolve());
      }),
  };
}
