/**
 * Upstream connections dialed ahead of need, so a client's WebSocket upgrade waits for no TCP handshake (HAProxy
 * and nginx dial on demand). Per plain (ws://, http://) upstream, up to `warm` connections wait, refilled in the
 * background. Each is used once, for one upgrade request, and then belongs to that WebSocket; none is reused.
 *
 * - One that the upstream closes, resets or writes to while it waits is dropped and replaced. One dropped within
 *   {@link EARLY_DROP_MS} of its dial, or a dial that fails, backs the refill off (doubling up to
 *   {@link MAX_BACKOFF_MS}): an upstream that closes every connection at once is not redialed in a loop.
 * - A failed dial marks the upstream dead, like a client's failed connect; a dead upstream is not pre-dialed until
 *   the gateway's health check finds it back ({@link WarmPools.revive}).
 * - One unused for {@link MAX_IDLE_MS} is closed and replaced, before common upstream idle timeouts close it.
 * - They are not client connections: no admission slot, and not counted as active for least-connections until
 *   taken. `wsvia_gateway_upstream_warm_connections` counts them.
 */
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import type { ErrorCode } from '../errors.js';
import { isWsviaError } from '../errors.js';
import type { GatewayConfig, UpstreamSpec } from './config.js';
import type { UpstreamHealth } from './upstream-pool.js';

export const MAX_IDLE_MS = 20_000;
export const EARLY_DROP_MS = 1_000;
const FIRST_BACKOFF_MS = 250;
/**
 * After a take, the refill waits for the taker to say its answer was relayed ({@link WarmPools.answered}); one that
 * never says so (its client left before the request was sent) is refilled for this long after the take.
 */
const REFILL_FALLBACK_MS = 1_000;
export const MAX_BACKOFF_MS = 30_000;

/** What the pools need from the gateway. */
export interface WarmHost {
  readonly health: UpstreamHealth;
  dial(u: UpstreamSpec): Promise<Duplex>;
  markDead(u: UpstreamSpec, code: ErrorCode): void;
  /** The number of warm connections waiting for `url` changed. */
  counted(url: string, n: number): void;
}

/** How many warm connections each upstream gets: the largest `warm` of the routes that name it (TLS ones: none). */
export function warmTargets(c: GatewayConfig): Map<string, { spec: UpstreamSpec; size: number }> {
  const out = new Map<string, { spec: UpstreamSpec; size: number }>();
  for (const r of c.routes) {
    const size = r.options.warm ?? c.warm;
    for (const u of r.upstreams) {
      if (u.tls) continue;
      const prev = out.get(u.url);
      if (!prev || prev.size < size) out.set(u.url, { spec: u, size });
    }
  }
  return out;
}

/** Usable for a request: connected both ways, nothing read, no FIN seen (Node ends a socket when it reads one). */
function usable(s: net.Socket): boolean {
  return !s.destroyed && s.readyState === 'open' && !s.readableEnded && s.bytesRead === 0;
}

function ignore(): void {}

/** One connection waiting; its listeners go when it is taken. */
class WarmSocket {
  readonly since = Date.now();
  readonly #onData = (): void => this.pool.drop(this, true);
  readonly #onGone = (): void => this.pool.drop(this, Date.now() - this.since < EARLY_DROP_MS);

  constructor(
    readonly socket: net.Socket,
    readonly pool: UpstreamWarmPool,
  ) {
    socket.on('data', this.#onData);
    socket.on('end', this.#onGone);
    socket.on('error', this.#onGone);
    socket.on('close', this.#onGone);
    // Reading while it waits is how a FIN or a reset is seen at all: a paused socket never reads its EOF.
    socket.resume();
  }

  /** Hands the socket over paused, with only a no-op error listener of ours (the taker adds its own). */
  release(): net.Socket {
    const s = this.socket;
    s.removeListener('data', this.#onData);
    s.removeListener('end', this.#onGone);
    s.removeListener('error', this.#onGone);
    s.removeListener('close', this.#onGone);
    s.on('error', ignore);
    s.pause();
    return s;
  }
}

class UpstreamWarmPool {
  size: number;
  spec: UpstreamSpec;
  readonly #host: WarmHost;
  /** Oldest first; takes use the newest, the sweep closes the oldest. */
  readonly #idle: WarmSocket[] = [];
  #dialing = 0;
  #failures = 0;
  #retry: NodeJS.Timeout | undefined;
  #refillSoon: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(spec: UpstreamSpec, size: number, host: WarmHost) {
    this.spec = spec;
    this.size = size;
    this.#host = host;
  }

  get waiting(): number {
    return this.#idle.length;
  }

  take(): net.Socket | undefined {
    let found: net.Socket | undefined;
    while (!found && this.#idle.length > 0) {
      const w = this.#idle.pop() as WarmSocket;
      const s = w.release();
      if (usable(s)) found = s;
      else s.destroy();
    }
    this.#counted();
    this.#refillSoon ??= setTimeout(() => this.answered(), REFILL_FALLBACK_MS);
    this.#refillSoon.unref();
    if (found) this.#failures = 0;
    return found;
  }

  /** The request that took one has its answer: refill now, off its path. */
  answered(): void {
    clearTimeout(this.#refillSoon);
    this.#refillSoon = undefined;
    this.refill();
  }

  /** A health check found the upstream back: forget the backoff and fill now. */
  revive(): void {
    clearTimeout(this.#retry);
    this.#retry = undefined;
    this.#failures = 0;
    this.refill();
  }

  refill(): void {
    if (this.#closed || this.#retry || !this.#host.health.state(this.spec).healthy) return;
    while (this.#idle.length + this.#dialing < this.size) this.#dialOne();
  }

  #dialOne(): void {
    this.#dialing++;
    this.#host.dial(this.spec).then(
      (socket) => {
        this.#dialing--;
        if (this.#closed || this.#idle.length >= this.size) {
          socket.destroy();
          return;
        }
        this.#idle.push(new WarmSocket(socket as net.Socket, this));
        this.#counted();
      },
      (e: unknown) => {
        this.#dialing--;
        if (this.#closed) return;
        this.#host.markDead(this.spec, isWsviaError(e) ? e.code : 'CONNECTION_RESET');
        this.#backOff();
      },
    );
  }

  /** `early`: it failed soon after its dial (or spoke first): count it against the upstream before redialing. */
  drop(w: WarmSocket, early: boolean): void {
    const i = this.#idle.indexOf(w);
    if (i < 0) return;
    this.#idle.splice(i, 1);
    w.release().destroy();
    this.#counted();
    if (early) return this.#backOff();
    // It lived: the upstream closes idle connections, it is not failing.
    this.#failures = 0;
    this.refill();
  }

  #backOff(): void {
    this.#failures++;
    if (this.#retry || this.#closed) return;
    const ms = Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** (this.#failures - 1));
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      this.refill();
    }, ms);
    this.#retry.unref();
  }

  /** Closes the ones unused since `before`, oldest first, and dials their replacements. */
  recycle(before: number): void {
    while (this.#idle.length > 0 && (this.#idle[0] as WarmSocket).since < before) {
      (this.#idle.shift() as WarmSocket).release().destroy();
      this.#failures = 0;
    }
    this.#counted();
    this.refill();
  }

  /** Down to `size`, closing the oldest first. */
  trim(): void {
    while (this.#idle.length > this.size) (this.#idle.shift() as WarmSocket).release().destroy();
    this.#counted();
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#retry);
    clearTimeout(this.#refillSoon);
    for (const w of this.#idle.splice(0)) w.release().destroy();
    this.#counted();
  }

  #counted(): void {
    this.#host.counted(this.spec.url, this.#idle.length);
  }
}

/** The warm connections of every upstream, by URL; reconfigured on start and reload, closed on drain. */
export class WarmPools {
  readonly #host: WarmHost;
  readonly #pools = new Map<string, UpstreamWarmPool>();
  #sweep: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(host: WarmHost) {
    this.#host = host;
  }

  /** Sizes from the config: new upstreams get a pool, resized ones trim or refill, forgotten ones close. */
  configure(c: GatewayConfig): void {
    if (this.#closed) return;
    const targets = warmTargets(c);
    for (const [url, pool] of this.#pools) {
      const t = targets.get(url);
      if (t && t.size > 0) continue;
      pool.close();
      this.#pools.delete(url);
    }
    for (const [url, t] of targets) {
      if (t.size === 0) continue;
      let pool = this.#pools.get(url);
      if (!pool) this.#pools.set(url, (pool = new UpstreamWarmPool(t.spec, t.size, this.#host)));
      pool.spec = t.spec;
      pool.size = t.size;
      pool.trim();
      pool.refill();
    }
    if (this.#pools.size > 0 && !this.#sweep) {
      this.#sweep = setInterval(() => this.#recycle(), MAX_IDLE_MS / 4);
      this.#sweep.unref();
    }
  }

  /** A warm connection to `u`, ready for one request, or undefined (none waiting, or a dead upstream). */
  take(u: UpstreamSpec): net.Socket | undefined {
    const pool = this.#pools.get(u.url);
    if (!pool || !this.#host.health.state(u).healthy) return undefined;
    return pool.take();
  }

  /** The request that took a connection to `u` has its answer relayed: refill its pool now (WarmSource). */
  answered(u: UpstreamSpec): void {
    this.#pools.get(u.url)?.answered();
  }

  /** `url` is believed alive again (a health check passed): fill its pool now, whatever its backoff. */
  revive(url: string): void {
    this.#pools.get(url)?.revive();
  }

  /** Warm connections waiting now, all upstreams together. */
  get waiting(): number {
    let n = 0;
    for (const p of this.#pools.values()) n += p.waiting;
    return n;
  }

  #recycle(): void {
    const before = Date.now() - MAX_IDLE_MS;
    for (const p of this.#pools.values()) p.recycle(before);
  }

  /** Closes every warm connection and dials no more (drain, close). */
  close(): void {
    this.#closed = true;
    clearInterval(this.#sweep);
    for (const p of this.#pools.values()) p.close();
    this.#pools.clear();
  }
}
