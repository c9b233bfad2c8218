/**
 * Upstream pools: the route's balancer over the members believed alive. A member that refuses or times out is
 * marked dead at once and skipped by every later pick until a health check (a TCP connect, run by the gateway)
 * finds it back. Health and open connections are kept per upstream URL across reloads, so a reload neither
 * resurrects a dead member nor forgets the connections least-connections counts.
 */
import type { EventEmitter } from 'node:events';
import { Balancer, requestKey, type KeySource, type Member } from './balancer.js';
import type { RouteSpec, UpstreamSpec } from './route-config.js';

export interface UpstreamState {
  readonly spec: UpstreamSpec;
  healthy: boolean;
  /** When it was last marked dead (ms since epoch), 0 if never. */
  failedAt: number;
  /** Upstream connections open to it now, from every route. */
  active: number;
}

/** Health of every upstream the gateway knows, by URL. */
export class UpstreamHealth {
  readonly #states = new Map<string, UpstreamState>();

  state(spec: UpstreamSpec): UpstreamState {
    let s = this.#states.get(spec.url);
    if (!s) this.#states.set(spec.url, (s = { spec, healthy: true, failedAt: 0, active: 0 }));
    return s;
  }

  markDead(spec: UpstreamSpec, now: number): boolean {
    const s = this.state(spec);
    const was = s.healthy;
    s.healthy = false;
    s.failedAt = now;
    return was;
  }

  markAlive(spec: UpstreamSpec): boolean {
    const s = this.state(spec);
    const was = s.healthy;
    s.healthy = true;
    return !was;
  }

  /** Counts `socket` as open to `spec` until it closes. */
  holdOpen(spec: UpstreamSpec, socket: EventEmitter): void {
    countWhileOpen(this.state(spec), socket);
  }

  dead(): UpstreamState[] {
    return [...this.#states.values()].filter((s) => !s.healthy);
  }

  all(): UpstreamState[] {
    return [...this.#states.values()];
  }

  /** Forget upstreams no route names any more (after a reload). */
  retain(urls: ReadonlySet<string>): void {
    for (const k of this.#states.keys()) if (!urls.has(k)) this.#states.delete(k);
  }
}

const COUNTED_IN: unique symbol = Symbol('wsvia.countedIn');

/** An upstream socket, with the upstream it is counted as open against. */
type Counted = EventEmitter & { [COUNTED_IN]?: UpstreamState | undefined };

/** One handler for every upstream socket, the state kept on the socket: no closure per idle WebSocket. */
function uncount(this: Counted): void {
  const state = this[COUNTED_IN];
  this[COUNTED_IN] = undefined;
  if (state) state.active--;
}

function countWhileOpen(state: UpstreamState, socket: EventEmitter): void {
  state.active++;
  countUntilClose(state, socket);
}

/** Where `socket` is counted as open, taken off it: its close then counts nothing down (see {@link countUntilClose}). */
export function takeOpenCount(socket: EventEmitter): UpstreamState | undefined {
  const state = (socket as Counted)[COUNTED_IN];
  (socket as Counted)[COUNTED_IN] = undefined;
  return state;
}

/**
 * Counts `state`'s open connection down when `socket` closes, without counting it up: a connection counted on
 * another socket object first, whose count {@link takeOpenCount} took (the gateway's native relay).
 */
export function countUntilClose(state: UpstreamState, socket: EventEmitter): void {
  (socket as Counted)[COUNTED_IN] = state;
  socket.on('close', uncount);
}

export class UpstreamPool {
  readonly route: RouteSpec;
  readonly #health: UpstreamHealth;
  readonly #balancer: Balancer;

  constructor(route: RouteSpec, health: UpstreamHealth) {
    this.route = route;
    this.#health = health;
    this.#balancer = new Balancer(route.balance, route.upstreams.length);
    for (const u of route.upstreams) health.state(u);
  }

  /** The order to try members in for one request: the balancer's choice, then failover to the others. */
  candidates(request?: KeySource): readonly UpstreamSpec[] {
    const ups = this.route.upstreams;
    // One member: every balance picks it, alive or not (a dead one is tried anyway); no per-request list.
    if (ups.length === 1) return ups;
    const members: Member[] = ups.map((u) => {
      const s = this.#health.state(u);
      return { id: u.url, weight: u.weight, alive: s.healthy, active: s.active };
    });
    const key =
      this.route.hashKey === undefined || request === undefined
        ? undefined
        : requestKey(this.route.hashKey, request);
    return this.#balancer.order(members, key).map((i) => ups[i] as UpstreamSpec);
  }

  /** Counts a connection to `u` as open until `socket` closes (least-connections). */
  holdOpen(u: UpstreamSpec, socket: EventEmitter): void {
    this.#health.holdOpen(u, socket);
  }
}
